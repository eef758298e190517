"""Structured priors p(z) for DDVI, as ``torch.nn.Module`` objects.

Every prior exposes

* ``name``, ``dim`` and ``n_partitions``;
* ``sample(n, generator=None, *, kernel_noise=True) -> (z, part)``: ``z`` float32 ``(n, dim)``,
  ``part`` int64 ``(n,)`` (index of the partition each sample came from; always 0 for a partition /
  single-part prior). Samples never carry gradients. ``kernel_noise=False`` draws the sampling
  recipe alone (for ``pinwheel``, ``swiss_roll`` and ``square``: without the ``h * N(0, I)``
  kernel noise described below), which is what the official code's ``prior.sample`` returns and
  what the paper's latent NLL protocol scores; for the analytic priors it changes nothing.
* ``log_prob(z) -> (n,)``: differentiable in ``z`` and in learnable parameters;
* ``partition(i)``: the prior restricted to part ``i`` (renormalised), ``n_partitions == 1``.

The sample-only priors of the paper (``pinwheel``, ``swiss_roll``, ``square``) are defined, as in
appendix F of the paper, through a kernel density with an equal-weight mixture of Gaussian kernels
of bandwidths ``(0.005, 0.008, 0.01, 0.03, 0.05)``.  Here that is made exact: the prior *is*
``recipe + h * N(0, I)`` with ``h`` drawn uniformly from the bandwidths.  ``sample`` draws exactly
from it; ``log_prob`` is its density: analytic for ``square``; for ``pinwheel`` and ``swiss_roll``
a deterministic quadrature of the recipe is convolved with the kernels on a fine grid (built
lazily once, memoised) and interpolated bilinearly.  Where the table underflows (far from the
structure, or outside the grid) the density continues as the Gaussian tail of the widest kernel,
``tau * exp(-d(z)^2 / (2 h_max^2))`` with ``d`` the distance to the tabulated support and ``tau``
the table's cut-off (1e-12 of its peak): log p stays finite, decays as the paper's kernel density
does, and always points back to the prior (total tail mass < 1e-8).

Any prior one can sample works the same way: :class:`SamplesPrior` (``Prior.from_samples(x,
labels)``, ``Prior.from_function(sampler)``, or ``get_prior("samples:FILE.npy")``) is a stored
sample drawn uniformly (within the part of its label) plus the same kernel noise; its density is
tabulated as above in 2-D and evaluated exactly in other dimensions, and its samples are buffers
of the module, so a saved model carries its prior.
"""

from __future__ import annotations

import abc
import hashlib
import math
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import torch
from torch import Tensor, nn

__all__ = [
    "DEFAULT_BANDWIDTHS",
    "PRIORS",
    "GaussianPrior",
    "MixturePrior",
    "PinwheelPrior",
    "Prior",
    "SamplesPrior",
    "SquarePrior",
    "SwissRollPrior",
    "get_prior",
]

DEFAULT_BANDWIDTHS: tuple[float, ...] = (0.005, 0.008, 0.01, 0.03, 0.05)
TAIL_CUTOFF = 1e-12  # table values below this fraction of the peak are replaced by the kernel tail
LOG_2PI = math.log(2.0 * math.pi)
PRIORS: tuple[str, ...] = ("gaussian", "mixture", "pinwheel", "swiss_roll", "square")


# ----------------------------------------------------------------------------- helpers


def _rng_device(generator: torch.Generator | None, default: torch.device) -> torch.device:
    """Device random numbers are drawn on (the generator's, else ``default``)."""
    return generator.device if generator is not None else default


def _check_index(i: int, n: int) -> int:
    """Validate a partition index."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise ValueError(f"partition index must be an int, got {type(i).__name__}")
    if not 0 <= int(i) < n:
        raise ValueError(f"partition index {i} out of range [0, {n})")
    return int(i)


def _check_bandwidths(bandwidths: Sequence[float]) -> tuple[float, ...]:
    """Validate kernel bandwidths: a non-empty sequence of positive finite floats."""
    bw = tuple(float(h) for h in bandwidths)
    if not bw or not all(math.isfinite(h) and h > 0 for h in bw):
        raise ValueError(f"bandwidths must be a non-empty sequence of positive floats, got {bw}")
    return bw


def _gaussian_log_prob(z: Tensor, std: float) -> Tensor:
    """log N(z; 0, std^2 I) row-wise."""
    d = z.shape[-1]
    return -0.5 * (z / std).pow(2).sum(-1) - d * math.log(std) - 0.5 * d * LOG_2PI


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, stable, NaN-free gradients."""
    big = x > -math.log(2.0)
    xa = torch.where(big, x, torch.full_like(x, -1.0))
    xb = torch.where(big, torch.full_like(x, -1.0), x)
    return torch.where(big, torch.log(-torch.expm1(xa)), torch.log1p(-torch.exp(xb)))


def _log_ndtr_diff(a: Tensor, b: Tensor) -> Tensor:
    """log(Phi(a) - Phi(b)) for a > b, accurate in both tails."""
    flip = b > 0  # use Phi(a) - Phi(b) = Phi(-b) - Phi(-a) to stay in the lower tail
    hi = torch.where(flip, -b, a)
    lo = torch.where(flip, -a, b)
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + _log1mexp(torch.special.log_ndtr(lo) - log_hi)


# ----------------------------------------------------------------------------- base class


