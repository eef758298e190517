"""Evaluation metrics used in the DDVI paper's protocols.

All functions are pure: they take numpy arrays or torch tensors and return python
floats (or tuples of floats).  Heavy pairwise computations are done blockwise in
torch so that 10 000 x 10 000 problems never materialise the full kernel matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ddvi.devices import generator, module_device

__all__ = [
    "MMD_SIGMAS",
    "LATENT_NLL_BANDWIDTHS",
    "mmd",
    "latent_nll",
    "LATENT_NLL_PRIOR_SAMPLES",
    "latent_nll_floor",
    "latent_nll_protocol",
    "recipe_samples",
    "knn_accuracy",
    "mean_ci",
]

#: Kernel "variances" of the DDVI paper's MMD (k = sum_s exp(-||a-b||^2 / (2 s))).
MMD_SIGMAS: tuple[float, ...] = (2, 5, 10, 20, 40, 80)
#: KDE bandwidths of the DDVI paper's latent negative log-likelihood.
LATENT_NLL_BANDWIDTHS: tuple[float, ...] = (0.005, 0.008, 0.01, 0.03, 0.05)
#: Prior samples the latent NLL scores (the official ``fit_and_score`` scores 10 000).
LATENT_NLL_PRIOR_SAMPLES: int = 10_000
# Kernel exponents below this are raised to it before exp: each row's largest term is exp(0) = 1,
# so the change is < N * e^-100 relative (nil in float64), and exp avoids its slow underflow path.
_EXP_FLOOR = -100.0


# --------------------------------------------------------------------------- validation


def _to_tensor(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert ``x`` to a CPU tensor of ``dtype`` (no gradient)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise ValueError(f"{name}: cannot convert to an array ({exc})") from exc
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(dtype)


def _check_2d(x: Any, name: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return ``x`` as a finite, non-empty (n, D) tensor or raise ValueError."""
    t = _to_tensor(x, name, dtype)
    if t.ndim == 1:
        raise ValueError(f"{name}: expected a 2-D array (n, D), got a 1-D array of shape "
                         f"{tuple(t.shape)}")
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n, D), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: contains NaN or inf values")
    return t


def _check_dims(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {name_a} has D={a.shape[1]} but {name_b} has "
                         f"D={b.shape[1]}")


def _check_positive(values: Sequence[float], name: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    if len(vals) == 0:
        raise ValueError(f"{name}: must contain at least one value")
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"{name}: all values must be finite and > 0, got {vals}")
    return vals


def _check_block(block: int) -> int:
    if int(block) < 1:
        raise ValueError(f"block: must be a positive integer, got {block}")
    return int(block)


# --------------------------------------------------------------------------- MMD


def _kernel_sum(
    a: torch.Tensor,
    b: torch.Tensor,
    inv_two_sigmas: Sequence[float],
    block: int,
    symmetric: bool,
) -> float:
    """Sum of k(a_i, b_j) over all pairs, blockwise (b is ignored when ``symmetric``)."""
    if symmetric:
        b = a
    a_sq = (a * a).sum(1)
    b_sq = a_sq if symmetric else (b * b).sum(1)
    total = 0.0
    rows = min(block, a.shape[0])
    cols = min(block, b.shape[0])
    d2_buf = torch.empty(rows * cols, dtype=a.dtype)
    k_buf = torch.empty(rows * cols, dtype=a.dtype)
    for i in range(0, a.shape[0], block):
        ai = a[i : i + block]
        j0 = i if symmetric else 0
        for j in range(j0, b.shape[0], block):
            bj = b[j : j + block]
            shape = (ai.shape[0], bj.shape[0])
            d2 = d2_buf[: shape[0] * shape[1]].view(shape)
            kb = k_buf[: shape[0] * shape[1]].view(shape)
            torch.addmm(b_sq[j : j + block].unsqueeze(0), ai, bj.T, alpha=-2.0, out=d2)
            d2.add_(a_sq[i : i + block].unsqueeze(1)).clamp_(min=0.0)
            if symmetric and i == j:
                d2.fill_diagonal_(0.0)  # exact self-distances
            s = 0.0
            for c in inv_two_sigmas:
                s += float(torch.mul(d2, -c, out=kb).exp_().sum())
            total += 2.0 * s if (symmetric and j != i) else s
    return total


