"""Estimator etiquette, persistence, resume and bad input."""

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.exceptions import NotFittedError

from ddvi import DDVI, ClusteringDDVI, SemiSupervisedDDVI
from ddvi.checkpoint import CheckpointError
from ddvi.train import NonFiniteLossError, Trainer


def data(n=96, d=12, seed=0):
    return (np.random.default_rng(seed).random((n, d)) > 0.5).astype(np.float32)


def small(**kw):
    base = dict(hidden=(16,), epochs=2, batch_size=32, timesteps=4, denoiser_hidden=16,
                verbose=False, lr=1e-3, threads=1)  # a fixed thread count: the same floats
    return DDVI(**{**base, **kw})


def semi(**kw):
    return SemiSupervisedDDVI(**small(**kw).get_params())


def clusters(**kw):
    base = small().get_params()
    return ClusteringDDVI(**{**base, **kw})


@pytest.mark.parametrize("method,sleep", [("aevb", "full"), ("aevb-iaf", "full"), ("h-aevb", "full"),
                                          ("pis", "full"), ("aaeb", "full"), ("ddvi", "none"),
                                          ("ddvi", "latent"), ("ddvi", "full")])
def test_fit_transform_score_sample_save_load(method, sleep, tmp_path):
    X = data()
    m = small(method=method, sleep=sleep).fit(X)
    loaded = DDVI.load(m.save(tmp_path / "m"))
    assert np.array_equal(loaded.transform(X), m.transform(X))
    z = m.transform(X)
    assert z.shape == (96, 2) and np.isfinite(z).all()
    assert np.array_equal(z, m.transform(X))  # deterministic
    if method == "aaeb":
        with pytest.raises(ValueError, match="no ELBO"):
            m.score(X)
    else:
        s = m.score(X)
        assert np.isfinite(s) and s < 0 and s == m.score(X)
    xs, zs = m.sample(5)
    assert xs.shape == (5, 12) and zs.shape == (5, 2) and (xs >= 0).all() and (xs <= 1).all()
    assert [r["epoch"] for r in m.history_] == [1, 2]
    assert {"loss", "rec"} <= set(m.history_[0])


def test_same_seed_same_model_and_save_load_round_trip(tmp_path):
    X = data()
    a, b = small(seed=3).fit(X), small(seed=3).fit(X)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert not np.array_equal(a.transform(X), small(seed=4).fit(X).transform(X))
    a.save(tmp_path / "m")
    c = DDVI.load(tmp_path / "m")
    assert np.array_equal(a.transform(X), c.transform(X))
    assert a.score(X) == c.score(X)
    assert c.get_params()["hidden"] == (16,) and c.history_ == a.history_


def test_compile_trains_the_same_model(tmp_path):
    """``compile=True`` (the chain through torch.compile) fits the same model to float precision,
    and a run may be resumed with it switched."""
    X = data()
    plain = small(seed=2, sleep="full").fit(X)
    compiled = small(seed=2, sleep="full", compile=True).fit(X)
    np.testing.assert_allclose(compiled.transform(X), plain.transform(X), rtol=1e-3, atol=1e-3)
    small(epochs=1, seed=2, run_dir=str(tmp_path)).fit(X)
    resumed = small(seed=2, run_dir=str(tmp_path), compile=True).fit(X, resume=True)
    assert len(resumed.history_) == 2


def test_resume_continues_exactly(tmp_path):
    X = data()
    straight = small(epochs=4, seed=1).fit(X)
    first = small(epochs=2, seed=1, run_dir=str(tmp_path)).fit(X)
    assert (tmp_path / "checkpoint.safetensors").exists() and (tmp_path / "history.csv").exists()
    resumed = small(epochs=4, seed=1, run_dir=str(tmp_path)).fit(X, resume=True)
    assert len(first.history_) == 2 and len(resumed.history_) == 4
    assert np.array_equal(straight.transform(X), resumed.transform(X))


