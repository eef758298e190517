"""Clustering metrics (paper table 3 protocol) against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from ddvi.cluster_metrics import (
    cluster_scores,
    completeness,
    gmm_clusters,
    homogeneity,
    nmi,
    purity,
)


def test_purity_of_a_known_contingency_table():
    # clusters (columns) x classes: cluster 0 = {a, a, b}, cluster 1 = {b, b, b, c}, cluster 2 = {c}
    true = ["a", "a", "b", "b", "b", "b", "c", "c"]
    pred = [0, 0, 0, 1, 1, 1, 1, 2]
    assert purity(true, pred) == pytest.approx((2 + 3 + 1) / 8)
    assert purity(np.array([0, 1, 0, 1]), np.zeros(4, dtype=int)) == pytest.approx(0.5)


def test_perfect_clustering_up_to_relabelling():
    true = np.repeat(np.arange(4), 25)
    pred = (true * 7 + 3) % 4 + 10  # a permutation of the labels, shifted
    s = cluster_scores(true, pred)
    assert s == pytest.approx({"purity": 1.0, "completeness": 1.0, "nmi": 1.0, "homogeneity": 1.0})
    assert nmi(torch.as_tensor(true), torch.as_tensor(pred)) == pytest.approx(1.0)


def test_independent_clustering_scores_near_zero():
    true = np.repeat(np.arange(2), 50)
    pred = np.tile(np.arange(2), 50)  # each cluster holds exactly half of each class
    assert nmi(true, pred) == pytest.approx(0.0, abs=1e-12)
    assert purity(true, pred) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    assert nmi(rng.integers(0, 3, 5000), rng.integers(0, 3, 5000)) < 0.01


def test_completeness_and_homogeneity_by_hand():
    # one class split into two clusters: homogeneous but not complete
    true = [0, 0, 1, 1]
    pred = [0, 1, 2, 2]
    assert homogeneity(true, pred) == pytest.approx(1.0)
    # H(K|C) = 0.5 * log 2, H(K) = entropy of (1/4, 1/4, 1/2) = 1.5 log 2
    assert completeness(true, pred) == pytest.approx(1 - 0.5 / 1.5)
    # NMI (arithmetic): I = H(C) = log 2; mean(H(C), H(K)) = 1.25 log 2
    assert nmi(true, pred) == pytest.approx(1 / 1.25)
    # all in one cluster: complete, not homogeneous
    assert completeness(true, [5, 5, 5, 5]) == pytest.approx(1.0)
    assert homogeneity(true, [5, 5, 5, 5]) == pytest.approx(0.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels_true has 3 labels"):
        purity([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        nmi([], [])
    with pytest.raises(ValueError, match="NaN"):
        completeness([0.0, math.nan], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        cluster_scores(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        gmm_clusters(np.array([[0.0, 1.0], [math.nan, 0.0]]), n_components=1)
    with pytest.raises(ValueError, match="2-D"):
        gmm_clusters(np.zeros(5))
    with pytest.raises(ValueError, match="exceeds"):
        gmm_clusters(np.zeros((3, 2)), n_components=20)
    with pytest.raises(ValueError, match="empty"):
        gmm_clusters(np.zeros((0, 2)))


def test_gmm_clusters_is_deterministic_and_finds_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    labels = np.repeat(np.arange(3), 60)
    latents = centres[labels] + 0.2 * rng.standard_normal((180, 2))
    a = gmm_clusters(latents, n_components=3)
    b = gmm_clusters(torch.as_tensor(latents), n_components=3)
    assert a.dtype == np.int64 and a.shape == (180,)
    np.testing.assert_array_equal(a, b)
    assert nmi(labels, a) == pytest.approx(1.0)
    # the paper's default: 20 components on 180 points still runs and is deterministic
    np.testing.assert_array_equal(gmm_clusters(latents), gmm_clusters(latents))
