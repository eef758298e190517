"""benchmarks/semi_alpha.py selects alpha and labelled rows per batch on a validation split of the
training set and never passes test data to its scorer (issue 13 item 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def semi_alpha():
    yield from load_script("semi_alpha")


class Untouchable:
    """Stands for the test half of the data set: any use of it fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("the test set was used")

    __getitem__ = __len__ = __iter__ = __array__ = __getattr__ = _fail


def synthetic_train(n=600):
    """uint8 (n, 28, 28) images whose first two pixels encode the row id; labels 0-9, balanced."""
    rng = np.random.default_rng(0)
    x = (rng.random((n, 28, 28)) > 0.5).astype(np.uint8) * 255
    ids = np.arange(n)
    x[:, 0, 0], x[:, 0, 1] = ids // 256, ids % 256
    return x, np.arange(n) % 10


def row_ids(x):
    return set((x[:, 0, 0].astype(int) * 256 + x[:, 0, 1].astype(int)).tolist())


def test_selection_scores_validation_rows_only(semi_alpha, monkeypatch, capsys):
    train = synthetic_train()
    monkeypatch.setattr(semi_alpha, "load_dataset", lambda name: (train, (Untouchable(), Untouchable())))
    calls = []

    def scorer(config, fit, val):
        calls.append((config, fit, val))
        for part in (*fit, *val):
            assert isinstance(part, np.ndarray)
        return {"acc": config["alpha"] / 1000 + config["lb"] / 1e4, "knn": 0.5}

    monkeypatch.setattr(semi_alpha, "score", scorer)
    out = semi_alpha.main(["method=aevb", "lb=0,32", "alpha=1,1000", "n=300", "n_val=100",
                           "epochs=1", "labels=50"])
    assert len(calls) == 4
    for _, (x_fit, _), (x_val, y_val) in calls:
        fit_ids, val_ids = row_ids(x_fit), row_ids(x_val)
        assert len(val_ids) == len(x_val) == 100 and len(fit_ids) == len(x_fit) == 300
        assert not fit_ids & val_ids  # validation is held out of training
        assert np.array_equal(np.bincount(y_val, minlength=10), np.full(10, 10))  # stratified
    assert out["best"]["config"]["alpha"] == 1000 and out["best"]["config"]["lb"] == 32
    printed = capsys.readouterr().out
    assert "scored on the validation split: 100 of the 600 mnist training images" in printed
    assert "the test set is not used" in printed
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert all(line["scored_on"] != "test" for line in lines) and "best" in lines[-1]


def test_validation_split_is_seeded_and_disjoint(semi_alpha):
    x, y = synthetic_train(200)
    (xf, yf), (xv, yv) = semi_alpha.validation_split(x, y, 50, seed=3)
    (xf2, _), (xv2, _) = semi_alpha.validation_split(x, y, 50, seed=3)
    assert np.array_equal(xv, xv2) and np.array_equal(xf, xf2)
    assert row_ids(xf) | row_ids(xv) == set(range(200)) and not row_ids(xf) & row_ids(xv)
    assert np.array_equal(np.bincount(yv), np.full(10, 5))
    with pytest.raises(ValueError, match="n_val"):
        semi_alpha.validation_split(x, y, 200)


def test_real_scorer_runs_on_tiny_data(semi_alpha):
    x, y = synthetic_train(320)
    fit, val = semi_alpha.validation_split(x, y, 60, seed=0)
    r = semi_alpha.score({"method": "aevb", "epochs": 1, "lb": 8, "alpha": 10.0, "labels": 40},
                         fit, val)
    assert 0 <= r["acc"] <= 1 and 0 <= r["knn"] <= 1 and r["last"]
