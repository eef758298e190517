"""The diagonal Gaussian posterior of AEVB."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ddvi.nets import Encoder, EncoderFactory
from ddvi.posteriors.base import Posterior, diag_normal_log_prob, positive_scale


class GaussianPosterior(Posterior):
    """q(z | x) = N(mean(x), diag std(x)^2).

    ``encoder`` builds the network on x (:data:`ddvi.nets.EncoderFactory`; None: the MLP
    :class:`ddvi.nets.Encoder`, e.g. :class:`ddvi.convnets.ConvEncoder` for images).

    Example:
        >>> q = GaussianPosterior(4, 2, [8])
        >>> z, log_q = q.rsample(torch.zeros(5, 4))
        >>> z.shape, log_q.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], dropout: float = 0.0,
                 encoder: EncoderFactory | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        make = encoder or Encoder
        self.encoder = make(in_dim, hidden, {"mean": latent_dim, "scale": latent_dim}, dropout)

    def params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return h["mean"], positive_scale(h["scale"])

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        mean, std = self.params(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + std * eps, diag_normal_log_prob(eps, std)

    def summary(self, x: Tensor) -> Tensor:
        return self.params(x)[0]
