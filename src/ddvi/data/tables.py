"""A data matrix from a file: ``.npy``, ``.npz``, ``.csv`` / ``.tsv`` / ``.txt`` or ``.h5ad``.

Every problem is a ValueError (FileNotFoundError for a missing file) that names the file and
what is wrong with it, so that nothing is fitted on data that were misread.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cells.csv"
    >>> _ = path.write_text("cell,g1,g2,type\\nc1,0.5,1,T\\nc2,1.5,2,B\\n")
    >>> t = load_table(path, label_column="type")
    >>> t.X.tolist(), t.labels.tolist(), t.row_ids, t.feature_names
    ([[0.5, 1.0], [1.5, 2.0]], ['T', 'B'], ['c1', 'c2'], ['g1', 'g2'])
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = (".npy", ".npz", ".csv", ".tsv", ".txt", ".h5ad")
ID_NAMES = ("id", "cell", "sample", "")
"""Names of a first column taken as row ids when it holds unique values (case-insensitive), as
is any first column whose name ends in ``_id`` (``wine_id``, ``cell_id``, ...)."""
NPZ_LABELS, NPZ_ROW_IDS = "labels", "row_ids"
"""The arrays of an ``.npz`` file read as labels and row ids by default."""
MAX_DENSE_BYTES = 4 * 2**30
"""The largest float32 matrix a sparse ``.h5ad`` matrix is densified into by default."""


def _names_ids(name: str) -> bool:
    name = name.strip().lower()
    return name in ID_NAMES or name.endswith("_id")


@dataclass(frozen=True, eq=False)
class Table:
    """Rows of numeric features with their ids and optional labels.

    ``X`` is float32 (n, d); ``labels`` a (n,) object array of strings or None; ``feature_names``
    the column names (None where the file has none: ``.npy``, ``.npz``); ``source`` says what was
    read (file, shape, where ids and labels came from).
    """

    X: np.ndarray
    labels: np.ndarray | None
    row_ids: list[str]
    feature_names: list[str] | None
    source: str


def load_table(path: str | Path, *, label_column: str | None = None, array: str | None = None,
               id_column: str | None = None, max_dense_bytes: int = MAX_DENSE_BYTES) -> Table:
    """Read a matrix of rows x numeric features, with optional labels and row ids.

    - ``.npy``: a 2-D numeric array (no pickles); row ids are the row numbers 0..n-1.
    - ``.npz``: the array named ``array`` (or the only one besides labels and ids); labels from
      the array ``label_column`` (default ``labels`` if present), ids from ``id_column``
      (default ``row_ids`` if present).
    - ``.csv`` / ``.tsv`` / ``.txt`` (``.txt``: tab-separated if its header has a tab, else
      comma-separated): a header row, numeric feature columns, the label column ``label_column``
      and the id column ``id_column`` (default: a first column named id, cell, sample or nothing
      whose values are unique; else the row numbers).
    - ``.h5ad`` (needs ``pip install 'ddvi[singlecell]'``): ``X`` (dense or sparse, densified in
      float32 up to ``max_dense_bytes``), labels from the ``obs`` column ``label_column``, ids from
      ``obs_names`` (or the ``obs`` column ``id_column``), feature names from ``var_names``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown file type {suffix or '(no extension)'!r}; ddvi reads "
                         f"{', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist" if not path.exists() else
                                f"{path} is not a file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    if array is not None and suffix != ".npz":
        raise ValueError(f"{path}: array={array!r} (--array) names an array of an .npz file; "
                         f"a {suffix} file has none")
    if suffix == ".npy":
        if label_column is not None or id_column is not None:
            raise ValueError(f"{path}: a .npy file holds only the matrix, so it has no label or "
                             "id column; save labels and ids beside it in an .npz file or a CSV")
        return _finish(path, _numeric(path, _load_npy(path), "the array"), None, None, None,
                       "row numbers", None)
    if suffix == ".npz":
        return _load_npz(path, array, label_column, id_column)
    if suffix == ".h5ad":
        return _load_h5ad(path, label_column, id_column, max_dense_bytes)
    return _load_text(path, label_column, id_column)


