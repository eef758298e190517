"""Tests for ddvi.metrics against brute-force / reference implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity

from ddvi.metrics import (
    LATENT_NLL_BANDWIDTHS,
    MMD_SIGMAS,
    knn_accuracy,
    latent_nll,
    mean_ci,
    mmd,
)


def _mmd_bruteforce(x: np.ndarray, y: np.ndarray, sigmas=MMD_SIGMAS) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> float:
        d2 = float(np.sum((a - b) ** 2))
        return sum(math.exp(-d2 / (2.0 * s)) for s in sigmas)

    def mean_k(a: np.ndarray, b: np.ndarray) -> float:
        return sum(k(ai, bj) for ai in a for bj in b) / (len(a) * len(b))

    m2 = mean_k(x, x) + mean_k(y, y) - 2.0 * mean_k(x, y)
    return math.sqrt(max(m2, 0.0))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------- mmd


def test_mmd_matches_bruteforce(rng: np.random.Generator) -> None:
    x = rng.normal(size=(23, 5)) * 2.0
    y = rng.normal(size=(17, 5)) * 2.0 + 0.7
    expected = _mmd_bruteforce(x, y)
    assert expected > 0.05
    assert mmd(x, y) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert mmd(x, y, sigmas=(1.0, 3.0)) == pytest.approx(
        _mmd_bruteforce(x, y, sigmas=(1.0, 3.0)), rel=1e-10
    )


def test_mmd_symmetric_and_torch_input(rng: np.random.Generator) -> None:
    x = rng.random((30, 8))
    y = rng.random((25, 8)) * 0.8
    a = mmd(x, y, block=7)
    assert a == pytest.approx(mmd(y, x, block=7), rel=1e-12)
    assert mmd(torch.tensor(x, dtype=torch.float32), torch.tensor(y)) == pytest.approx(
        a, rel=1e-5
    )


def test_mmd_identical_sets_is_zero(rng: np.random.Generator) -> None:
    x = rng.normal(size=(40, 6))
    assert mmd(x, x) == 0.0
    assert mmd(x, x.copy(), block=9) == 0.0
    # a permutation is the same set: V-statistic is zero up to rounding
    assert mmd(x, x[rng.permutation(40)], block=9) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("block", [1, 3, 16, 50, 2048])
def test_mmd_block_size_independent(rng: np.random.Generator, block: int) -> None:
    x = rng.normal(size=(50, 4))
    y = rng.normal(size=(37, 4)) + 0.3
    ref = _mmd_bruteforce(x, y)
    assert mmd(x, y, block=block) == pytest.approx(ref, rel=1e-10)


def test_mmd_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="empty"):
        mmd(np.zeros((0, 3)), x)
    with pytest.raises(ValueError, match="dimension mismatch"):
        mmd(x, rng.normal(size=(10, 4)))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        mmd(bad, x)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        mmd(x, bad)
    with pytest.raises(ValueError, match="2-D"):
        mmd(x[:, 0], x)
    with pytest.raises(ValueError, match="sigmas"):
        mmd(x, x + 1, sigmas=(1.0, -2.0))
    with pytest.raises(ValueError, match="block"):
        mmd(x, x + 1, block=0)


# ----------------------------------------------------------------------------- latent NLL


def _nll_sklearn(lat: np.ndarray, prior: np.ndarray, bandwidths) -> float:
    logs = np.stack(
        [
            KernelDensity(kernel="gaussian", bandwidth=h, atol=0.0, rtol=0.0)
            .fit(lat)
            .score_samples(prior)
            for h in bandwidths
        ]
    )
    mix = np.logaddexp.reduce(logs, axis=0) - np.log(len(bandwidths))
    return float(-mix.mean())


def _nll_bruteforce(lat: np.ndarray, prior: np.ndarray, bandwidths) -> float:
    n, d = lat.shape
    d2 = ((prior[:, None, :] - lat[None, :, :]) ** 2).sum(-1)
    logs = np.stack(
        [
            logsumexp(-d2 / (2 * h * h), axis=1) - np.log(n) - 0.5 * d * np.log(2 * np.pi * h * h)
            for h in bandwidths
        ]
    )
    return float(-np.mean(logsumexp(logs, axis=0) - np.log(len(bandwidths))))


def test_latent_nll_matches_sklearn(rng: np.random.Generator) -> None:
    lat = rng.normal(size=(200, 2)) * 0.05
    prior = rng.normal(size=(150, 2)) * 0.05
    expected = _nll_sklearn(lat, prior, LATENT_NLL_BANDWIDTHS)
    assert latent_nll(lat, prior) == pytest.approx(expected, rel=1e-9)
    assert latent_nll(lat, prior, block=7) == pytest.approx(expected, rel=1e-9)
    assert latent_nll(torch.tensor(lat), torch.tensor(prior)) == pytest.approx(expected, rel=1e-9)


def test_latent_nll_single_bandwidth_and_far_samples(rng: np.random.Generator) -> None:
    lat = rng.normal(size=(100, 2))
    prior = rng.normal(size=(60, 2)) * 3.0  # many samples far from every latent
    for bws in [(0.3,), (0.01, 0.5)]:
        got = latent_nll(lat, prior, bandwidths=bws, block=13)
        assert math.isfinite(got)
        assert got == pytest.approx(_nll_bruteforce(lat, prior, bws), rel=1e-12)
        # sklearn's tree sums lose ~1e-9 relative accuracy for points far from all latents
        assert got == pytest.approx(_nll_sklearn(lat, prior, bws), rel=1e-7)


def test_latent_nll_higher_dim(rng: np.random.Generator) -> None:
    lat = rng.normal(size=(80, 5))
    prior = rng.normal(size=(30, 5))
    assert latent_nll(lat, prior, bandwidths=(0.5, 1.0)) == pytest.approx(
        _nll_sklearn(lat, prior, (0.5, 1.0)), rel=1e-8
    )


def test_latent_nll_errors(rng: np.random.Generator) -> None:
    lat = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="empty"):
        latent_nll(lat, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="dimension mismatch"):
        latent_nll(lat, rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        latent_nll(np.full((3, 2), np.nan), lat)
    with pytest.raises(ValueError, match="bandwidths"):
        latent_nll(lat, lat, bandwidths=())
    with pytest.raises(ValueError, match="bandwidths"):
        latent_nll(lat, lat, bandwidths=(0.0,))


# ----------------------------------------------------------------------------- kNN


def test_knn_accuracy_known_answer() -> None:
    # two well separated clusters; test points: 3 near class 0, 2 near class 1 (of which one
    # is given the wrong label) -> 4 / 5 correct.
    train = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]])
    train_y = np.array([0, 0, 0, 1, 1, 1])
    test = np.array([[0.05, 0.05], [-0.2, 0.1], [0.3, 0.0], [4.9, 5.2], [5.2, 5.2]])
    test_y = np.array([0, 0, 0, 1, 0])
    assert knn_accuracy(train, train_y, test, test_y, k=3) == pytest.approx(0.8)
    # with k = 1 the isolated wrong-class neighbour decides
    train2 = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
    y2 = np.array([0, 1, 1, 1, 1])
    assert knn_accuracy(train2, y2, np.array([[0.1]]), np.array([0]), k=1) == 1.0
    assert knn_accuracy(train2, y2, np.array([[0.1]]), np.array([0]), k=5) == 0.0


def test_knn_accuracy_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="dimension mismatch"):
        knn_accuracy(x, y, rng.normal(size=(4, 3)), y[:4], k=3)
    with pytest.raises(ValueError, match="labels"):
        knn_accuracy(x, y[:9], x, y, k=3)
    with pytest.raises(ValueError, match="k="):
        knn_accuracy(x, y, x, y, k=20)
    with pytest.raises(ValueError, match="empty"):
        knn_accuracy(np.zeros((0, 2)), y[:0], x, y, k=1)


# ----------------------------------------------------------------------------- mean_ci


def test_mean_ci_hand_computation() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    sem = np.std([1.0, 2.0, 3.0], ddof=1) / math.sqrt(3)  # = 1/sqrt(3)
    assert mean == pytest.approx(2.0)
    assert sem == pytest.approx(1.0 / math.sqrt(3))
    assert half == pytest.approx(sem * 4.302652729749462, rel=1e-12)  # t_{0.975, 2}
    vals = np.array([0.3, 0.5, 0.4, 0.9, 0.1])
    m, h = mean_ci(vals, confidence=0.9)
    sem = vals.std(ddof=1) / math.sqrt(5)
    assert m == pytest.approx(vals.mean())
    assert h == pytest.approx(sem * stats.t.ppf(0.95, 4), rel=1e-12)


def test_mean_ci_single_value_and_errors() -> None:
    m, h = mean_ci([4.2])
    assert m == 4.2 and math.isnan(h)
    with pytest.raises(ValueError, match="empty"):
        mean_ci([])
    with pytest.raises(ValueError, match="NaN or inf"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=1.5)


@pytest.mark.slow
def test_mmd_and_nll_large_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(10_000, 784, generator=gen)
    y = torch.rand(10_000, 784, generator=gen) * 0.9
    assert mmd(x, y) > 0.0
    lat = torch.randn(10_000, 2, generator=gen)
    assert math.isfinite(latent_nll(lat, torch.randn(10_000, 2, generator=gen)))