def mmd(
    x: Any,
    y: Any,
    sigmas: Sequence[float] = MMD_SIGMAS,
    block: int = 2048,
) -> float:
    """Maximum mean discrepancy, DDVI paper protocol.

    Kernel ``k(a, b) = sum_s exp(-||a - b||^2 / (2 s))`` over ``sigmas`` (each ``s`` acts as
    a variance; the kernels are summed, not averaged).  Biased V-statistic including the
    diagonal: ``MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)``; returns
    ``sqrt(max(MMD^2, 0))``.

    Args:
        x: samples of shape (n, D).
        y: samples of shape (m, D).
        sigmas: kernel variances.
        block: block size of the pairwise computation (float64, never the full matrix).
    """
    xt = _check_2d(x, "x")
    yt = _check_2d(y, "y")
    _check_dims(xt, yt, "x", "y")
    sig = _check_positive(sigmas, "sigmas")
    block = _check_block(block)
    if xt.shape == yt.shape and torch.equal(xt, yt):
        return 0.0
    # MMD is translation invariant; centring reduces cancellation in ||a||^2+||b||^2-2ab.
    center = (xt.sum(0) + yt.sum(0)) / (xt.shape[0] + yt.shape[0])
    xt = xt - center
    yt = yt - center
    coef = [1.0 / (2.0 * s) for s in sig]
    n, m = xt.shape[0], yt.shape[0]
    kxx = _kernel_sum(xt, xt, coef, block, symmetric=True) / (n * n)
    kyy = _kernel_sum(yt, yt, coef, block, symmetric=True) / (m * m)
    kxy = _kernel_sum(xt, yt, coef, block, symmetric=False) / (n * m)
    return math.sqrt(max(kxx + kyy - 2.0 * kxy, 0.0))


# --------------------------------------------------------------------------- latent NLL


def latent_nll(
    latents: Any,
    prior_samples: Any,
    bandwidths: Sequence[float] = LATENT_NLL_BANDWIDTHS,
    block: int = 256,
) -> float:
    """Latent negative log-likelihood, DDVI paper protocol.

    For each bandwidth ``h`` a Gaussian KDE is fitted on ``latents`` (exact and normalised,
    as ``sklearn.neighbors.KernelDensity(kernel='gaussian', bandwidth=h)``)::

        log q_h(s) = logsumexp_i(-||s - l_i||^2 / (2 h^2)) - log N - d/2 log(2 pi h^2)

    The prior samples are scored, the bandwidths are combined per sample as the uniform
    mixture ``logsumexp_h(log q_h(s)) - log(#h)``, and the negative mean is returned.

    Args:
        latents: encoded data, shape (N, d) (d = 2 in the paper).
        prior_samples: samples from the prior, shape (M, d). The paper's protocol scores
            recipe-only samples (:func:`recipe_samples`, no kernel noise), 10 000 of them.
        bandwidths: KDE bandwidths.
        block: number of prior samples scored per block.

    Compare the result with :func:`latent_nll_floor` (the prior scored against itself with the
    same number of latents): the KDE's bias makes the raw number meaningless on its own.
    """
    lat = _check_2d(latents, "latents")
    prs = _check_2d(prior_samples, "prior_samples")
    _check_dims(lat, prs, "latents", "prior_samples")
    bw = _check_positive(bandwidths, "bandwidths")
    block = _check_block(block)
    n, d = lat.shape
    h = torch.tensor(bw, dtype=torch.float64)
    neg_inv_two_h2 = -0.5 / h**2  # (H,)
    log_norm = -math.log(n) - 0.5 * d * torch.log(2.0 * math.pi * h**2)  # (H,)
    lat_sq = (lat * lat).sum(1)
    lat_t = lat.T.contiguous()  # (d, N)
    total = 0.0
    for i in range(0, prs.shape[0], block):
        s = prs[i : i + block]
        if d <= 3:  # exact differences: cheap and free of cancellation in low dimension
            d2 = (s[:, :1] - lat_t[:1]).square_()
            for k in range(1, d):
                d2.add_((s[:, k : k + 1] - lat_t[k : k + 1]).square_())
        else:
            d2 = torch.addmm(lat_sq.unsqueeze(0), s, lat_t, alpha=-2.0)
            d2.add_((s * s).sum(1, keepdim=True)).clamp_(min=0.0)
        # Shared stabiliser: the row max of -d2 c is -min(d2) c for every bandwidth.
        dmin = d2.amin(dim=1, keepdim=True)
        d2.sub_(dmin)
        buf = torch.empty_like(d2)
        logq = torch.stack(
            [
                torch.mul(d2, c, out=buf).clamp_(min=_EXP_FLOOR).exp_().sum(1).log_()
                + c * dmin.squeeze(1)
                for c in neg_inv_two_h2.tolist()
            ]
        )  # (H, B)
        logq = logq + log_norm.unsqueeze(1)
        mix = torch.logsumexp(logq, dim=0) - math.log(len(bw))  # (B,)
        total += float(mix.sum())
    return -total / prs.shape[0]