def test_checkpoint_is_not_pickle_and_corruption_is_detected(tmp_path):
    X = data()
    small().fit(X).save(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    raw = bytearray(path.read_bytes())
    assert not raw.startswith(b"\x80")  # not a pickle stream
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupted"):
        DDVI.load(tmp_path / "m")
    path.write_bytes(bytes(raw[:50]))
    with pytest.raises(CheckpointError):
        DDVI.load(tmp_path / "m")
    with pytest.raises(CheckpointError, match="does not exist"):
        DDVI.load(tmp_path / "nothing")


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 5)), "empty"),
    (np.full((4, 5), np.nan), "NaN or inf"),
    (np.zeros(5), "shape"),
    (np.array([["a"]]), "numeric"),
    (np.full((4, 5), 2.0), r"\[0, 1\]"),
])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        small().fit(bad)


def test_bad_names_and_unfitted():
    with pytest.raises(ValueError, match="unknown method"):
        small(method="vae").fit(data())
    with pytest.raises(ValueError):
        small(prior="banana").fit(data())
    with pytest.raises(NotFittedError, match="not fitted"):
        small().transform(data())
    m = small().fit(data())
    with pytest.raises(ValueError, match="features"):
        m.transform(data(d=7))


def test_images_and_uint8_are_accepted():
    X = (np.random.default_rng(0).random((40, 4, 4)) * 255).astype(np.uint8)
    m = small(method="aevb").fit(X)
    assert m.transform(X).shape == (40, 2) and m.n_features_in_ == 16


def test_non_finite_loss_stops_training(tmp_path):
    m = small()
    X = torch.from_numpy(data())
    from ddvi.methods import build_method

    method = build_method("aevb", 12, hidden=(8,))
    method.training_step = lambda x, opt, ctx: {"loss": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        Trainer(method, epochs=1, batch_size=32, verbose=False, run_dir=tmp_path).fit(X)
    assert m is not None


def test_sklearn_clone_and_params():
    from sklearn.base import clone

    m = small(prior="square", timesteps=7)
    c = clone(m)
    assert c.get_params() == m.get_params()


@pytest.mark.parametrize("method", ["aevb", "ddvi", "aaeb"])
def test_semi_supervised_fit_predict_save_load(method, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 96)
    X = data()
    y_masked = y.copy()
    y_masked[20:] = -1
    m = semi(method=method, prior="square").fit(X, y_masked)
    assert m.options_.task == "semi-supervised"
    pred = m.predict(X)
    assert pred.shape == (96,) and pred.min() >= 0 and pred.max() < 10
    assert np.allclose(m.predict_proba(X).sum(1), 1, atol=1e-5)
    loaded = DDVI.load(m.save(tmp_path / "m"))
    assert type(loaded) is SemiSupervisedDDVI and type(SemiSupervisedDDVI.load(tmp_path / "m")) \
        is SemiSupervisedDDVI
    assert np.array_equal(loaded.predict(X), pred)
    assert np.array_equal(loaded.transform(X), m.transform(X))
    if method == "ddvi":
        assert m.method_.base.sleep == m.sleep == "none"


def test_semi_supervised_bad_labels():
    with pytest.raises(ValueError, match="partitions"):
        semi(prior="square").fit(data(), np.full(96, 12))
    with pytest.raises(ValueError, match="shape"):
        semi(prior="square").fit(data(), np.zeros(5, dtype=int))
    with pytest.raises(AttributeError, match="predict"):
        small(method="aevb").fit(data()).predict(data())


@pytest.mark.parametrize("cluster_model", ["mixture", "variable"])
def test_clustering_fit_predict_save_load(cluster_model, tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 12)) * 4
    truth = rng.integers(0, 3, 150)
    X = (centres[truth] + rng.normal(size=(150, 12)) * 0.3).astype(np.float32)
    m = clusters(method="aevb", likelihood="gaussian", n_clusters=3, cluster_model=cluster_model,
                 epochs=3)
    ids = m.fit_predict(X)
    assert ids.shape == (150,) and ids.min() >= 0 and ids.max() < 3
    assert m.options_.task == "clustering"
    loaded = ClusteringDDVI.load(m.save(tmp_path / "m"))
    assert type(loaded) is ClusteringDDVI and type(DDVI.load(tmp_path / "m")) is ClusteringDDVI
    assert type(ClusteringDDVI.load(small(method="aevb", likelihood="gaussian", epochs=1).fit(
        X).save(tmp_path / "u"))) is DDVI
    assert np.array_equal(loaded.predict(X), ids)
    from ddvi.report import evaluate

    out = evaluate(loaded, X, truth, mmd_samples=50)
    assert {"purity", "nmi", "completeness"} <= set(out["clusters_model"]) <= set(out["clusters_gmm"])


