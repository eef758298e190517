"""The pieces of a map of a data matrix: likelihood choice, seeded split, label codes, latent.tsv."""

import csv

import numpy as np
import pytest

from ddvi.tasks.tabular import (
    choose_likelihood,
    label_codes,
    split_rows,
    write_latent_tsv,
    write_map_figures,
)

BINARY = np.array([[0.0, 1.0], [1.0, 0.0]])
UNIT = np.array([[0.2, 1.0], [0.7, 0.0]])
REAL = np.array([[-3.0, 1.0], [2.5, 40.0]])


@pytest.mark.parametrize("X,kwargs,expected,why", [
    (BINARY, {}, "bernoulli", "every value is 0 or 1"),
    (UNIT, {}, "gaussian", "in [0, 1] but not all 0 or 1"),
    (UNIT, {"binarize": True}, "bernoulli", "--binarize thresholds them at 0.5"),
    (REAL, {}, "gaussian", "range over [-3, 40], outside [0, 1]"),
    (BINARY, {"standardize": True}, "gaussian", "--standardize makes the features real-valued"),
])
def test_auto_likelihood(X, kwargs, expected, why):
    name, reason = choose_likelihood(X, "auto", **kwargs)
    assert name == expected and why in reason


@pytest.mark.parametrize("X,requested,kwargs,said", [
    (REAL, "bernoulli", {}, "needs values in [0, 1], but they range over [-3, 40]"),
    (UNIT, "bernoulli", {}, "give --binarize"),
    (BINARY, "bernoulli", {"standardize": True}, "--standardize makes the features real-valued"),
    (REAL, "auto", {"binarize": True}, "--binarize thresholds values in [0, 1] at 0.5, but"),
    (UNIT, "gaussian", {"binarize": True}, "does not go with --standardize or a gaussian"),
    (UNIT, "poisson", {}, "unknown likelihood 'poisson'"),
])
def test_impossible_likelihoods_are_refused(X, requested, kwargs, said):
    with pytest.raises(ValueError) as err:
        choose_likelihood(X, requested, **kwargs)
    assert said in str(err.value)


def test_explicit_likelihood_is_kept():
    assert choose_likelihood(REAL, "gaussian-iso") == ("gaussian-iso", "as requested")
    assert choose_likelihood(UNIT, "bernoulli", binarize=True) == ("bernoulli", "as requested")


def test_split_is_seeded_and_sized():
    a, b, c = split_rows(200, 0.1, 0), split_rows(200, 0.1, 0), split_rows(200, 0.1, 1)
    assert a.sum() == 20 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert split_rows(5, 0.01, 0).sum() == 1 and split_rows(5, 0.0, 0).sum() == 0
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        split_rows(10, 1.0, 0)
    with pytest.raises(ValueError, match="leaves 1 training row"):
        split_rows(3, 0.5, 0)


def test_label_codes_number_classes_in_order():
    codes, classes = label_codes(np.array(["T", "B", "T", "NK"], dtype=object))
    assert classes == ["B", "NK", "T"] and codes.tolist() == [2, 0, 2, 1]
    codes, classes = label_codes(np.array(["10", "2", "1"], dtype=object))
    assert classes == ["1", "2", "10"] and codes.tolist() == [2, 1, 0]


def test_latent_tsv_round_trips_float32_exactly(tmp_path):
    z = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    ids = ["a", "b\tc", "d", "e", "f"]
    path = write_latent_tsv(tmp_path / "latent.tsv", ids, z, np.array(list("xyxyx")),
                            np.array([0, 1, 0, 0, 0], bool))
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["row_id", "z1", "z2", "label", "split"]
    assert [r[0] for r in rows[1:]] == ids and [r[4] for r in rows[1:]][:2] == ["train", "test"]
    assert np.array_equal(np.array([r[1:3] for r in rows[1:]], dtype=np.float32), z)


def test_map_figures(tmp_path):
    z = np.random.default_rng(0).normal(size=(30, 2))
    paths, note = write_map_figures(tmp_path, z, np.array(list("ab") * 15, dtype=object),
                                    [str(i) for i in range(30)], np.zeros(30, bool),
                                    [{"epoch": 1, "loss": 1.0}], "map")
    assert (tmp_path / "map.png").exists() and (tmp_path / "history.png").exists()
    assert (tmp_path / "map.html").exists() or note.startswith("skipped map.html")