def recipe_samples(prior: Any, n: int, seed: int) -> np.ndarray:
    """``n`` seeded samples of ``prior``'s recipe (no kernel noise), float64 ``(n, d)`` on the CPU.

    These are what the official code's ``prior.sample`` returns and what its latent NLL scores
    (reference notes 5.3): for ``pinwheel``, ``swiss_roll`` and ``square`` the recipe without the
    ``h * N(0, I)`` kernel noise that :mod:`ddvi.priors` adds to make their density exact.
    """
    g = generator(int(seed), getattr(prior, "device", "cpu"))
    z, _ = prior.sample(int(n), g, kernel_noise=False)
    return z.detach().cpu().double().numpy()


def latent_nll_floor(
    prior: Any,
    n_latents: int,
    prior_samples: Any = None,
    *,
    n_prior: int = LATENT_NLL_PRIOR_SAMPLES,
    seed: int = 0,
    bandwidths: Sequence[float] = LATENT_NLL_BANDWIDTHS,
    block: int = 256,
) -> float:
    """The latent NLL of the prior scored against itself: the reference point for the metric.

    Same protocol as a model's :func:`latent_nll`, with ``n_latents`` recipe samples of the prior
    (seed ``seed``) standing in for the encoded test set: what a posterior whose latents were
    exact prior draws would score with this many latents. The KDE's bias depends on the number
    of latents, so compare a model's latent NLL with the floor at its own ``n_latents`` (the
    paper's numbers sit above their floor at 10 000 latents: pinwheel -1.31, swiss roll -0.54,
    square 0.73 by the reference notes' measurement). It is an expected value, not a strict bound.

    Args:
        prior: a :class:`ddvi.priors.Prior` (sampled with ``kernel_noise=False``).
        n_latents: number of latents the model's KDE was fitted on.
        prior_samples: the scored samples (pass the model's, so both share them); default
            ``n_prior`` fresh recipe samples (seed ``seed + 1``).
        n_prior: number of scored samples when ``prior_samples`` is None.
        seed: seed of the stand-in latents.
        bandwidths, block: as in :func:`latent_nll`.
    """
    if isinstance(n_latents, bool) or not isinstance(n_latents, (int, np.integer)) or n_latents < 1:
        raise ValueError(f"n_latents must be a positive int, got {n_latents!r}")
    if prior_samples is None:
        prior_samples = recipe_samples(prior, n_prior, seed + 1)
    return latent_nll(recipe_samples(prior, n_latents, seed), prior_samples, bandwidths, block)