def check_feature_names(table: Table, expected: Sequence[str] | None, n_expected: int) -> None:
    """Refuse ``table`` unless it has ``n_expected`` features named ``expected`` in that order
    (names are compared only where both sides have them); the error says which differ."""
    d = table.X.shape[1]
    if d != n_expected:
        raise ValueError(f"{table.source}: {d} features, but the model was fitted on {n_expected}"
                         + _name_difference(table.feature_names, expected))
    if expected is None or table.feature_names is None or list(expected) == table.feature_names:
        return
    raise ValueError(f"{table.source}: the feature names differ from the model's"
                     + _name_difference(table.feature_names, expected))


def _name_difference(names: list[str] | None, expected: Sequence[str] | None) -> str:
    if names is None or expected is None:
        return ""
    expected = list(expected)
    missing = [n for n in expected if n not in set(names)]
    extra = [n for n in names if n not in set(expected)]
    parts = []
    if missing:
        parts.append(f"missing {_first(missing)}")
    if extra:
        parts.append(f"not in the model {_first(extra)}")
    if not missing and not extra:
        moved = [f"column {i + 1} is {a!r} here, {b!r} in the model"
                 for i, (a, b) in enumerate(zip(names, expected)) if a != b]
        parts.append(f"the same names in another order ({'; '.join(moved[:3])}); put the "
                     "columns in the model's order")
    return ": " + "; ".join(parts)


def _first(items: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(repr(v) for v in items[:n])
    return f"{shown} (and {len(items) - n} more)" if len(items) > n else shown


def _finish(path: Path, X: np.ndarray, labels: np.ndarray | None, row_ids: list[str] | None,
            feature_names: list[str] | None, ids_from: str, labels_from: str | None,
            where: Callable[[int], str] | None = None) -> Table:
    """Checks common to every format (at least 2 rows, every value finite, unique ids)."""
    n, d = X.shape
    if n < 2:
        raise ValueError(f"{path}: {n} row(s); a map needs at least 2")
    if d < 1:
        raise ValueError(f"{path}: no feature columns")
    ids = [str(i) for i in range(n)] if row_ids is None else row_ids
    if where is None:
        def where(i: int) -> str:
            return f"row {i}" if row_ids is None else f"row {i} ({ids[i]})"
    bad = np.flatnonzero(~np.isfinite(X).all(1))
    if len(bad):
        raise ValueError(f"{path}: {len(bad)} row(s) hold NaN or inf (first: "
                         f"{', '.join(where(int(i)) for i in bad[:5])}); drop or impute them")
    source = (f"{path}: {n} rows x {d} features, row ids from {ids_from}"
              + (f", labels from {labels_from}" if labels_from else ""))
    return Table(X, labels, ids, feature_names, source)


def _numeric(path: Path, X: np.ndarray, what: str) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {what} holds {X.dtype} values, not numbers")
    if X.ndim != 2:
        raise ValueError(f"{path}: {what} has shape {X.shape}; ddvi needs a 2-D matrix "
                         "(rows x features)")
    return X.astype(np.float32)


def _load_npy(path: Path) -> np.ndarray:
    try:
        X = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy file of numbers ({err})") from err
    if not isinstance(X, np.ndarray):
        raise ValueError(f"{path}: holds several arrays (an .npz archive); rename it to .npz")
    return X


def _strings(path: Path, values: np.ndarray, name: str, n: int) -> np.ndarray:
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{path}: {name} has shape {values.shape}, but the matrix has {n} rows")
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.tolist()],
                    dtype=object)


def _unique_ids(path: Path, ids: np.ndarray, name: str) -> list[str]:
    seen: set[str] = set()
    for v in ids:
        if v in seen:
            raise ValueError(f"{path}: the row ids in {name} are not unique ({v!r} repeats)")
        seen.add(v)
    return list(ids)