class Prior(nn.Module, abc.ABC):
    """Abstract prior p(z) over R^dim with ``n_partitions`` labelled parts."""

    name: str = "prior"
    dim: int = 2
    n_partitions: int = 1

    def __init__(self) -> None:
        super().__init__()
        # empty buffer that follows .to(device) so the prior knows where it lives
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """Device of the prior's buffers / parameters."""
        return self._anchor.device

    def sample(self, n: int, generator: torch.Generator | None = None, *,
               kernel_noise: bool = True) -> tuple[Tensor, Tensor]:
        """Draw ``n`` samples: ``(z float32 (n, dim), part int64 (n,))``, reproducible.

        ``kernel_noise=False``: the sampling recipe alone, without the kernel noise that makes
        the sample-only priors' density exact (see the module docstring). With the same seeded
        generator the two agree up to that noise: recipe-only ``z`` = full ``z`` - ``h * eps``.
        Priors without kernel noise (``gaussian``, ``mixture``) ignore the flag.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if not isinstance(kernel_noise, bool):
            raise ValueError(f"kernel_noise must be True or False, got {kernel_noise!r}")
        with torch.no_grad():
            draw = self._sample if kernel_noise else self._sample_recipe
            z, part = draw(int(n), generator)
        return (
            z.to(device=self.device, dtype=torch.float32),
            part.to(device=self.device, dtype=torch.int64),
        )

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density of each row of ``z`` (shape ``(n, dim)``), returns ``(n,)``."""
        return self._log_prob(self._validate(z))

    def partition(self, i: int) -> Prior:
        """The prior restricted to part ``i``; a single-part prior returns itself for i=0."""
        _check_index(i, self.n_partitions)
        return self

    def _validate(self, z: Tensor) -> Tensor:
        """Check ``z`` is a finite 2-D tensor with ``dim`` columns; cast ints to float."""
        if not isinstance(z, Tensor):
            raise ValueError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if z.dim() != 2:
            raise ValueError(f"z must be 2-D (n, {self.dim}), got shape {tuple(z.shape)}")
        if z.shape[1] != self.dim:
            raise ValueError(f"z must have last dim {self.dim}, got shape {tuple(z.shape)}")
        if not z.is_floating_point():
            z = z.to(torch.get_default_dtype())
        # A z that carries gradients is a training sample: checking it would sync the host with
        # the device every step; a non-finite loss stops training anyway (Trainer's check).
        if not z.requires_grad and not bool(torch.isfinite(z).all()):
            raise ValueError("z contains non-finite values (NaN or inf)")
        return z

    @classmethod
    def from_samples(cls, samples: Any, labels: Any = None,
                     bandwidth: float | Sequence[float] | None = None) -> SamplesPrior:
        """The prior given by ``samples`` (n, d) and optional part ``labels`` (n,), numpy or
        torch: a :class:`SamplesPrior` (``bandwidth`` None: a data-driven default, see there).

        Example:
            >>> g = torch.Generator().manual_seed(0)
            >>> z, arm = PinwheelPrior().sample(5000, g, kernel_noise=False)
            >>> Prior.from_samples(z, arm, DEFAULT_BANDWIDTHS).n_partitions
            10
        """
        return SamplesPrior(samples, labels, bandwidth)

    @classmethod
    def from_function(cls, sampler: Callable[[int, np.random.Generator], Any], n: int = 10_000,
                      seed: int = 0, bandwidth: float | Sequence[float] | None = None
                      ) -> SamplesPrior:
        """The prior given by ``sampler(n, numpy.random.default_rng(seed))``, which returns
        samples (n, d) or ``(samples, labels)``: a :class:`SamplesPrior` of those draws.

        Example:
            >>> def ring(n, rng):
            ...     t = rng.uniform(0, 2 * np.pi, n)
            ...     return np.stack([np.cos(t), np.sin(t)], 1)
            >>> Prior.from_function(ring, n=1000, bandwidth=0.05).dim
            2
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        name = f"sampler {getattr(sampler, '__name__', type(sampler).__name__)}"
        out = sampler(int(n), np.random.default_rng(seed))
        samples, labels = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
        prior = SamplesPrior(samples, labels, bandwidth, source=name)
        if prior.samples.shape[0] != n:
            raise ValueError(f"{name} returned {prior.samples.shape[0]} samples for n={n}")
        return prior

    @abc.abstractmethod
    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Draw samples (no validation, no grad)."""

    def _sample_recipe(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Draw samples without kernel noise; the same as ``_sample`` unless a prior adds some."""
        return self._sample(n, generator)

    @abc.abstractmethod
    def _log_prob(self, z: Tensor) -> Tensor:
        """Log-density of validated ``z``."""


# ----------------------------------------------------------------------------- Gaussian


class GaussianPrior(Prior):
    """Isotropic Gaussian N(0, std^2 I) in ``dim`` dimensions (one partition)."""

    name = "gaussian"

    def __init__(self, dim: int = 2, std: float = 1.0) -> None:
        super().__init__()
        if int(dim) < 1 or not (math.isfinite(std) and std > 0):
            raise ValueError(f"need dim >= 1 and std > 0, got dim={dim}, std={std}")
        self.dim = int(dim)
        self.std = float(std)

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        z = self.std * torch.randn(n, self.dim, generator=generator, device=dev)
        return z, torch.zeros(n, dtype=torch.int64, device=dev)

    def _log_prob(self, z: Tensor) -> Tensor:
        return _gaussian_log_prob(z, self.std)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, std={self.std}"


# ----------------------------------------------------------------------------- mixture


def _gauss_mix_default() -> tuple[Tensor, Tensor]:
    """Official ``gauss_mix``: 10 rotated elongated components on a circle of radius 1.4."""
    r = 2 * math.pi * torch.arange(10, dtype=torch.float64) / 10
    means = 1.4 * torch.stack([torch.cos(r), torch.sin(r)], -1)
    rot = torch.stack(
        [torch.stack([torch.cos(r), -torch.sin(r)], -1), torch.stack([torch.sin(r), torch.cos(r)], -1)],
        -2,
    )  # (K, 2, 2)
    diag = torch.diag(torch.tensor([0.5**2, 0.1**2], dtype=torch.float64))
    return means, rot @ diag @ rot.transpose(-1, -2)


def _as_covariances(scales: Any, k: int, d: int) -> Tensor:
    """Turn ``scales`` into (K, d, d) covariances.

    float: shared isotropic std; (K,): per-component isotropic std; (K, d): per-component diagonal
    std; (K, d, d): per-component full covariance.
    """
    s = torch.as_tensor(scales, dtype=torch.float64)
    if s.dim() == 0:
        cov = (s**2 * torch.eye(d, dtype=torch.float64)).expand(k, d, d)
    elif s.shape == (k,):
        cov = s[:, None, None] ** 2 * torch.eye(d, dtype=torch.float64)
    elif s.shape == (k, d):
        cov = torch.diag_embed(s**2)
    elif s.shape == (k, d, d):
        cov = s
    else:
        raise ValueError(
            f"scales shape {tuple(s.shape)} not understood for K={k}, d={d}: expected a float, "
            f"({k},), ({k}, {d}) or ({k}, {d}, {d})"
        )
    if not bool(torch.isfinite(cov).all()):
        raise ValueError("scales must be finite")
    return cov.clone()


class MixturePrior(Prior):
    """Gaussian mixture with analytic log-density; partition i = component i.

    Args:
        means: (K, d) component means; default: the official ``gauss_mix`` (10 components).
        scales: float (shared isotropic std), (K,) isotropic stds, (K, d) diagonal stds or
            (K, d, d) full covariances. Default: ``gauss_mix``
            covariances when ``means`` is None, else isotropic std 1.
        weights: (K,) positive mixture weights (normalised); default equal.
        learn_means: make the means an ``nn.Parameter``.
    """

    name = "mixture"

    def __init__(
        self,
        means: Tensor | Sequence[Sequence[float]] | None = None,
        scales: float | Tensor | None = None,
        weights: Tensor | Sequence[float] | None = None,
        learn_means: bool = False,
    ) -> None:
        super().__init__()
        if means is None:
            mu, cov = _gauss_mix_default()
        else:
            mu = torch.as_tensor(means, dtype=torch.float64).clone()
            cov = None
        if mu.dim() != 2 or mu.shape[0] < 1 or not bool(torch.isfinite(mu).all()):
            raise ValueError(f"means must be a finite (K, d) tensor, got shape {tuple(mu.shape)}")
        k, d = mu.shape
        if scales is not None or cov is None:
            cov = _as_covariances(1.0 if scales is None else scales, k, d)
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError("component covariances must be symmetric positive definite")
        w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64
        )
        if w.shape != (k,) or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be {k} positive finite numbers")
        self.dim, self.n_partitions, self.learn_means = d, k, bool(learn_means)
        dt = torch.get_default_dtype()
        if learn_means:
            self.means = nn.Parameter(mu.to(dt))
        else:
            self.register_buffer("means", mu.to(dt))
        self.register_buffer("log_weights", (w / w.sum()).log().to(dt))
        self.register_buffer("chol", chol.to(dt))
        self.register_buffer("precision", torch.cholesky_inverse(chol).to(dt))
        self.register_buffer("half_logdet", chol.diagonal(dim1=-2, dim2=-1).log().sum(-1).to(dt))

    def component_log_probs(self, z: Tensor, idx: slice | None = None) -> Tensor:
        """Per-component ``log w_k + log N(z; mu_k, Sigma_k)``, shape (n, K) (validated z)."""
        z = self._validate(z)
        return self._component_log_probs(z, slice(None) if idx is None else idx)

    def _component_log_probs(self, z: Tensor, idx: slice) -> Tensor:
        dt = z.dtype
        diff = z[:, None, :] - self.means[idx].to(dt)  # (n, K, d)
        maha = torch.einsum("nki,kij,nkj->nk", diff, self.precision[idx].to(dt), diff)
        return (
            -0.5 * maha
            - self.half_logdet[idx].to(dt)
            - 0.5 * self.dim * LOG_2PI
            + self.log_weights[idx].to(dt)
        )

    def _log_prob(self, z: Tensor) -> Tensor:
        return torch.logsumexp(self._component_log_probs(z, slice(None)), dim=-1)

    def _sample_components(self, comp: Tensor, generator: torch.Generator | None) -> Tensor:
        dev = comp.device
        eps = torch.randn(comp.shape[0], self.dim, generator=generator, device=dev)
        mu, chol = self.means.detach().to(dev), self.chol.to(dev)
        return mu[comp] + torch.einsum("nij,nj->ni", chol[comp], eps)

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        probs = self.log_weights.exp().to(dev)
        comp = torch.multinomial(probs, n, replacement=True, generator=generator) if n else (
            torch.zeros(0, dtype=torch.int64, device=dev)
        )
        return self._sample_components(comp, generator), comp

    def partition(self, i: int) -> Prior:
        """Component ``i`` as a prior (a live view: follows learnable means)."""
        return _MixtureComponent(self, _check_index(i, self.n_partitions))

    def extra_repr(self) -> str:
        return f"K={self.n_partitions}, dim={self.dim}, learn_means={self.learn_means}"


class _MixtureComponent(Prior):
    """One component of a :class:`MixturePrior` (shares the parent's parameters)."""

    def __init__(self, parent: MixturePrior, index: int) -> None:
        super().__init__()
        self.parent = parent
        self.index = index
        self.name = f"mixture[{index}]"
        self.dim = parent.dim
        self.n_partitions = 1

    def _log_prob(self, z: Tensor) -> Tensor:
        lp = self.parent._component_log_probs(z, slice(self.index, self.index + 1))
        return lp[:, 0] - self.parent.log_weights[self.index].to(z.dtype)

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        comp = torch.full((n,), self.index, dtype=torch.int64, device=dev)
        return self.parent._sample_components(comp, generator), torch.zeros_like(comp)


# ----------------------------------------------------------------------------- recipe priors


class _RecipePrior(Prior):
    """Prior = sampling recipe + h * N(0, I), h uniform over ``bandwidths``; 10-ish parts."""

    def __init__(self, bandwidths: Sequence[float], n_parts: int, part: int | None) -> None:
        super().__init__()
        self.bandwidths = _check_bandwidths(bandwidths)
        self.n_parts = int(n_parts)
        self.part = None if part is None else _check_index(part, self.n_parts)
        self.n_partitions = 1 if part is not None else self.n_parts

    @abc.abstractmethod
    def _config(self) -> dict[str, Any]:
        """Constructor kwargs (without ``part``)."""

    @abc.abstractmethod
    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noise-free recipe points (float64, (n, 2)) for part labels ``k``."""

    def _sample_recipe(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        if self.part is None:
            k = torch.randint(self.n_parts, (n,), generator=generator, device=dev)
        else:
            k = torch.full((n,), self.part, dtype=torch.int64, device=dev)
        x = self._recipe(k, generator)
        return x, (k if self.part is None else torch.zeros_like(k))

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        # the recipe first, then the kernel noise: a recipe-only draw with the same generator
        # state is this draw without its noise
        x, part = self._sample_recipe(n, generator)
        dev = x.device
        bw = torch.tensor(self.bandwidths, dtype=torch.float64, device=dev)
        h = bw[torch.randint(len(bw), (n,), generator=generator, device=dev)]
        eps = torch.randn(n, x.shape[1], generator=generator, device=dev, dtype=torch.float64)
        return x + h[:, None] * eps, part

    def partition(self, i: int) -> Prior:
        """Same prior restricted to part ``i`` (a new instance with ``part=i``)."""
        i = _check_index(i, self.n_partitions)
        if self.part is not None:
            return self
        return type(self)(**self._config(), part=i).to(self.device)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in {**self._config(), "part": self.part}.items())


class SquarePrior(_RecipePrior):
    """Perimeter of [-1, 1]^2 with perpendicular N(0, sigma^2) noise, plus kernel noise.

    Part i: perimeter position ``pos`` in [i/n_parts, (i+1)/n_parts) (pieces may cross corners).
    The density is analytic (segments x Gaussian-blurred uniform x perpendicular Gaussian).
    """

    name = "square"
    # (start point, unit direction) of the 4 edges, traversed by increasing pos; length 2 each
    _EDGES = (((-1.0, 1.0), (1.0, 0.0)), ((1.0, 1.0), (0.0, -1.0)),
              ((1.0, -1.0), (-1.0, 0.0)), ((-1.0, -1.0), (0.0, 1.0)))

    def __init__(
        self,
        sigma: float = 0.06,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        n_parts: int = 10,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_parts, part)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        starts, dirs, lengths, weights = self._segments()
        dt = torch.float64
        self.register_buffer("seg_start", torch.tensor(starts, dtype=dt), persistent=False)
        self.register_buffer("seg_dir", torch.tensor(dirs, dtype=dt), persistent=False)
        self.register_buffer("seg_len", torch.tensor(lengths, dtype=dt), persistent=False)
        self.register_buffer("seg_logw", torch.tensor(weights, dtype=dt).log(), persistent=False)

    def _config(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "bandwidths": self.bandwidths, "n_parts": self.n_parts}

    def _segments(self) -> tuple[list, list, list, list]:
        """Straight pieces of the (partial) perimeter with their probability weights."""
        a, b = (0.0, 1.0) if self.part is None else (
            self.part / self.n_parts, (self.part + 1) / self.n_parts)
        starts, dirs, lengths, weights = [], [], [], []
        for e, (s0, d) in enumerate(self._EDGES):
            lo, hi = max(a, e / 4), min(b, (e + 1) / 4)
            if hi - lo <= 1e-12:
                continue
            off = 8.0 * (lo - e / 4)
            starts.append((s0[0] + off * d[0], s0[1] + off * d[1]))
            dirs.append(d)
            lengths.append(8.0 * (hi - lo))
            weights.append((hi - lo) / (b - a))
        return starts, dirs, lengths, weights

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        pos = (k.to(dt) + torch.rand(n, generator=generator, device=dev, dtype=dt)) / self.n_parts
        nz = self.sigma * torch.randn(n, generator=generator, device=dev, dtype=dt)
        one = torch.ones_like(pos)
        x = torch.where(pos < 0.25, 8 * pos - 1, torch.where(
            pos < 0.5, 1 + nz, torch.where(pos < 0.75, 1 - 8 * (pos - 0.5), -1 + nz)))
        y = torch.where(pos < 0.25, one + nz, torch.where(
            pos < 0.5, 1 - 8 * (pos - 0.25), torch.where(pos < 0.75, -one + nz, 8 * (pos - 0.75) - 1)))
        return torch.stack([x, y], -1)

    def _log_prob(self, z: Tensor) -> Tensor:
        zz = z.to(torch.float64)
        rel = zz[:, None, :] - self.seg_start  # (n, P, 2)
        d = self.seg_dir
        s = (rel * d).sum(-1)[..., None]  # along-segment coordinate (n, P, 1)
        perp = (rel[..., 1] * d[:, 0] - rel[..., 0] * d[:, 1])[..., None]
        h = torch.tensor(self.bandwidths, dtype=torch.float64, device=z.device)  # (B,)
        length = self.seg_len[:, None]
        along = _log_ndtr_diff(s / h, (s - length) / h) - torch.log(length)
        var = self.sigma**2 + h**2
        across = -0.5 * perp**2 / var - 0.5 * torch.log(2 * math.pi * var)
        terms = along + across + self.seg_logw[:, None] - math.log(len(self.bandwidths))
        return torch.logsumexp(terms.flatten(1), dim=-1).to(z.dtype)


# ----------------------------------------------------------------------------- tabulated priors


@dataclass(frozen=True)
class _Table:
    """Density table on a regular grid: value ``density[i, j]`` at (lo_x + i*dx, lo_y + j*dx)."""

    density: Tensor  # float32 (nx, ny), CPU, spacing^2 * sum == 1
    distance: Tensor  # float32 (nx, ny): distance from each node to the nearest node of support
    log_tau: float  # log of the cut-off density where the kernel tail takes over
    lo_x: float
    lo_y: float
    spacing: float
    build_seconds: float

    @property
    def extent(self) -> float:
        """Largest |coordinate| covered by the grid."""
        nx, ny = self.density.shape
        hx, hy = self.lo_x + (nx - 1) * self.spacing, self.lo_y + (ny - 1) * self.spacing
        return max(abs(self.lo_x), abs(self.lo_y), abs(hx), abs(hy))


_TABLE_CACHE: OrderedDict[tuple, _Table] = OrderedDict()
_TABLE_CACHE_SIZE = 24


def _deposit(points: np.ndarray, weights: np.ndarray, lo: np.ndarray, spacing: float,
             shape: tuple[int, int]) -> np.ndarray:
    """Cloud-in-cell (bilinear) deposit of weighted points onto the grid nodes."""
    f = (points - lo) / spacing
    i = np.floor(f).astype(np.int64)
    t = f - i
    grid = np.zeros(shape[0] * shape[1])
    for dx in (0, 1):
        wx = t[:, 0] if dx else 1.0 - t[:, 0]
        for dy in (0, 1):
            wy = t[:, 1] if dy else 1.0 - t[:, 1]
            idx = (i[:, 0] + dx) * shape[1] + (i[:, 1] + dy)
            grid += np.bincount(idx, weights * wx * wy, minlength=grid.size)
    return grid.reshape(shape)


def _grid(low: np.ndarray, high: np.ndarray, bandwidths: Sequence[float],
          spacing: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Lower corner and shape of the table grid over the box [low, high] (margin 6 max(h) + 3 cells)."""
    margin = 6.0 * max(bandwidths) + 3 * spacing
    lo = np.floor((low - margin) / spacing) * spacing
    hi = high + margin
    shape = tuple(scipy.fft.next_fast_len(int(np.ceil((hi[j] - lo[j]) / spacing)) + 2, real=True)
                  for j in range(2))
    return lo, shape


def _build_table(points: np.ndarray, weights: np.ndarray, bandwidths: Sequence[float],
                 spacing: float) -> _Table:
    """Tabulate ``sum_j w_j * mean_h N(z; x_j, h^2 I)`` on a grid covering the points.

    Deposit (CIC) and bilinear read-out each smooth by a variance of ~spacing^2/6 per axis, so the
    kernels applied on the grid have variance h^2 - spacing^2/3 (clipped at 0).  The Gaussian
    convolutions are done by FFT (the margin of 6*max(h) makes the periodic wrap negligible).
    """
    t0 = time.perf_counter()
    lo, shape = _grid(points.min(0), points.max(0), bandwidths, spacing)
    mass = _deposit(points, weights / weights.sum(), lo, spacing, shape)
    spec = scipy.fft.rfft2(mass, workers=-1)
    fx, fy = scipy.fft.fftfreq(shape[0]), scipy.fft.rfftfreq(shape[1])
    transfer = np.zeros(spec.shape)
    for h in bandwidths:
        s2 = max(h * h - spacing * spacing / 3.0, 0.0) / (spacing * spacing)  # in cells^2
        transfer += np.outer(np.exp(-2 * np.pi**2 * s2 * fx**2), np.exp(-2 * np.pi**2 * s2 * fy**2))
    spec *= transfer / len(bandwidths)
    dens = scipy.fft.irfft2(spec, s=shape, workers=-1)
    dens[dens < TAIL_CUTOFF * dens.max()] = 0.0  # FFT round-off (and negatives) -> exact zero
    dens /= dens.sum() * spacing**2
    dist = scipy.ndimage.distance_transform_edt(dens <= 0) * spacing
    table = torch.from_numpy(dens.astype(np.float32))
    return _Table(table, torch.from_numpy(dist.astype(np.float32)),
                  math.log(TAIL_CUTOFF * dens.max()), float(lo[0]), float(lo[1]), spacing,
                  time.perf_counter() - t0)


def _bilinear(table: Tensor, fx: Tensor, fy: Tensor) -> Tensor:
    """Bilinear interpolation of ``table`` at fractional indices; 0 outside (differentiable)."""
    nx, ny = table.shape
    ix = torch.floor(fx).clamp(0, nx - 2)
    iy = torch.floor(fy).clamp(0, ny - 2)
    tx, ty = fx - ix, fy - iy
    inside = (fx >= 0) & (fx <= nx - 1) & (fy >= 0) & (fy <= ny - 1)
    flat = table.reshape(-1)
    base = ix.long() * ny + iy.long()
    v00, v01 = flat[base].to(fx.dtype), flat[base + 1].to(fx.dtype)
    v10, v11 = flat[base + ny].to(fx.dtype), flat[base + ny + 1].to(fx.dtype)
    val = (1 - tx) * ((1 - ty) * v00 + ty * v01) + tx * ((1 - ty) * v10 + ty * v11)
    return torch.where(inside, val, torch.zeros_like(val))


class _TabulatedPrior(_RecipePrior):
    """Recipe prior whose density is tabulated from a deterministic quadrature of the recipe."""

    def __init__(self, bandwidths: Sequence[float], n_parts: int, part: int | None,
                 spacing: float) -> None:
        super().__init__(bandwidths, n_parts, part)
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"spacing must be > 0, got {spacing}")
        self.spacing = float(spacing)
        self._meta: _Table | None = None
        self.register_buffer("_table", None, persistent=False)
        self.register_buffer("_distance", None, persistent=False)

    @abc.abstractmethod
    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature (points (P, 2), weights (P,)) of the noise-free recipe (this part)."""

    def _kernel_bandwidths(self) -> tuple[float, ...]:
        """Bandwidths of the Gaussian noise added to the base measure."""
        return self.bandwidths

    def _table_key(self) -> tuple:
        """What identifies this prior's table in the memo (its class, configuration and part)."""
        return (type(self).__name__, tuple(sorted(self._config().items())), self.part)

    def table(self) -> _Table:
        """The (lazily built, memoised) density table of this prior."""
        if self._meta is None:
            key = self._table_key()
            meta = _TABLE_CACHE.get(key)
            if meta is None:
                pts, w = self._base_measure()
                meta = _build_table(pts, w, self._kernel_bandwidths(), self.spacing)
                _TABLE_CACHE[key] = meta
                while len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
                    _TABLE_CACHE.popitem(last=False)
            else:
                _TABLE_CACHE.move_to_end(key)
            self._meta = meta
        if self._table is None:
            self._table = self._meta.density.to(self.device)
            self._distance = self._meta.distance.to(self.device)
        return self._meta

    def _log_prob(self, z: Tensor) -> Tensor:
        meta = self.table()
        nx, ny = self._table.shape
        fx, fy = (z[:, 0] - meta.lo_x) / meta.spacing, (z[:, 1] - meta.lo_y) / meta.spacing
        dens = _bilinear(self._table, fx, fy)
        pos = dens > 0
        log_tab = torch.where(pos, torch.log(torch.where(pos, dens, torch.ones_like(dens))),
                              torch.full_like(dens, -math.inf))
        cx, cy = fx.clamp(0, nx - 1), fy.clamp(0, ny - 1)
        outside = ((fx - cx).pow(2) + (fy - cy).pow(2) + 1e-20).sqrt() * meta.spacing
        d = _bilinear(self._distance, cx, cy) + outside
        h = max(self._kernel_bandwidths())
        return torch.logaddexp(log_tab, meta.log_tau - d.pow(2) / (2 * h * h))


class PinwheelPrior(_TabulatedPrior):
    """Pinwheel (official recipe): ``n_arms`` spiral arms; part i = arm i.

    arm k ~ U{0..K-1}; f1 = 1 + radial_std*e1, f2 = tangential_std*e2;
    theta = 2 pi k / K + rate * exp(f1); z = R(-theta) (f1, f2).
    """

    name = "pinwheel"

    def __init__(
        self,
        n_arms: int = 10,
        radial_std: float = 0.15,
        tangential_std: float = 0.005,
        rate: float = 0.25,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        spacing: float = 0.0025,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_arms, part, spacing)
        if radial_std < 0 or tangential_std < 0:
            raise ValueError("radial_std and tangential_std must be >= 0")
        self.radial_std, self.tangential_std = float(radial_std), float(tangential_std)
        self.rate = float(rate)

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_parts, "radial_std": self.radial_std,
                "tangential_std": self.tangential_std, "rate": self.rate,
                "bandwidths": self.bandwidths, "spacing": self.spacing}

    def _arm_points(self, k: np.ndarray | Tensor, f1: Any, f2: Any, lib: Any) -> tuple[Any, Any]:
        theta = 2 * math.pi * k / self.n_parts + self.rate * lib.exp(f1)
        c, s = lib.cos(theta), lib.sin(theta)
        return f1 * c + f2 * s, -f1 * s + f2 * c

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        e = torch.randn(n, 2, generator=generator, device=dev, dtype=dt)
        f1, f2 = 1 + self.radial_std * e[:, 0], self.tangential_std * e[:, 1]
        x, y = self._arm_points(k.to(dt), f1, f2, torch)
        return torch.stack([x, y], -1)

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        f1, w1 = _normal_nodes(1.0, self.radial_std, 1601)
        f2, w2 = _normal_nodes(0.0, self.tangential_std, 31)
        arms = range(self.n_parts) if self.part is None else [self.part]
        k = np.repeat(np.asarray(list(arms), dtype=np.float64), f1.size * f2.size)
        f1g = np.tile(np.repeat(f1, f2.size), len(arms))
        f2g = np.tile(np.tile(f2, f1.size), len(arms))
        w = np.tile(np.outer(w1, w2).ravel(), len(arms))
        x, y = self._arm_points(k, f1g, f2g, np)
        return np.stack([x, y], -1), w


