"""A map of a data matrix (:func:`ddvi.data.tables.load_table`): the likelihood choice, the
train/test split, label codes, and the run folder's ``latent.tsv``, ``map.png`` and ``map.html``.

Example:
    >>> import numpy as np
    >>> choose_likelihood(np.array([[0.0, 1.0], [1.0, 1.0]]), "auto")
    ('bernoulli', 'every value is 0 or 1')
    >>> int(split_rows(10, 0.2, seed=0).sum())
    2
    >>> label_codes(np.array(["10", "9", "9"], dtype=object))
    (array([1, 0, 0]), ['9', '10'])
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddvi.likelihoods import LIKELIHOODS

LIKELIHOOD_CHOICES = ("auto", *LIKELIHOODS)


def choose_likelihood(X: np.ndarray, requested: str, binarize: bool = False,
                      standardize: bool = False) -> tuple[str, str]:
    """The observation model for the rows X and the reason for it.

    ``auto`` picks Bernoulli when every value is 0 or 1, or when every value is in [0, 1] and
    ``binarize`` thresholds them at 0.5; Gaussian otherwise (and always with ``standardize``).
    Combinations that cannot work (Bernoulli with standardized or out-of-range data, binarizing
    for a Gaussian likelihood) are refused with a ValueError saying what to change.
    """
    if requested not in LIKELIHOOD_CHOICES:
        raise ValueError(f"unknown likelihood {requested!r}; choose one of {LIKELIHOOD_CHOICES}")
    lo, hi = float(X.min()), float(X.max())
    in_unit = lo >= 0 and hi <= 1
    binary = bool(((X == 0) | (X == 1)).all())
    if binarize:
        if standardize or requested.startswith("gaussian"):
            raise ValueError("--binarize thresholds values at 0.5 for the bernoulli likelihood; "
                             "it does not go with --standardize or a gaussian likelihood")
        if not in_unit:
            raise ValueError(f"--binarize thresholds values in [0, 1] at 0.5, but the values range "
                             f"over [{lo:.4g}, {hi:.4g}]")
    if requested == "bernoulli":
        if standardize:
            raise ValueError("--standardize makes the features real-valued, which the bernoulli "
                             "likelihood cannot model: use --likelihood gaussian")
        if not in_unit:
            raise ValueError(f"the bernoulli likelihood needs values in [0, 1], but they range "
                             f"over [{lo:.4g}, {hi:.4g}]: use --likelihood gaussian")
        if not binary and not binarize:
            raise ValueError("the bernoulli likelihood needs values that are 0 or 1: give "
                             "--binarize to threshold them at 0.5, or use --likelihood gaussian")
        return "bernoulli", "as requested"
    if requested != "auto":
        return requested, "as requested"
    if standardize:
        return "gaussian", "--standardize makes the features real-valued"
    if binarize:
        return "bernoulli", "every value is in [0, 1] and --binarize thresholds them at 0.5"
    if binary:
        return "bernoulli", "every value is 0 or 1"
    if in_unit:
        return "gaussian", ("the values are in [0, 1] but not all 0 or 1 (--binarize would "
                            "threshold them at 0.5 for a bernoulli likelihood)")
    return "gaussian", f"the values range over [{lo:.4g}, {hi:.4g}], outside [0, 1]"


def split_rows(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the held-out test rows: a seeded random ``test_fraction`` of the ``n`` rows
    (at least one row when the fraction is positive; none for 0)."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    n_test = 0 if test_fraction == 0 else max(1, round(test_fraction * n))
    if n - n_test < 2:
        raise ValueError(f"--test-fraction {test_fraction} of {n} rows leaves {n - n_test} "
                         "training row(s); a fit needs at least 2")
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[:n_test]] = True
    return test


def label_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes 0..K-1 of string labels and the classes in code order (numeric labels in
    numeric order, others sorted as text)."""
    classes = list(dict.fromkeys(labels.tolist()))
    try:
        classes.sort(key=float)
    except ValueError:
        classes.sort()
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels.tolist()], dtype=np.int64), classes


def write_latent_tsv(path: str | Path, row_ids: Sequence[str], z: np.ndarray,
                     labels: np.ndarray | None = None, test: np.ndarray | None = None) -> Path:
    """``row_id z1 .. zd [label] [split]`` (tab-separated, one line a row; latents with 9
    significant digits, exact for float32)."""
    path = Path(path)
    header = ["row_id", *(f"z{j + 1}" for j in range(z.shape[1]))]
    columns: list[Sequence[Any]] = [list(row_ids), *([f"{v:.9g}" for v in col] for col in z.T)]
    if labels is not None:
        header.append("label")
        columns.append(list(labels))
    if test is not None:
        header.append("split")
        columns.append(["test" if t else "train" for t in test])
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*columns))
    return path


def write_map_figures(run: str | Path, z: np.ndarray, labels: np.ndarray | None,
                      row_ids: Sequence[str], test: np.ndarray, history: list[dict[str, Any]],
                      title: str) -> tuple[list[Path], str | None]:
    """``map.png`` (the rows' latents coloured by label), ``history.png`` and, where the
    ``maps`` extra is installed, ``map.html`` (hover: row id, label, split). Returns the files
    written and a note when the HTML map was skipped."""
    from ddvi import plot

    run = Path(run)
    paths = [plot.plot_latents(z, labels=labels, path=run / "map.png", title=title)]
    if history:
        paths.append(plot.plot_history(history, run / "history.png"))
    try:
        from ddvi.interactive import MAX_LEGEND_ENTRIES, write_map_html
    except ImportError as err:
        return paths, f"skipped map.html ({err})"
    groups = {"split": ["test" if t else "train" for t in test]}
    if labels is not None:
        groups = {"label": list(labels), **groups}
    many = labels is not None and len(set(labels.tolist())) > MAX_LEGEND_ENTRIES
    try:
        paths.append(write_map_html(run / "map.html", z, row_ids=list(row_ids), groups=groups,
                                    color_by="split" if many else None, title=title))
    except ImportError as err:
        return paths, f"skipped map.html ({err})"
    return paths, None
