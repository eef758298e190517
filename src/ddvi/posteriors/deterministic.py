"""The deterministic encoder of the adversarial autoencoder (AAEB, Makhzani et al. 2015)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ddvi.nets import Encoder, EncoderFactory, mlp
from ddvi.posteriors.base import Posterior


class DeterministicPosterior(Posterior):
    """z = encoder(x): a point mass, so q(z | x) has no density.

    ``rsample`` returns ``log_q`` filled with NaN: a Dirac posterior has no (finite) density and
    there is no ELBO to form from it; any bound computed with it comes out NaN instead of silently
    wrong. Methods using it (AAEB) train without ``log_q``.

    ``encoder``: None (or :class:`ddvi.nets.Encoder`) for a plain MLP, else an
    :data:`ddvi.nets.EncoderFactory` (e.g. :class:`ddvi.convnets.ConvEncoder`) given one head ``z``.

    Example:
        >>> q = DeterministicPosterior(4, 2, [8])
        >>> z, log_q = q.rsample(torch.zeros(5, 4))
        >>> z.shape, bool(log_q.isnan().all())
        (torch.Size([5, 2]), True)
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], dropout: float = 0.0,
                 encoder: EncoderFactory | None = None):
        super().__init__()
        self.latent_dim = latent_dim
        # the MLP Encoder with one head is exactly ``mlp``: keep its plain layout (checkpoint keys)
        self.head = None if encoder in (None, Encoder) else "z"
        self.encoder = (mlp(in_dim, hidden, latent_dim, dropout) if self.head is None
                        else encoder(in_dim, hidden, {self.head: latent_dim}, dropout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.encoder(x)
        return out if self.head is None else out[self.head]

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(encoder(x), NaN); ``generator`` is unused (nothing is random)."""
        z = self(x)
        return z, z.new_full((z.shape[0],), math.nan)

    def summary(self, x: Tensor) -> Tensor:
        return self(x)