def _normal_nodes(mean: float, std: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform nodes over mean +- 6 std with normalised normal-pdf weights."""
    if std == 0:
        return np.array([mean]), np.array([1.0])
    u = np.linspace(-6.0, 6.0, n)
    w = np.exp(-0.5 * u**2)
    return mean + std * u, w / w.sum()


class SwissRollPrior(_TabulatedPrior):
    """Swiss roll: u = (U + k)/10, r = 3 sqrt(u), phi = 4.5 pi sqrt(u), z = r (cos, sin) phi.

    Part i: u in [i/n_parts, (i+1)/n_parts). ``noise`` adds isotropic N(0, noise^2) (default 0).
    """

    name = "swiss_roll"

    def __init__(
        self,
        noise: float = 0.0,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        n_parts: int = 10,
        spacing: float = 0.0025,
        nodes_per_part: int = 20000,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_parts, part, spacing)
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise, self.nodes_per_part = float(noise), int(nodes_per_part)

    def _config(self) -> dict[str, Any]:
        return {"noise": self.noise, "bandwidths": self.bandwidths, "n_parts": self.n_parts,
                "spacing": self.spacing, "nodes_per_part": self.nodes_per_part}

    def _kernel_bandwidths(self) -> tuple[float, ...]:
        return tuple(math.sqrt(h * h + self.noise**2) for h in self.bandwidths)

    @staticmethod
    def _curve(u: Any, lib: Any) -> tuple[Any, Any]:
        r, phi = 3.0 * lib.sqrt(u), 4.5 * math.pi * lib.sqrt(u)
        return r * lib.cos(phi), r * lib.sin(phi)

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        u = (torch.rand(n, generator=generator, device=dev, dtype=dt) + k.to(dt)) / self.n_parts
        x, y = self._curve(u, torch)
        z = torch.stack([x, y], -1)
        if self.noise > 0:
            z = z + self.noise * torch.randn(n, 2, generator=generator, device=dev, dtype=dt)
        return z

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.nodes_per_part
        parts = np.arange(self.n_parts) if self.part is None else np.array([self.part])
        u = ((np.arange(m) + 0.5)[None, :] / m + parts[:, None]).ravel() / self.n_parts
        x, y = self._curve(u, np)
        return np.stack([x, y], -1), np.full(u.size, 1.0 / u.size)


# ----------------------------------------------------------------------------- priors from samples

SAMPLES_PREFIX = "samples:"
MIN_PRIOR_SAMPLES = 100
MAX_TABLE_NODES = 2**23  # 2-D table grid nodes (64 MiB as float32 with its distance map)
_KDE_CHUNK = 2**22  # terms (rows x samples x bandwidths) per chunk of the exact kernel density


def samples_path(name: Any) -> str | None:
    """The file of a ``"samples:PATH"`` prior name, else None."""
    if isinstance(name, str) and name.strip().lower().startswith(SAMPLES_PREFIX):
        return name.strip()[len(SAMPLES_PREFIX):]
    return None


def _as_array(value: Any, what: str, source: str) -> np.ndarray:
    """numpy view of an array-like (torch tensors are copied to the host)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{source}: {what} are not an array ({err})") from err


def _check_samples(samples: Any, source: str) -> np.ndarray:
    """Prior samples as float64 (n, d): numeric, 2-D, finite, at least MIN_PRIOR_SAMPLES rows."""
    x = _as_array(samples, "prior samples", source)
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{source}: prior samples must be a numeric (n, d) array, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{source}: prior samples must be a 2-D array (n, d) with one sample per "
                         f"row, got shape {x.shape} (1-D samples: x.reshape(-1, 1))")
    if x.shape[0] < MIN_PRIOR_SAMPLES:
        raise ValueError(f"{source}: {x.shape[0]} prior samples; a samples prior needs at least "
                         f"{MIN_PRIOR_SAMPLES} rows")
    x = x.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(x).all(1))
    if bad.size:
        raise ValueError(f"{source}: prior samples contain NaN or inf in {bad.size} rows (first: "
                         f"{bad[:5].tolist()})")
    return x


