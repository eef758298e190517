"""Observation models p(x | z) given the decoder output, as log-densities in nats per example."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-iso")


class Likelihood(nn.Module):
    """Turns decoder outputs into log p(x | z) (summed over features), means and samples."""

    name: str

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        raise NotImplementedError

    def mean(self, out: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def init_from_data(self, x: Tensor) -> None:
        """Data-dependent initialisation before training (default: none)."""

    def check_data(self, x: Tensor) -> None:
        """Raise ValueError if ``x`` is outside the support of the model."""


class Bernoulli(Likelihood):
    """Independent Bernoulli pixels; the decoder outputs logits. Data must be binary."""

    name = "bernoulli"

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)

    def mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out)

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        return (u < torch.sigmoid(out)).to(out.dtype)

    def check_data(self, x: Tensor) -> None:
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError("the bernoulli likelihood needs binary data (0/1); binarize it first "
                             "(DDVI(binarize=True) does) or use likelihood='gaussian'")


class Gaussian(Likelihood):
    """N(x; mean(z), diag(sigma^2)) with one learned log-scale per feature."""

    name = "gaussian"

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))

    @torch.no_grad()
    def init_from_data(self, x: Tensor, floor: float = 1e-3) -> None:
        """Start each scale at the feature's standard deviation (at least ``floor``): with a unit
        scale, data on a small scale (PCs / 30) would need thousands of steps of Adam at lr 1e-4
        just to shrink log_scale, and the latent would learn nothing meanwhile."""
        std = x.float().std(0) if x.shape[0] > 1 else torch.ones(x.shape[1])
        self.log_scale.copy_(std.clamp(min=floor).log().to(self.log_scale))

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        z = (x - out) * torch.exp(-self.log_scale)
        return (-0.5 * z.pow(2) - self.log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)

    def mean(self, out: Tensor) -> Tensor:
        return out

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        return out + noise * self.log_scale.exp()


class IsotropicGaussian(Gaussian):
    """N(x; mean(z), sigma^2 I) with one learned scale shared by all features.

    For features whose variances differ by orders of magnitude (principal components), the
    per-feature scale rewards explaining a small-variance noise component as much as the top
    component; a shared scale makes the reconstruction term track squared error, so the latent
    is spent on the directions of largest variance (as the authors' MSE loss does for genotypes).
    """

    name = "gaussian-iso"

    def __init__(self, dim: int):
        Likelihood.__init__(self)
        self.dim = dim
        self.shared_log_scale = nn.Parameter(torch.zeros(()))

    @property
    def log_scale(self) -> Tensor:  # type: ignore[override]
        return self.shared_log_scale.expand(self.dim)

    @torch.no_grad()
    def init_from_data(self, x: Tensor, floor: float = 1e-3) -> None:
        """Start at the root mean feature variance (at least ``floor``)."""
        var = x.float().var(0).mean() if x.shape[0] > 1 else torch.tensor(1.0)
        self.shared_log_scale.copy_(var.sqrt().clamp(min=floor).log())


def get_likelihood(name: str, dim: int) -> Likelihood:
    """The observation model called ``name`` for ``dim`` features."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(dim)
    if name == "gaussian-iso":
        return IsotropicGaussian(dim)
    raise ValueError(f"unknown likelihood {name!r}; choose one of {LIKELIHOODS}")
