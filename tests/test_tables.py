"""load_table: every format reads the same matrix identically; every bad input is refused with an
error that names the file and the problem."""

import sys

import numpy as np
import pytest
import scipy.sparse

from ddvi.data.tables import check_feature_names, load_table

N, D = 12, 4
X = (np.arange(N * D, dtype=np.float32).reshape(N, D) - 20) / 8  # exact in text and float32
LABELS = np.array(["T", "B", "NK"] * 4, dtype=object)
IDS = [f"cell{i}" for i in range(N)]
NAMES = ["g1", "g2", "g3", "g4"]


def write_text(path, sep=",", ids=True, labels=True, first="cell"):
    header = ([first] if ids else []) + NAMES + (["type"] if labels else [])
    lines = [sep.join(header)]
    for i in range(N):
        row = ([IDS[i]] if ids else []) + [repr(float(v)) for v in X[i]] + \
              ([LABELS[i]] if labels else [])
        lines.append(sep.join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_h5ad(path, sparse=False):
    anndata = pytest.importorskip("anndata")
    import pandas as pd

    obs = pd.DataFrame({"type": pd.Categorical(LABELS.tolist())}, index=IDS)
    var = pd.DataFrame(index=NAMES)
    anndata.AnnData(X=scipy.sparse.csr_matrix(X) if sparse else X, obs=obs, var=var).write_h5ad(path)
    return path


@pytest.mark.parametrize("name", ["m.csv", "m.tsv", "m_tab.txt", "m_comma.txt"])
def test_text_formats_read_the_same_matrix(tmp_path, name):
    sep = "\t" if name.endswith(".tsv") or "tab" in name else ","
    t = load_table(write_text(tmp_path / name, sep), label_column="type")
    assert t.X.dtype == np.float32 and np.array_equal(t.X, X)
    assert t.labels.tolist() == LABELS.tolist() and t.row_ids == IDS and t.feature_names == NAMES
    assert str(tmp_path / name) in t.source and "column 'cell'" in t.source


def test_npy_and_npz_read_the_same_matrix(tmp_path):
    np.save(tmp_path / "m.npy", X.astype(np.float64))
    t = load_table(tmp_path / "m.npy")
    assert np.array_equal(t.X, X) and t.labels is None and t.feature_names is None
    assert t.row_ids == [str(i) for i in range(N)]
    np.savez(tmp_path / "m.npz", counts=X, labels=LABELS.astype(str), row_ids=np.array(IDS))
    t = load_table(tmp_path / "m.npz")
    assert np.array_equal(t.X, X) and t.labels.tolist() == LABELS.tolist() and t.row_ids == IDS
    np.savez(tmp_path / "two.npz", a=X, b=X * 2, kind=LABELS.astype(str))
    t = load_table(tmp_path / "two.npz", array="b", label_column="kind")
    assert np.array_equal(t.X, X * 2) and t.labels.tolist() == LABELS.tolist()


@pytest.mark.parametrize("sparse", [False, True])
def test_h5ad_reads_the_same_matrix(tmp_path, sparse):
    t = load_table(write_h5ad(tmp_path / "m.h5ad", sparse), label_column="type")
    assert t.X.dtype == np.float32 and np.array_equal(t.X, X)
    assert t.labels.tolist() == LABELS.tolist() and t.row_ids == IDS and t.feature_names == NAMES


def test_default_id_column_only_when_named_like_ids(tmp_path):
    t = load_table(write_text(tmp_path / "a.csv", first=""), label_column="type")
    assert t.row_ids == IDS and t.feature_names == NAMES
    t = load_table(write_text(tmp_path / "b.csv", ids=False, labels=False))
    assert t.row_ids == [str(i) for i in range(N)] and t.labels is None
    t = load_table(write_text(tmp_path / "c.csv", first="Wine_ID"), label_column="type")
    assert t.row_ids == IDS and t.feature_names == NAMES  # any first column named *_id


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


HEADER = "cell,g1,g2,type\n"


@pytest.mark.parametrize("name,text,kwargs,said", [
    ("m.xlsx", "x", {}, "unknown file type '.xlsx'"),
    ("m.csv", "", {}, "the file is empty"),
    ("m.csv", "\n\n", {}, "the file is empty"),
    ("m.csv", HEADER, {"label_column": "type"}, "0 data row(s); a map needs at least 2"),
    ("m.csv", HEADER + "c1,1,2,T\n", {"label_column": "type"}, "1 data row(s)"),
    ("m.csv", HEADER + "c1,1,2,T\nc2,1,2,B\n", {}, "column 'type' is not numeric: line 2 holds 'T'"),
    ("m.csv", HEADER + "c1,1,2,T\nc2,1,,B\n", {"label_column": "type"},
     "column 'g2' is not numeric: line 3 holds an empty field"),
    ("m.csv", HEADER + "c1,1,2,T\nc2,1,2,B\n", {"label_column": "kind"},
     "no column named 'kind' (--label-column); the columns are 'cell', 'g1', 'g2', 'type'"),
    ("m.csv", HEADER + "c1,1,2,T\nc2,1,2\nc3,1,2,B\n", {"label_column": "type"},
     "line 3 has 3 fields but the header has 4"),
    ("m.csv", HEADER + "c1,nan,2,T\nc2,1,2,B\nc3,1,inf,B\nc4,1,2,B\n", {"label_column": "type"},
     "2 row(s) hold NaN or inf (first: line 2 (c1), line 4 (c3))"),
    ("m.csv", HEADER + "c1,1,2,T\nc1,1,2,B\n", {"label_column": "type"},
     "'cell' looks like row ids but its values repeat"),
    ("m.csv", HEADER + "c1,1,2,T\nc1,1,2,B\n", {"label_column": "type", "id_column": "g1"},
     "the row ids in column 'g1' are not unique ('1' repeats)"),
    ("m.csv", "cell,g1,g1\nc1,1,2\nc2,1,2\n", {}, "the column name 'g1' appears more than once"),
    ("m.csv", "cell,type\nc1,T\nc2,B\n", {"label_column": "type"}, "no feature columns"),
    ("m.csv", HEADER + "c1,1,2,T\nc2,1,2,B\n", {"array": "X"}, "names an array of an .npz file"),
])
def test_bad_text_input_names_the_file_and_the_problem(tmp_path, name, text, kwargs, said):
    path = _bad(tmp_path, name, text)
    with pytest.raises(ValueError) as err:
        load_table(path, **kwargs)
    assert str(path) in str(err.value) and said in str(err.value), str(err.value)


def test_bad_binary_input_names_the_file_and_the_problem(tmp_path):
    cases = []
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None]))
    cases.append(("obj.npy", {}, "not a readable .npy file"))
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    cases.append(("cube.npy", {}, "has shape (2, 2, 2); ddvi needs a 2-D matrix"))
    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    cases.append(("text.npy", {}, "holds <U1 values, not numbers"))
    np.save(tmp_path / "one.npy", np.zeros((1, 3)))
    cases.append(("one.npy", {}, "1 row(s); a map needs at least 2"))
    np.save(tmp_path / "inf.npy", np.array([[0.0, 1], [np.inf, 1], [2, 2]]))
    cases.append(("inf.npy", {}, "1 row(s) hold NaN or inf (first: row 1)"))
    cases.append(("inf.npy", {"label_column": "y"}, "a .npy file holds only the matrix"))
    np.savez(tmp_path / "two.npz", a=X, b=X)
    cases.append(("two.npz", {}, "holds the arrays 'a', 'b'; name the matrix with --array"))
    cases.append(("two.npz", {"array": "c"}, "no array named 'c' (--array); it holds 'a', 'b'"))
    np.savez(tmp_path / "short.npz", X=X, labels=np.array(["a"]))
    cases.append(("short.npz", {}, "array 'labels' has shape (1,), but the matrix has 12 rows"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    cases.append(("junk.npz", {}, "not a readable .npz file"))
    for name, kwargs, said in cases:
        with pytest.raises(ValueError) as err:
            load_table(tmp_path / name, **kwargs)
        assert str(tmp_path / name) in str(err.value) and said in str(err.value), str(err.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.csv does not exist"):
        load_table(tmp_path / "missing.csv")


def test_bad_h5ad_input(tmp_path):
    path = write_h5ad(tmp_path / "m.h5ad", sparse=True)
    with pytest.raises(ValueError, match="no obs column named 'kind' .* the obs columns are 'type'"):
        load_table(path, label_column="kind")
    with pytest.raises(ValueError, match=r"X is 12 x 4; as a dense float32 matrix it would take"):
        load_table(path, max_dense_bytes=100)
    (tmp_path / "junk.h5ad").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="junk.h5ad: not a readable .h5ad file"):
        load_table(tmp_path / "junk.h5ad")


def test_h5ad_without_anndata_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "m.h5ad").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "anndata", None)
    with pytest.raises(ImportError, match=r"m.h5ad: .* pip install 'ddvi\[singlecell\]'"):
        load_table(tmp_path / "m.h5ad")


def test_check_feature_names_says_which_differ(tmp_path):
    t = load_table(write_text(tmp_path / "m.csv"), label_column="type")
    check_feature_names(t, NAMES, D)
    check_feature_names(t, None, D)
    with pytest.raises(ValueError, match="column 1 is 'g1' here, 'g2' in the model"):
        check_feature_names(t, ["g2", "g1", "g3", "g4"], D)
    with pytest.raises(ValueError, match="missing 'g5'; not in the model 'g4'"):
        check_feature_names(t, ["g1", "g2", "g3", "g5"], D)
    with pytest.raises(ValueError, match="4 features, but the model was fitted on 3: not in the "
                                         "model 'g4'"):
        check_feature_names(t, ["g1", "g2", "g3"], 3)