def _check_labels(labels: Any, n: int, source: str) -> np.ndarray:
    """Part labels as int64 (n,) using every part 0..K-1 (None: all zero, one part)."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    y = _as_array(labels, "labels", source)
    if y.shape != (n,):
        raise ValueError(f"{source}: labels must have shape ({n},), one per sample, got {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{source}: labels must be integers (part indices 0..K-1), got dtype "
                         f"{y.dtype} (e.g. {y.flat[0]!r})")
    if y.min() < 0:
        raise ValueError(f"{source}: labels must be >= 0 (part indices 0..K-1), got {y.min()}")
    y = y.astype(np.int64)
    k = int(y.max()) + 1
    missing = np.flatnonzero(np.bincount(y, minlength=k) == 0) if k <= n else np.array([k - 1])
    if missing.size:
        raise ValueError(f"{source}: labels go up to {k - 1}, so every part 0..{k - 1} needs "
                         f"samples, but label(s) {missing[:10].tolist()} have none")
    return y


def _default_bandwidths(x: np.ndarray, source: str) -> tuple[float, ...]:
    """Scott's rule ``sigma n^(-1/(d+4))`` for the widest kernel, the paper's ratios below it."""
    n, d = x.shape
    sigma = float(np.sqrt(x.var(0, ddof=1).mean()))
    if not sigma > 0:
        raise ValueError(f"{source}: all prior samples are the same point; give the bandwidth")
    top = sigma * n ** (-1.0 / (d + 4))
    return tuple(top * h / max(DEFAULT_BANDWIDTHS) for h in DEFAULT_BANDWIDTHS)


def _samples_digest(samples: Tensor, labels: Tensor, widths: Tensor) -> str:
    """sha256 of a samples prior's content (float64 samples and bandwidths, int64 labels)."""
    h = hashlib.sha256()
    for t, dt in ((samples, torch.float64), (labels, torch.int64), (widths, torch.float64)):
        a = t.detach().to("cpu", dt).contiguous()
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def _kde_log_prob(z: Tensor, points: Tensor, widths: Tensor) -> Tensor:
    """``log mean_j mean_h N(z; x_j, h^2 I)``, exact in float64, chunked over the points x_j."""
    zz, x = z.to(torch.float64), points.to(z.device)
    centre = x.mean(0)  # centred squared distances lose no precision to large offsets
    zz, x = zz - centre, x - centre
    h = widths.to(z.device)
    d = zz.shape[1]
    log_norm = -d * torch.log(h) - 0.5 * d * LOG_2PI
    z_sq = zz.pow(2).sum(1, keepdim=True)
    step = max(1, _KDE_CHUNK // max(1, zz.shape[0] * h.numel()))
    terms = []
    for xc in x.split(step):
        sq = (z_sq + xc.pow(2).sum(1) - 2 * zz @ xc.T).clamp_min(0)  # (rows, chunk)
        terms.append(torch.logsumexp((-0.5 * sq[..., None] / h.pow(2) + log_norm).flatten(1), 1))
    total = torch.logsumexp(torch.stack(terms, 1), 1) - math.log(x.shape[0] * h.numel())
    return total.to(z.dtype)


class SamplesPrior(_TabulatedPrior):
    """A prior given by samples: a stored sample drawn uniformly (within the part) plus
    ``h * N(0, I)``, ``h`` uniform over the bandwidths -- appendix F's kernel density, exact.

    ``samples``: (n, d), n >= 100, numpy or torch. ``labels``: (n,) integers 0..K-1 (default: one
    part); part i is the samples labelled i (renormalised), ``log_weights`` the log of the class
    proportions p(l), so the parts mixed with these weights are the whole prior. ``bandwidth``: a
    float, a sequence of floats, or None: the widest kernel is Scott's rule
    ``sigma * n^(-1/(d+4))`` (sigma: root-mean-square standard deviation of the coordinates; the
    mean-squared-error optimal single bandwidth for near-Gaussian data, tied to the samples' own
    scale) and the others follow :data:`DEFAULT_BANDWIDTHS`' ratios (0.1, 0.16, 0.2, 0.6, 1), so
    thin structures (arms, curves) stay resolved as in the paper's priors.

    ``log_prob``: in 2-D the tabulated density of the recipe priors (base measure: the samples,
    equal weights; grid spacing half the smallest bandwidth, at most ``MAX_TABLE_NODES`` nodes,
    else a ValueError at construction) with its Gaussian tail; with several bandwidths it is within
    ~0.03 nats of the exact kernel density where tabulated (a single narrow bandwidth around
    isolated samples is coarser, up to ~0.5 nats a few bandwidths away); in other dimensions the kernel
    density evaluated exactly (float64 logsumexp over the samples, in chunks; cost rows x n x
    bandwidths per call). ``samples``, ``labels`` and ``widths`` (the bandwidths) are persistent
    buffers, so a model's ``state_dict`` holds the whole prior; loading a state whose tensors are
    not this prior's (``sha256``) is refused.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 3))
        >>> prior = Prior.from_samples(x, bandwidth=0.2)
        >>> prior.log_prob(torch.zeros(4, 3)).shape
        torch.Size([4])
    """

    name = "samples"

    def __init__(self, samples: Any, labels: Any = None,
                 bandwidth: float | Sequence[float] | None = None, *, part: int | None = None,
                 source: str = "samples") -> None:
        x = _check_samples(samples, source)
        y = _check_labels(labels, x.shape[0], source)
        if bandwidth is None:
            bw = _default_bandwidths(x, source)
        else:
            b = np.asarray(_as_array(bandwidth, "bandwidths", source), dtype=np.float64)
            try:
                bw = _check_bandwidths(b.reshape(-1).tolist() if b.ndim <= 1 else [])
            except ValueError as err:
                raise ValueError(f"{source}: {err}") from err
        super().__init__(bw, int(y.max()) + 1, part, min(bw) / 2)
        self.dim, self.source = x.shape[1], str(source)
        self.register_buffer("samples", torch.from_numpy(x))
        self.register_buffer("labels", torch.from_numpy(y))
        self.register_buffer("widths", torch.tensor(bw, dtype=torch.float64))
        self.sha256 = _samples_digest(self.samples, self.labels, self.widths)
        counts = np.bincount(y, minlength=self.n_parts)
        order = np.argsort(y, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.register_buffer("log_weights", torch.from_numpy(np.log(counts / x.shape[0])).to(
            torch.get_default_dtype()), persistent=False)
        self.register_buffer("_order", torch.from_numpy(order), persistent=False)
        self.register_buffer("_offsets", torch.from_numpy(offsets), persistent=False)
        self.register_buffer("_counts", torch.from_numpy(counts), persistent=False)
        own = x if part is None else x[order[offsets[self.part]:offsets[self.part] + counts[self.part]]]
        self.register_buffer("_points", torch.from_numpy(own), persistent=False)
        if self.dim == 2:
            self._check_grid(own, source)

    @classmethod
    def from_file(cls, path: str | Path, bandwidth: float | Sequence[float] | None = None
                  ) -> SamplesPrior:
        """Prior from a ``.npy`` file (an (n, d) array) or a ``.npz`` file (array ``samples`` or
        ``z``, optional ``labels``); never unpickles. Errors name the file."""
        samples, labels = _read_samples_file(Path(path))
        return cls(samples, labels, bandwidth, source=str(path))

    def spec(self) -> dict[str, Any]:
        """What identifies this prior: rows, dim, parts, bandwidths and the sha256 of its tensors."""
        return {"rows": int(self.samples.shape[0]), "dim": self.dim, "parts": self.n_parts,
                "bandwidths": list(self.bandwidths), "sha256": self.sha256}

    def _check_grid(self, points: np.ndarray, source: str) -> None:
        _, shape = _grid(points.min(0), points.max(0), self.bandwidths, self.spacing)
        nodes = shape[0] * shape[1]
        if nodes > MAX_TABLE_NODES:
            raise ValueError(
                f"{source}: the 2-D density table would need {shape[0]} x {shape[1]} grid nodes "
                f"(spacing {self.spacing:.3g}, half the smallest bandwidth, over samples spanning "
                f"{np.ptp(points, 0).round(3).tolist()}), more than {MAX_TABLE_NODES}: give "
                f"larger bandwidths (about {math.sqrt(nodes / MAX_TABLE_NODES):.2g} times or "
                "more) or samples over a smaller range")

    def _config(self) -> dict[str, Any]:
        return {"samples": self.samples, "labels": self.labels, "bandwidth": self.bandwidths,
                "source": self.source}

    def _table_key(self) -> tuple:
        return (type(self).__name__, self.sha256, self.spacing, self.part)

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        pts = self._points.cpu().numpy()
        return pts, np.ones(pts.shape[0])

    def _sample_recipe(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if self.part is not None:
            return super()._sample_recipe(n, generator)
        dev = _rng_device(generator, self.device)
        k = torch.multinomial(self.log_weights.exp().to(dev), n, replacement=True,
                              generator=generator) if n else torch.zeros(0, dtype=torch.int64,
                                                                         device=dev)
        return self._recipe(k, generator), k

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        """A stored sample of part ``k[i]``, uniformly, for each i."""
        dev = k.device
        u = torch.rand(k.shape[0], generator=generator, device=dev, dtype=torch.float64)
        count = self._counts.to(dev)[k]
        pick = torch.minimum((u * count).long(), count - 1)
        return self.samples.to(dev)[self._order.to(dev)[self._offsets.to(dev)[k] + pick]]

    def _log_prob(self, z: Tensor) -> Tensor:
        if self.dim == 2:
            return super()._log_prob(z)
        return _kde_log_prob(z, self._points, self.widths)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        keys = [prefix + k for k in ("samples", "labels", "widths")]
        if all(k in state_dict for k in keys):
            digest = _samples_digest(*(state_dict[k] for k in keys))
            if digest != self.sha256:
                args[-1].append(  # error_msgs
                    f"{prefix}samples: the stored prior samples (sha256 {digest[:12]}) are not "
                    f"this prior's (sha256 {self.sha256[:12]}); build the prior from them instead")
                return
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (f"n={self.samples.shape[0]}, dim={self.dim}, parts={self.n_parts}, "
                f"bandwidths={tuple(round(h, 6) for h in self.bandwidths)}, part={self.part}, "
                f"source={self.source!r}")


def _read_samples_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(samples, labels or None) from a .npy or .npz file, with errors that name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"prior samples file {path} does not exist (expected a .npy array "
                                "(n, d), or a .npz with 'samples' and optional 'labels')")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npy or .npz file ({err})") from err
    if isinstance(data, np.ndarray):
        return data, None
    with data:
        keys = list(data.files)
        found = ", ".join(map(repr, keys)) or "none"
        unknown = [k for k in keys if k not in ("samples", "z", "labels")]
        if unknown:
            raise ValueError(f"{path}: unknown array(s) {unknown} in the .npz file, which may hold "
                             f"'samples' (or 'z') and optionally 'labels' (arrays found: {found})")
        names = [k for k in ("samples", "z") if k in keys]
        if len(names) != 1:
            raise ValueError(f"{path}: the .npz file needs one array named 'samples' or 'z' "
                             f"(arrays found: {found})")
        try:
            return data[names[0]], data["labels"] if "labels" in keys else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read the arrays of the .npz file ({err})") from err


# ----------------------------------------------------------------------------- factory

_REGISTRY: dict[str, type[Prior]] = {
    "gaussian": GaussianPrior,
    "mixture": MixturePrior,
    "pinwheel": PinwheelPrior,
    "swiss_roll": SwissRollPrior,
    "square": SquarePrior,
}


def get_prior(name: str, **kwargs: Any) -> Prior:
    """Build a prior by name (one of :data:`PRIORS`, or ``"samples:PATH"`` for a
    :class:`SamplesPrior` read from a .npy/.npz file); kwargs go to its constructor."""
    path = samples_path(name)
    if path is not None:
        if not path:
            raise ValueError(f"prior {name!r} names no file: use samples:PATH.npy or samples:PATH.npz")
        return SamplesPrior.from_file(path, **kwargs)
    key = str(name).strip().lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"unknown prior {name!r}; valid names: {', '.join(PRIORS)}, or "
                         "samples:FILE.npy for a prior given by samples")
    return _REGISTRY[key](**kwargs)
