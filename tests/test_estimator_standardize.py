"""DDVI(standardize=True): the training rows' means and stds are stored with the model, applied
again after loading and by resume; bad combinations and tampered statistics are refused."""

import json

import numpy as np
import pytest

from ddvi import DDVI
from ddvi.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ddvi.estimator import MODEL_FILE, ResumeMismatchError


def data(n=64, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, 4)) * [1, 10, 100, 1] + [0, 5, -50, 0]
    X[:, 3] = 7.0  # a constant feature
    return X.astype(np.float32)


def small(**kw):
    base = dict(method="aevb", prior="gaussian", likelihood="gaussian", hidden=(8,), epochs=1,
                batch_size=32, verbose=False, standardize=True, threads=1)
    return DDVI(**{**base, **kw})


def test_statistics_are_stored_and_applied_again_after_load(tmp_path):
    X = data()
    m = small().fit(X, feature_names=["a", "b", "c", "d"])
    assert np.allclose(m.options_.feature_mean, X.mean(0), rtol=1e-6)
    assert np.allclose(m.options_.feature_std[:3], X.std(0)[:3], rtol=1e-5)
    assert m.options_.feature_std[3] == 1.0 and m.options_.feature_names == ["a", "b", "c", "d"]
    prepared = m.prepare(X, binarize=False).numpy()
    assert np.allclose(prepared.mean(0), 0, atol=1e-5) and np.allclose(prepared[:, :3].std(0), 1)
    assert (prepared[:, 3] == 0).all()
    loaded = DDVI.load(m.save(tmp_path / "m"))
    assert loaded.standardize and loaded.options_.feature_mean == m.options_.feature_mean
    assert np.array_equal(loaded.transform(X), m.transform(X))
    assert loaded.score(X) == m.score(X)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["options"]["feature_std"] == m.options_.feature_std


def test_standardizing_changes_the_model_and_is_seeded():
    X = data()
    a, b = small().fit(X), small().fit(X)
    assert np.array_equal(a.transform(X), b.transform(X))
    plain = small(standardize=False).fit(X)
    assert plain.options_.feature_mean is None
    assert not np.allclose(plain.transform(X), a.transform(X))


def test_bernoulli_with_standardize_is_refused(tmp_path):
    with pytest.raises(ValueError, match="bernoulli likelihood cannot model"):
        small(likelihood="bernoulli", run_dir=str(tmp_path / "run")).fit((data() > 0) * 1.0)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="feature_names has 2 names, but X has 4"):
        small().fit(data(), feature_names=["a", "b"])


def test_standardize_cannot_change_on_resume(tmp_path):
    X = data()
    small(epochs=1, run_dir=str(tmp_path)).fit(X)
    with pytest.raises(ResumeMismatchError, match="standardize=True, not False"):
        small(epochs=2, run_dir=str(tmp_path), standardize=False).fit(X, resume=True)
    resumed = small(epochs=2, run_dir=str(tmp_path)).fit(X, resume=True)
    assert [r["epoch"] for r in resumed.history_] == [1, 2]


@pytest.mark.parametrize("field,value,said", [
    ("feature_std", [1.0, 0.0, 1.0, 1.0], "every std > 0"),
    ("feature_mean", [0.0, 1.0], "has 2 entries, not one per feature"),
    ("feature_mean", None, "exactly when params.standardize is true"),
])
def test_tampered_statistics_are_refused(tmp_path, field, value, said):
    m = small().fit(data())
    m.save(tmp_path / "m")
    tensors, meta = load_checkpoint(tmp_path / "m" / MODEL_FILE)
    meta["config"]["options"][field] = value
    save_checkpoint(tmp_path / "bad" / MODEL_FILE, tensors, meta)  # a valid checksum
    with pytest.raises(CheckpointError, match=said):
        DDVI.load(tmp_path / "bad")