def test_clustering_needs_its_estimator():
    with pytest.raises(AttributeError, match="fit_predict"):
        small().fit_predict(data())
    with pytest.raises(TypeError, match="n_clusters"):
        small(n_clusters=2)
    with pytest.raises(ValueError, match="cluster_model"):
        clusters(n_clusters=2, cluster_model="kmeans").fit(data())
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        clusters(n_clusters=0).fit(data())


def test_unsupervised_ddvi_refuses_semi_supervised_labels():
    y = np.where(np.arange(96) < 20, np.arange(96) % 10, -1)
    with pytest.raises(ValueError, match="SemiSupervisedDDVI"):
        small(method="aevb", epochs=1).fit(data(), y)
    with pytest.warns(UserWarning, match="y is ignored"):
        m = small(method="aevb", epochs=1).fit(data(), np.arange(96) % 10)
    assert m.options_.task == "unsupervised"
    with pytest.raises(ValueError, match="needs labels"):
        semi(method="aevb", prior="square").fit(data(), None)


@pytest.mark.parametrize("call", ["transform", "predict", "predict_proba", "score", "sample", "save"])
def test_unfitted_model_raises_sklearn_not_fitted_error(call, tmp_path):
    model = semi(method="aevb")
    args = {"sample": (3,), "save": (tmp_path / "m",)}.get(call, (data(),))
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(model, call)(*args)


def test_semi_supervised_without_any_label_is_refused():
    with pytest.raises(ValueError, match="no labelled rows"):
        semi(method="aevb", prior="square").fit(data(), np.full(96, -1))


@pytest.mark.parametrize("y", [np.array(["cat", "dog"] * 48),
                               np.array(["cat", "dog"] * 48, dtype=object)])
def test_string_labels_are_refused_clearly(y):
    with pytest.raises(ValueError, match="integer class labels.*map the classes"):
        semi(method="aevb", prior="square").fit(data(), y)


def test_object_integer_labels_are_accepted():
    y = np.where(np.arange(96) < 20, np.arange(96) % 10, -1).astype(object)
    m = semi(method="aevb", prior="square", epochs=1).fit(data(), y)
    assert m.options_.task == "semi-supervised"


