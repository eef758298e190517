"""The prior abstraction: the :class:`Prior` base class, the base of the recipe priors
(sampling recipe plus kernel noise), the shared numerical helpers, and :class:`GaussianPrior`."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from ddvi.priors.samples import SamplesPrior

DEFAULT_BANDWIDTHS: tuple[float, ...] = (0.005, 0.008, 0.01, 0.03, 0.05)
LOG_2PI = math.log(2.0 * math.pi)


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

    def score(self, z: Tensor) -> Tensor:
        """grad_z log p(z) of each row of ``z``, ``(n, dim)``, as a constant (no graph): what
        DDVI's guided chain sees. By autograd of ``log_prob``; priors with a cheaper form
        override it."""
        return _autograd_score(self.log_prob, z)

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
        from ddvi.priors.samples import SamplesPrior

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
        from ddvi.priors.samples import SamplesPrior

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

    def score(self, z: Tensor) -> Tensor:
        return -z.detach() / self.std**2

    def extra_repr(self) -> str:
        return f"dim={self.dim}, std={self.std}"



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



@torch.compiler.disable
def _autograd_score(log_prob: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """grad_z of ``log_prob(z).sum()`` without a graph (outside any compiled region)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        return torch.autograd.grad(log_prob(z).sum(), z)[0]
