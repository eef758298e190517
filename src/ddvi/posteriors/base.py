"""The interface every posterior family q(z | x) implements."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Posterior(nn.Module):
    """q(z | x). ``rsample`` returns a reparameterised z and ``log_q`` such that

        ELBO = E[log p(x | z) + log p(z) - log_q]

    is a lower bound on log p(x). For a posterior with auxiliary latents y (DDVI, hierarchical),
    ``log_q = log q(y, z | x) - log r(y | z, x)`` (paper eq. 5), which makes the same formula the
    auxiliary-variable bound.
    """

    latent_dim: int

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def summary(self, x: Tensor) -> Tensor:
        """A deterministic latent for ``x`` (used by ``transform``)."""
        raise NotImplementedError


def positive_scale(raw: Tensor) -> Tensor:
    """Encoder scale head -> standard deviation (> 0, smooth)."""
    return F.softplus(raw) + 1e-4


def diag_normal_log_prob(eps: Tensor, std: Tensor) -> Tensor:
    """log N(mean + std * eps; mean, std^2), summed over the last dimension."""
    return (-std.log() - HALF_LOG_2PI - 0.5 * eps.pow(2)).sum(-1)
