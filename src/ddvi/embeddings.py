"""The paper's visual baselines: 2-D PCA, t-SNE and UMAP maps of a feature matrix.

In the genomics experiment (paper section 4.2, figure 4) these run on the (n, k) matrix of
genotype principal components divided by 30, with the settings of the authors'
``algorithms/baselines.py``:

* ``pca``:  ``sklearn.decomposition.PCA(2, svd_solver="randomized", random_state=seed)``;
* ``tsne``: ``openTSNE.TSNE(n_components=2, perplexity=30, random_state=seed, n_jobs=1)``.
  The official code used ``sklearn.manifold.TSNE(2, perplexity=30, random_state=seed)``;
  openTSNE optimises the same objective with the same perplexity (Barnes-Hut below 10 000
  points, PCA initialisation) and is much faster, but the maps are not bit-identical;
* ``umap``: ``umap.UMAP(2, n_neighbors=15, min_dist=0.5, random_state=seed)``.

t-SNE and UMAP come with the ``compare`` extra (``pip install "ddvi[compare]"``) and are
imported only when asked for.  Small inputs get smaller neighbourhoods (openTSNE needs
``n > 3 * perplexity``, UMAP needs ``n_neighbors < n``), with a warning that says so;
:func:`embedding_settings` gives the effective settings for a given ``n``.
:func:`embed_timed` also returns the wall-clock seconds (the paper's table 5 compares time).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

__all__ = ["EMBEDDINGS", "MIN_SAMPLES", "embed", "embed_timed", "embedding_settings"]

#: Names accepted by :func:`embed`.
EMBEDDINGS: tuple[str, ...] = ("pca", "tsne", "umap")
#: The fewest rows a map is computed for.
MIN_SAMPLES = 5
#: Paper settings (authors' ``algorithms/baselines.py``).
TSNE_PERPLEXITY = 30.0
UMAP_N_NEIGHBORS = 15
UMAP_MIN_DIST = 0.5

_ALIASES = {"t-sne": "tsne", "t_sne": "tsne"}


def _check_name(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {name!r}; choose one of {', '.join(EMBEDDINGS)}")
    return key


def _check_matrix(X: Any, name: str) -> np.ndarray:
    """A finite float64 (n, k) matrix with n >= MIN_SAMPLES (torch tensors are accepted)."""
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (n_samples, n_features) array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: complex values are not supported")
    if arr.shape[0] < MIN_SAMPLES:
        raise ValueError(f"{name}: need at least {MIN_SAMPLES} samples (rows) for a 2-D map, "
                         f"got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: no features (columns)")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name}: contains NaN or inf values (in {bad} rows)")
    if not np.any(arr != arr[0]):
        raise ValueError(f"{name}: all {arr.shape[0]} rows are identical; there is nothing to map")
    return arr


def embedding_settings(name: str, n_samples: int, seed: int = 0) -> dict[str, Any]:
    """The keyword arguments :func:`embed` passes to the underlying estimator for ``n_samples`` rows.

    A ``"note"`` entry is present when a paper setting had to be lowered for a small input.
    """
    key = _check_name(name)
    n = int(n_samples)
    if n < MIN_SAMPLES:
        raise ValueError(f"need at least {MIN_SAMPLES} samples for a 2-D map, got {n}")
    if key == "pca":
        return {"n_components": 2, "svd_solver": "randomized", "random_state": seed}
    if key == "tsne":
        out: dict[str, Any] = {"n_components": 2, "perplexity": TSNE_PERPLEXITY, "random_state": seed,
                               "n_jobs": 1}
        if n <= 3 * TSNE_PERPLEXITY:
            out["perplexity"] = (n - 1) / 3.0
            out["note"] = (f"t-SNE perplexity lowered from {TSNE_PERPLEXITY:g} to {out['perplexity']:.3g}: "
                           f"openTSNE needs n_samples > 3 * perplexity (n_samples={n})")
        return out
    out = {"n_components": 2, "n_neighbors": UMAP_N_NEIGHBORS, "min_dist": UMAP_MIN_DIST,
           "random_state": seed}
    if n <= UMAP_N_NEIGHBORS:
        out["n_neighbors"] = n - 1
        out["note"] = (f"UMAP n_neighbors lowered from {UMAP_N_NEIGHBORS} to {n - 1}: "
                       f"it must be smaller than n_samples ({n})")
    return out


def _missing_extra(package: str, exc: ImportError) -> ImportError:
    return ImportError(f"the {package} package is needed for this embedding; install it with "
                       f'pip install "ddvi[compare]" ({exc})')


def _fit(key: str, X: np.ndarray, settings: dict[str, Any]) -> np.ndarray:
    if key == "pca":
        from sklearn.decomposition import PCA

        if X.shape[1] < 2:
            raise ValueError(f"X: PCA to 2 components needs at least 2 features, got {X.shape[1]}")
        return PCA(**settings).fit_transform(X)
    if key == "tsne":
        try:
            from openTSNE import TSNE
        except ImportError as exc:
            raise _missing_extra("openTSNE", exc) from exc
        return np.asarray(TSNE(**settings).fit(X))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Tensorflow not installed")
            import umap
    except ImportError as exc:
        raise _missing_extra("umap-learn", exc) from exc
    with warnings.catch_warnings():
        # umap-learn warns that a fixed random_state forces n_jobs=1; that is what we want.
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden to 1 by setting random_state")
        return umap.UMAP(**settings).fit_transform(X)


def _run(name: str, X: Any, seed: int) -> tuple[np.ndarray, float]:
    key = _check_name(name)
    arr = _check_matrix(X, "X")
    settings = embedding_settings(key, arr.shape[0], seed)
    note = settings.pop("note", None)
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=3)  # points at the caller of embed/embed_timed
    start = time.perf_counter()
    Z = _fit(key, arr, settings)
    seconds = time.perf_counter() - start
    Z = np.ascontiguousarray(Z, dtype=np.float32)
    if Z.shape != (arr.shape[0], 2):  # pragma: no cover - defensive
        raise RuntimeError(f"{key}: expected a ({arr.shape[0]}, 2) map, got shape {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise RuntimeError(f"{key}: the map contains NaN or inf values "
                           "(degenerate input, e.g. all rows equal?)")
    return Z, seconds


def embed(name: str, X: Any, seed: int = 0) -> np.ndarray:
    """A 2-D map of the rows of ``X`` by ``name`` in :data:`EMBEDDINGS` (``"pca"``, ``"tsne"``, ``"umap"``).

    ``X``: (n_samples, n_features) finite numbers (numpy array or torch tensor), e.g. genotype PCs
    divided by 30; at least :data:`MIN_SAMPLES` rows.  ``seed`` fixes the randomized SVD, the t-SNE
    initialisation and neighbour search, and UMAP (so the same input gives the same map).
    Returns a float32 array of shape (n_samples, 2).
    """
    return _run(name, X, seed)[0]


def embed_timed(name: str, X: Any, seed: int = 0) -> tuple[np.ndarray, float]:
    """Like :func:`embed`, also returning the wall-clock seconds of the fit: ``(Z, seconds)``.

    The time covers the estimator's fit only (not the import or the input checks).  UMAP's
    first call in a process also compiles its numba kernels (about 10 s on one core), so time
    a second call to compare steady-state speed.
    """
    return _run(name, X, seed)
