"""Tests for ddvi.embeddings: the paper's PCA / t-SNE / UMAP baselines."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from ddvi.embeddings import EMBEDDINGS, MIN_SAMPLES, embed, embed_timed, embedding_settings


def _clusters(n: int = 200, k: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 5
    centers = rng.normal(scale=4.0, size=(5, k))
    return (centers[labels] + rng.normal(size=(n, k))) / 30.0, labels


def _knn_agreement(Z: np.ndarray, labels: np.ndarray) -> float:
    return float(KNeighborsClassifier(5).fit(Z, labels).score(Z, labels))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _clusters()


def _check_map(name: str, X: np.ndarray, labels: np.ndarray) -> None:
    Z = embed(name, X, seed=0)
    assert Z.shape == (X.shape[0], 2) and Z.dtype == np.float32 and Z.flags.c_contiguous
    assert np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z, embed(name, X, seed=0))  # seeded -> deterministic
    assert _knn_agreement(Z, labels) > 0.95  # the 5 well separated clusters stay apart


def test_names() -> None:
    assert EMBEDDINGS == ("pca", "tsne", "umap")


def test_pca_matches_sklearn_up_to_sign(data) -> None:
    X, labels = data
    _check_map("pca", X, labels)
    ref = PCA(2, svd_solver="randomized", random_state=0).fit_transform(X)
    Z = embed("pca", X, seed=0).astype(np.float64)
    for j in range(2):
        sign = np.sign(Z[:, j] @ ref[:, j])
        np.testing.assert_allclose(sign * Z[:, j], ref[:, j], rtol=1e-4, atol=1e-5)


def test_tsne_shape_dtype_determinism(data) -> None:
    X, labels = data
    _check_map("tsne", X, labels)
    assert not np.array_equal(embed("tsne", X, seed=0), embed("tsne", X, seed=1))
    np.testing.assert_array_equal(embed("t-SNE", X), embed("tsne", X))  # alias, default seed 0


@pytest.mark.slow  # the first UMAP fit of a process compiles numba kernels: ~13 s on one core
def test_umap_shape_dtype_determinism(data) -> None:
    X, labels = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the n_jobs/random_state warning is silenced
        _check_map("umap", X, labels)
    Z, seconds = embed_timed("umap", X, seed=0)
    assert Z.shape == (X.shape[0], 2) and seconds > 0.0


def test_umap_wrapper_with_a_stub(monkeypatch) -> None:
    """Fast check of the UMAP call (settings, warning filter, output) without numba compilation."""
    import types

    seen = {}

    class StubUMAP:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def fit_transform(self, X):
            warnings.warn("n_jobs value 1 overridden to 1 by setting random_state. Use no seed for "
                          "parallelism.", UserWarning, stacklevel=2)
            return np.asarray(X[:, :2], dtype=np.float64)

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=StubUMAP))
    X, _ = _clusters(n=50, k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = embed("umap", X, seed=7)
    assert seen == {"n_components": 2, "n_neighbors": 15, "min_dist": 0.5, "random_state": 7}
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z, X[:, :2], rtol=1e-6)


def test_settings_follow_the_paper() -> None:
    assert embedding_settings("pca", 2504, seed=3) == {"n_components": 2, "svd_solver": "randomized",
                                                       "random_state": 3}
    assert embedding_settings("tsne", 2504) == {"n_components": 2, "perplexity": 30.0, "random_state": 0,
                                                "n_jobs": 1}
    assert embedding_settings("umap", 2504) == {"n_components": 2, "n_neighbors": 15, "min_dist": 0.5,
                                                "random_state": 0}


def test_small_inputs_lower_perplexity_and_neighbours() -> None:
    tsne = embedding_settings("tsne", 60)
    assert tsne["perplexity"] == pytest.approx(59 / 3) and 60 > 3 * tsne["perplexity"]
    assert "perplexity lowered" in tsne["note"]
    assert "note" not in embedding_settings("tsne", 91)
    umap = embedding_settings("umap", 10)
    assert umap["n_neighbors"] == 9 and "n_neighbors lowered" in umap["note"]
    assert "note" not in embedding_settings("umap", 16)


def test_small_tsne_warns_and_runs() -> None:
    X, _ = _clusters(n=12, k=6)
    with pytest.warns(UserWarning, match="perplexity lowered from 30 to 3.67"):
        Z = embed("tsne", X)
    assert Z.shape == (12, 2) and np.all(np.isfinite(Z))


def test_timed_and_tensor_input(data) -> None:
    X, _ = data
    Z, seconds = embed_timed("pca", torch.from_numpy(X).float())
    assert Z.shape == (X.shape[0], 2) and isinstance(seconds, float) and seconds >= 0.0
    np.testing.assert_allclose(np.abs(Z), np.abs(embed("pca", X)), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", EMBEDDINGS)
def test_bad_input(name: str) -> None:
    X, _ = _clusters(n=20, k=5)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        embed(name, bad)
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        embed(name, bad)
    with pytest.raises(ValueError, match="2-D"):
        embed(name, X[:, 0])
    with pytest.raises(ValueError, match="2-D"):
        embed(name, X[None])
    with pytest.raises(ValueError, match=f"at least {MIN_SAMPLES} samples"):
        embed(name, X[: MIN_SAMPLES - 1])
    with pytest.raises(ValueError, match="identical"):
        embed(name, np.ones((20, 5)))
    with pytest.raises(ValueError, match="numeric"):
        embed(name, np.full((20, 5), "a"))
    with pytest.raises(ValueError, match="no features"):
        embed(name, np.empty((20, 0)))


def test_pca_needs_two_features() -> None:
    X, _ = _clusters(n=20, k=1)
    with pytest.raises(ValueError, match="at least 2 features"):
        embed("pca", X)


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown embedding 'isomap'; choose one of pca, tsne, umap"):
        embed("isomap", np.eye(10))
    with pytest.raises(ValueError, match="choose one of pca, tsne, umap"):
        embedding_settings("mds", 100)


@pytest.mark.parametrize(("name", "module"), [("tsne", "openTSNE"), ("umap", "umap")])
def test_missing_extra_says_what_to_install(monkeypatch, name: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    X, _ = _clusters(n=100, k=5)
    with pytest.raises(ImportError, match=r'pip install "ddvi\[compare\]"'):
        embed(name, X)
