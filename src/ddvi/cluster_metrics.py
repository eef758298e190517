"""Clustering metrics of the DDVI paper's genomics experiment (section 4.2, table 3).

Protocol of the authors' ``get_all_results.py:metrics_evaluate``: the 2-D latents of every
individual are clustered by a post-hoc Gaussian mixture (:func:`gmm_clusters`), and the clusters
are scored against the population labels by purity, completeness and NMI (:func:`cluster_scores`).
All functions take numpy arrays or torch tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["cluster_scores", "completeness", "gmm_clusters", "homogeneity", "nmi", "purity"]


# --------------------------------------------------------------------------- validation


def _as_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: cannot convert to an array ({exc})") from exc


def _label_array(y: Any, name: str) -> np.ndarray:
    """A 1-D, non-empty array of labels without NaN/inf ((n, 1) and (1, n) are flattened)."""
    arr = _as_array(y, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of labels")
    if arr.dtype == object:
        raise ValueError(f"{name}: expected integer or string labels, got dtype object")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf values")
    return arr


def _label_pair(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _label_array(labels_true, "labels_true")
    p = _label_array(labels_pred, "labels_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"labels_true has {t.shape[0]} labels but labels_pred has {p.shape[0]}")
    return t, p


# --------------------------------------------------------------------------- scores


def purity(labels_true: Any, labels_pred: Any) -> float:
    """Purity: ``sum over predicted clusters of the largest true-class count / N``.

    Protocol: from ``sklearn.metrics.cluster.contingency_matrix(labels_true, labels_pred)``
    (rows = classes, columns = clusters), ``sum(max over rows) / sum(all)``. In (0, 1]; 1 when
    every cluster holds one class (n singleton clusters also score 1: read it with NMI).
    """
    from sklearn.metrics.cluster import contingency_matrix

    t, p = _label_pair(labels_true, labels_pred)
    table = contingency_matrix(t, p)
    return float(np.amax(table, axis=0).sum() / table.sum())


def completeness(labels_true: Any, labels_pred: Any) -> float:
    """Completeness: every member of a class lands in the same cluster.

    Protocol: ``sklearn.metrics.completeness_score(labels_true, labels_pred)`` = 1 - H(K|C)/H(K).
    """
    from sklearn.metrics import completeness_score

    t, p = _label_pair(labels_true, labels_pred)
    return float(completeness_score(t, p))


def homogeneity(labels_true: Any, labels_pred: Any) -> float:
    """Homogeneity: each cluster holds members of one class.

    Protocol: ``sklearn.metrics.homogeneity_score(labels_true, labels_pred)`` = 1 - H(C|K)/H(C).
    """
    from sklearn.metrics import homogeneity_score

    t, p = _label_pair(labels_true, labels_pred)
    return float(homogeneity_score(t, p))


def nmi(labels_true: Any, labels_pred: Any) -> float:
    """Normalised mutual information.

    Protocol: ``sklearn.metrics.normalized_mutual_info_score(labels_true, labels_pred,
    average_method="arithmetic")`` = I(C; K) / mean(H(C), H(K)); invariant to relabelling.
    """
    from sklearn.metrics import normalized_mutual_info_score

    t, p = _label_pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(t, p, average_method="arithmetic"))


def cluster_scores(labels_true: Any, labels_pred: Any) -> dict[str, float]:
    """``purity``, ``completeness``, ``nmi`` (the paper's table 3) and ``homogeneity``.

    Protocol: as :func:`purity`, :func:`completeness`, :func:`nmi`, :func:`homogeneity`.
    """
    t, p = _label_pair(labels_true, labels_pred)
    return {"purity": purity(t, p), "completeness": completeness(t, p), "nmi": nmi(t, p),
            "homogeneity": homogeneity(t, p)}


def gmm_clusters(latents: Any, n_components: int = 20, seed: int = 2) -> np.ndarray:
    """Cluster ids (int64, (n,)) of the paper's post-hoc Gaussian mixture on the latents.

    Protocol (the authors' ``metrics_evaluate``, the same for every method):
    ``GaussianMixture(n_components, covariance_type="full", random_state=seed, max_iter=100,
    n_init=10, reg_covar=1e-2).fit(latents).predict(latents)`` with ``n_components=20`` and
    ``seed=2``. Deterministic for a given seed.
    """
    from sklearn.mixture import GaussianMixture

    arr = _as_array(latents, "latents")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"latents: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"latents: expected a 2-D array (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"latents: empty array of shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("latents: contains NaN or inf values")
    if isinstance(n_components, bool) or int(n_components) != n_components or n_components < 1:
        raise ValueError(f"n_components: must be a positive integer, got {n_components}")
    if int(n_components) > arr.shape[0]:
        raise ValueError(f"n_components={n_components} exceeds the number of points {arr.shape[0]}")
    gmm = GaussianMixture(n_components=int(n_components), covariance_type="full",
                          random_state=seed, max_iter=100, n_init=10, reg_covar=1e-2)
    return gmm.fit(arr).predict(arr).astype(np.int64)