def latent_nll_protocol(n_latents: int, n_prior: int,
                        bandwidths: Sequence[float] = LATENT_NLL_BANDWIDTHS) -> str:
    """One line naming the latent NLL protocol, for metrics files and tables."""
    return (f"Gaussian KDEs (bandwidths {', '.join(f'{h:g}' for h in bandwidths)}, equal-weight "
            f"mixture) fitted on one posterior draw per test example ({n_latents}); minus the mean "
            f"log-density of {n_prior} recipe-only prior samples (no kernel noise), as the "
            "official code (reference notes 5.3)")


# --------------------------------------------------------------------------- kNN


def knn_accuracy(
    train_latents: Any,
    train_labels: Any,
    test_latents: Any,
    test_labels: Any,
    k: int = 20,
) -> float:
    """Test accuracy of a k-nearest-neighbour classifier on latents.

    Protocol: ``sklearn.neighbors.KNeighborsClassifier(n_neighbors=k)`` (uniform weights,
    Euclidean metric) fitted on the training latents, accuracy on the test latents.
    """
    from sklearn.neighbors import KNeighborsClassifier

    xtr = _check_2d(train_latents, "train_latents").numpy()
    xte = _check_2d(test_latents, "test_latents").numpy()
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"dimension mismatch: train_latents has D={xtr.shape[1]} but "
                         f"test_latents has D={xte.shape[1]}")
    ytr = _labels(train_labels, "train_labels", xtr.shape[0])
    yte = _labels(test_labels, "test_labels", xte.shape[0])
    if int(k) < 1:
        raise ValueError(f"k: must be a positive integer, got {k}")
    if int(k) > xtr.shape[0]:
        raise ValueError(f"k: k={k} exceeds the number of training points {xtr.shape[0]}")
    clf = KNeighborsClassifier(n_neighbors=int(k), weights="uniform", metric="euclidean")
    clf.fit(xtr, ytr)
    return float(np.mean(clf.predict(xte) == yte))


def _labels(y: Any, name: str, n: int) -> np.ndarray:
    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} labels but there are {n} points")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf values")
    return arr


# --------------------------------------------------------------------------- CIs


def mean_ci(values: Any, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half width of a Student-t confidence interval.

    Protocol: ``half = scipy.stats.sem(values, ddof=1) * t_{(1+confidence)/2, n-1}``;
    for a single value the half width is ``nan``.
    """
    from scipy import stats

    arr = np.asarray(
        values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values,
        dtype=np.float64,
    ).reshape(-1)
    if arr.size == 0:
        raise ValueError("values: empty array")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values: contains NaN or inf values")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    mean = float(arr.mean())
    n = arr.size
    if n == 1:
        return mean, float("nan")
    sem = float(stats.sem(arr, ddof=1))
    half = sem * float(stats.t.ppf(0.5 * (1.0 + float(confidence)), n - 1))
    return mean, half


@torch.no_grad()
def elbo(method: Any, x: torch.Tensor, n_samples: int = 1, batch_size: int = 1024,
         seed: int = 0) -> dict[str, float]:
    """ELBO of a fitted ``ddvi.methods.Method`` on ``x``: a lower bound on log p(x) in nats per
    example, averaged over the rows of x and ``n_samples`` seeded posterior draws per row.

    Returns ``elbo`` and its terms ``rec`` (log p(x|z)), ``log_prior`` (log p(z)) and ``log_q``
    (log q(z|x), or log q(y,z|x) - log r(y|z,x) for auxiliary-variable posteriors).
    """
    if not getattr(method, "has_elbo", True):
        raise ValueError(f"method {getattr(method, 'name', method)!r} has no ELBO")
    x = _check_2d(x, "x", torch.float32)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    device = module_device(method)
    g = generator(seed, device)
    was_training = method.training
    method.eval()
    sums: dict[str, float] = {}
    for _ in range(n_samples):
        for batch in x.split(batch_size):
            for k, v in method.elbo_terms(batch.to(device), g).items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().cpu().double().sum())
    method.train(was_training)
    return {k: v / (n_samples * x.shape[0]) for k, v in sums.items()}