def _load_npz(path: Path, array: str | None, label_column: str | None,
              id_column: str | None) -> Table:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (ValueError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"{path}: not a readable .npz file of numeric arrays ({err})") from err
    if not isinstance(arrays, dict) or not arrays:
        raise ValueError(f"{path}: the archive holds no arrays")
    names = list(arrays)
    for given, flag in ((array, "--array"), (label_column, "--label-column"),
                        (id_column, "--id-column")):
        if given is not None and given not in arrays:
            raise ValueError(f"{path}: no array named {given!r} ({flag}); it holds "
                             f"{_first(names, 20)}")
    label_name = label_column or (NPZ_LABELS if NPZ_LABELS in arrays else None)
    id_name = id_column or (NPZ_ROW_IDS if NPZ_ROW_IDS in arrays else None)
    if array is None:
        candidates = [a for a in names if a not in (label_name, id_name)]
        if len(candidates) != 1:
            raise ValueError(f"{path}: holds the arrays {_first(names, 20)}; name the matrix with "
                             "--array (array= in Python)")
        array = candidates[0]
    X = _numeric(path, arrays[array], f"array {array!r}")
    n = X.shape[0]
    labels = None if label_name is None else _strings(path, arrays[label_name],
                                                      f"array {label_name!r}", n)
    ids = None if id_name is None else _unique_ids(
        path, _strings(path, arrays[id_name], f"array {id_name!r}", n), f"array {id_name!r}")
    return _finish(path, X, labels, ids, None,
                   "row numbers" if id_name is None else f"array {id_name!r}",
                   None if label_name is None else f"array {label_name!r}")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (blank lines skipped) and the line number of each row."""
    suffix = path.suffix.lower()
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            delimiter = "," if suffix == ".csv" else "\t" if suffix == ".tsv" or "\t" in first else ","
            f.seek(0)
            reader = csv.reader(f, delimiter=delimiter)
            header = next((row for row in reader if row), None)
            rows, lines = [], []
            for row in reader:
                if not row:
                    continue
                if header is not None and len(row) != len(header):
                    raise ValueError(f"{path}: line {reader.line_num} has {len(row)} fields but "
                                     f"the header has {len(header)} (a ragged table; "
                                     f"{'tab' if delimiter == chr(9) else 'comma'}-separated)")
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from err
    except csv.Error as err:
        raise ValueError(f"{path}: malformed {suffix} file ({err})") from err
    if header is None:
        raise ValueError(f"{path}: the file is empty (no header row)")
    return [h.strip() for h in header], rows, lines


def _column(path: Path, header: list[str], name: str, flag: str) -> int:
    if name not in header:
        raise ValueError(f"{path}: no column named {name!r} ({flag}); the columns are "
                         f"{_first(header, 20)}")
    return header.index(name)


def _load_text(path: Path, label_column: str | None, id_column: str | None) -> Table:
    header, rows, lines = _read_rows(path)
    repeated = [h for i, h in enumerate(header) if h in header[:i]]
    if repeated:
        raise ValueError(f"{path}: the column name {repeated[0]!r} appears more than once")
    if len(rows) < 2:
        raise ValueError(f"{path}: {len(rows)} data row(s); a map needs at least 2")
    cells = np.array(rows, dtype=object)
    label_idx = None if label_column is None else _column(path, header, label_column,
                                                           "--label-column")
    if id_column is not None:
        id_idx: int | None = _column(path, header, id_column, "--id-column")
    elif _names_ids(header[0]) and label_idx != 0:
        id_idx = 0
        if len(set(cells[:, 0].tolist())) < len(rows):
            raise ValueError(f"{path}: the first column {header[0]!r} looks like row ids but its "
                             "values repeat; name the id column with --id-column, or rename the "
                             "first column if it is a feature")
    else:
        id_idx = None
    ids = None if id_idx is None else _unique_ids(
        path, np.array([v.strip() for v in cells[:, id_idx]], dtype=object),
        f"column {header[id_idx]!r}")
    labels = None if label_idx is None else np.array([v.strip() for v in cells[:, label_idx]],
                                                     dtype=object)
    features = [j for j in range(len(header)) if j not in (id_idx, label_idx)]
    if not features:
        raise ValueError(f"{path}: no feature columns besides the id and label columns")
    X = np.empty((len(rows), len(features)), dtype=np.float32)
    for k, j in enumerate(features):
        try:
            X[:, k] = cells[:, j].astype(np.float64)
        except ValueError:
            i = next(i for i, v in enumerate(cells[:, j]) if not _is_number(v))
            value = cells[i, j]
            what = "an empty field" if not value.strip() else repr(value)
            raise ValueError(
                f"{path}: column {header[j]!r} is not numeric: line {lines[i]} holds {what}. Every "
                "column but the id and label columns must hold numbers (name a label column with "
                "--label-column, an id column with --id-column; impute or drop missing values)"
            ) from None

    def where(i: int) -> str:
        return f"line {lines[i]}" + ("" if ids is None else f" ({ids[i]})")

    return _finish(path, X, labels, ids, [header[j] for j in features],
                   "row numbers" if id_idx is None else f"column {header[id_idx]!r}",
                   None if label_idx is None else f"column {header[label_idx]!r}", where)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _load_h5ad(path: Path, label_column: str | None, id_column: str | None,
               max_dense_bytes: int) -> Table:
    try:
        import anndata
    except ImportError as err:
        raise ImportError(f"{path}: reading .h5ad files needs the anndata package: "
                          "pip install 'ddvi[singlecell]'") from err
    try:
        adata = anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: not a readable .h5ad file ({type(err).__name__}: {err})") from err
    try:
        n, d = adata.shape
        need = n * d * 4
        if need > max_dense_bytes:
            raise ValueError(f"{path}: X is {n} x {d}; as a dense float32 matrix it would take "
                             f"{need / 2**30:.1f} GiB, over the {max_dense_bytes / 2**30:.1f} GiB "
                             "limit (ddvi trains on dense rows): keep fewer genes first (e.g. the "
                             "highly variable ones) or fewer cells")
        X = _dense_float32(path, adata.X, n, d)
        obs = adata.obs
        columns = [str(c) for c in obs.columns]
        for given, flag in ((label_column, "--label-column"), (id_column, "--id-column")):
            if given is not None and given not in obs.columns:
                raise ValueError(f"{path}: no obs column named {given!r} ({flag}); the obs columns "
                                 f"are {_first(columns, 20) or '(none)'}")
        labels = None if label_column is None else _strings(
            path, obs[label_column].astype(str).to_numpy(), f"obs column {label_column!r}", n)
        ids_from = "obs_names" if id_column is None else f"obs column {id_column!r}"
        raw_ids = adata.obs_names.to_numpy() if id_column is None else obs[id_column].to_numpy()
        ids = _unique_ids(path, _strings(path, raw_ids, ids_from, n), ids_from)
        names = [str(v) for v in adata.var_names]
    finally:
        adata.file.close()
    return _finish(path, X, labels, ids, names, ids_from,
                   None if label_column is None else f"obs column {label_column!r}")


def _dense_float32(path: Path, X: object, n: int, d: int, chunk: int = 4096) -> np.ndarray:
    """The backed ``X`` of an AnnData file as a dense float32 array, read in row chunks."""
    if X is None:
        raise ValueError(f"{path}: the file has no X matrix")
    if hasattr(X, "to_memory"):  # a backed sparse matrix
        X = X.to_memory()
    dtype = np.dtype(X.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{path}: X holds {dtype} values, not numbers")
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        block = X[start:start + chunk]
        out[start:start + chunk] = block.toarray() if hasattr(block, "toarray") else block
    return out