def test_sparse_input_is_densified_and_float64_preserved():
    X = data()
    dense = small(method="aevb", epochs=1).fit(X)
    sparse = small(method="aevb", epochs=1).fit(scipy.sparse.csr_matrix(X))
    assert np.array_equal(dense.transform(X), sparse.transform(scipy.sparse.csr_matrix(X)))
    assert dense.transform(X).dtype == np.float32
    assert dense.transform(X.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("bad,error,match", [
    (np.ones((4, 3)) + 1j, ValueError, "Complex data not supported"),
    (np.ones(4), ValueError, "Reshape your data"),
    (np.ones((4, 0)), ValueError, r"0 feature\(s\) \(shape=\(4, 0\)\)"),
    (np.array([[{"a": 1}, 0.5]], dtype=object), TypeError, "must be numeric"),
])
def test_input_errors_use_sklearn_wording(bad, error, match):
    with pytest.raises(error, match=match):
        small(method="aevb").fit(bad)


def test_feature_count_is_checked_by_every_method():
    m = semi(method="aevb", prior="square", epochs=1).fit(data(), np.arange(96) % 10)
    for call in ("transform", "predict", "predict_proba", "score"):
        with pytest.raises(ValueError, match="X has 7 features, but SemiSupervisedDDVI is expecting 12"):
            getattr(m, call)(data(d=7))


def test_predict_and_fit_predict_exist_only_where_they_mean_something():
    m = small(method="aevb").fit(data())
    assert not hasattr(m, "predict") and not hasattr(m, "predict_proba")
    assert not hasattr(small(), "fit_predict") and hasattr(clusters(n_clusters=2), "fit_predict")
    assert not hasattr(semi(), "fit_predict") and not hasattr(clusters(), "predict_proba")


def test_resume_refuses_changed_options_naming_them(tmp_path):
    from ddvi.estimator import ResumeMismatchError

    X = data()
    small(method="aevb", epochs=2, run_dir=str(tmp_path)).fit(X)
    stored = (tmp_path / "checkpoint.safetensors").read_bytes()
    for change, match in [({"prior": "square"}, "prior='pinwheel', not 'square'"),
                          ({"method": "ddvi"}, "method='aevb', not 'ddvi'"),
                          ({"hidden": (32,)}, r"hidden=\[16\], not \[32\]"),
                          ({"seed": 5}, "seed=0, not 5")]:
        m = small(**{"method": "aevb", "epochs": 3, "run_dir": str(tmp_path), **change})
        with pytest.raises(ResumeMismatchError, match=match):
            m.fit(X, resume=True)
        assert not hasattr(m, "method_")  # no half-fitted model
    with pytest.raises(ResumeMismatchError, match="training data differ"):
        small(method="aevb", epochs=3, run_dir=str(tmp_path)).fit(data(seed=1), resume=True)
    with pytest.raises(ResumeMismatchError, match="task='unsupervised', not 'semi-supervised'"):
        semi(method="aevb", epochs=3, run_dir=str(tmp_path)).fit(
            X, np.arange(96) % 10, resume=True)
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == stored
    resumed = small(method="aevb", epochs=3, run_dir=str(tmp_path), checkpoint_every=2,
                    verbose=False).fit(X, resume=True)
    assert len(resumed.history_) == 3


def test_threads_are_used_during_fit_and_restored(monkeypatch, tmp_path):
    seen = []
    from ddvi import estimator

    real = estimator.Trainer.fit

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(estimator.Trainer, "fit", spy)
    before = torch.get_num_threads()
    m = small(method="aevb", threads=1, run_dir=str(tmp_path / "run")).fit(data())
    assert seen == [1] and torch.get_num_threads() == before
    loaded = DDVI.load(m.save(tmp_path / "m"))
    assert loaded.get_params()["threads"] == 1
    # threads may change on resume
    small(method="aevb", threads="auto", epochs=2, run_dir=str(tmp_path / "run")).fit(data(),
                                                                                    resume=True)


@pytest.mark.parametrize("bad", [0, -2, "many"])
def test_bad_threads_are_refused(bad):
    with pytest.raises(ValueError, match="threads must be 'auto' or a positive integer"):
        small(method="aevb", threads=bad).fit(data())


def test_cluster_variable_ddvi_runs_the_denoiser_warmup(monkeypatch):
    """Regression: the warm-up check looked for ``method_.base``, which the cluster-variable
    model does not have, so warmup_steps was silently ignored there."""
    from ddvi.tasks.clustering import ClusterVariable

    calls = []
    monkeypatch.setattr(ClusterVariable, "pretrain_denoiser",
                        lambda self, steps, *a, **k: calls.append(steps) or [])
    clusters(method="ddvi", likelihood="gaussian", n_clusters=2, cluster_model="variable",
             warmup_steps=7, epochs=1).fit(data())
    assert calls == [7]


def test_models_saved_before_the_split_load_as_their_tasks_estimator(tmp_path):
    """Files of the single DDVI estimator hold every task's parameters (n_clusters None where
    the task is not clustering); each load returns the estimator of the stored task."""
    from ddvi.checkpoint import load_checkpoint, save_checkpoint

    X = data()
    m = small(method="aevb", epochs=1).fit(X)
    tensors, meta = load_checkpoint(m.save(tmp_path / "m") / "model.safetensors")
    meta["config"]["params"].update(alpha=1000.0, labeled_batch_size=32, classifier_hidden=[1000],
                                    n_clusters=None, cluster_model="mixture")
    save_checkpoint(tmp_path / "old" / "model.safetensors", tensors, meta)
    for cls in (DDVI, SemiSupervisedDDVI, ClusteringDDVI):
        loaded = cls.load(tmp_path / "old")
        assert type(loaded) is DDVI and np.array_equal(loaded.transform(X), m.transform(X))
