"""The inverse autoregressive flow posterior of AEVB-IAF (Kingma et al. 2016, "Improved Variational
Inference with Inverse Autoregressive Flow"), the paper's flow baseline.

q(z | x): z0 = mean(x) + std(x) * eps, eps ~ N(0, I), then z = f_K o ... o f_1(z0) where each f_k is
an affine autoregressive transform whose shift and log-scale come from a MADE (Germain et al.
2015) over its *input* and a context c(x) from the encoder. Sampling is therefore one MADE pass per
transform (the cheap direction of IAF); the density of a given z needs the sequential inverse.
The variable ordering is reversed on every other transform. log q(z | x) = log N(z0; mean, std^2)
- sum_k log |det df_k/dz_{k-1}|.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from zuko.flows.autoregressive import MaskedAutoregressiveTransform

from ddvi.nets import Encoder, EncoderFactory
from ddvi.posteriors.base import Posterior, diag_normal_log_prob, positive_scale


class IAFFlow(nn.Module):
    """A stack of conditional affine autoregressive transforms (zuko MADEs) used in the IAF
    direction: ``forward(z0, c)`` is one MADE pass per transform and returns (z, sum log|det J|).

    Transform k uses the ordering ``range(dim)`` for even k and its reverse for odd k. The MADEs'
    output layers start at zero, so the flow starts as the identity (the posterior starts as
    AEVB's Gaussian; cf. the identity-biased initialisation of Kingma et al. 2016).

    Example:
        >>> flow = IAFFlow(3, n_transforms=2, hidden=(8,), context_dim=4)
        >>> z, ladj = flow(torch.zeros(5, 3), torch.zeros(5, 4))
        >>> z.shape, ladj.shape
        (torch.Size([5, 3]), torch.Size([5]))
    """

    def __init__(self, dim: int, n_transforms: int = 4, hidden: Sequence[int] = (128, 128, 128),
                 context_dim: int = 0):
        super().__init__()
        self.dim, self.context_dim = dim, context_dim
        self.transforms = nn.ModuleList(
            MaskedAutoregressiveTransform(
                dim, context=context_dim, hidden_features=tuple(hidden),
                order=torch.arange(dim).flip(0) if k % 2 else torch.arange(dim))
            for k in range(n_transforms))
        with torch.no_grad():
            for t in self.transforms:
                t.hyper[-1].weight.zero_()
                t.hyper[-1].bias.zero_()

    def _context(self, context: Tensor | None) -> Tensor | None:
        return context if self.context_dim > 0 else None

    def forward(self, z0: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """z = f(z0) and log|det df/dz0| per row (the sampling direction: no sequential passes)."""
        c = self._context(context)
        z, ladj = z0, z0.new_zeros(z0.shape[:-1])
        for t in self.transforms:
            z, step = t(c).call_and_ladj(z)
            ladj = ladj + step
        return z, ladj

    def inverse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """z0 = f^{-1}(z): ``dim`` sequential MADE passes per transform (the expensive direction)."""
        c = self._context(context)
        for t in reversed(self.transforms):
            z = t(c).inv(z)
        return z


class IAFPosterior(Posterior):
    """AEVB-IAF: a diagonal Gaussian from the encoder pushed through ``n_transforms`` IAF steps.

    The encoder has heads ``mean``, ``scale`` and (if ``context_dim > 0``) ``context``; the flow
    sees x only through the context (``encoder``: see
    :class:`ddvi.posteriors.gaussian.GaussianPosterior`). Defaults follow the paper's baseline:
    4 transforms, each a 4-layer MADE with 128 hidden units, a context of size 10.

    Example:
        >>> q = IAFPosterior(4, 2, [8], made_hidden=(16,))
        >>> z, log_q = q.rsample(torch.zeros(5, 4))
        >>> z.shape, log_q.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], n_transforms: int = 4,
                 made_hidden: Sequence[int] = (128, 128, 128), context_dim: int = 10,
                 dropout: float = 0.0, encoder: EncoderFactory | None = None):
        super().__init__()
        self.latent_dim, self.context_dim = latent_dim, context_dim
        heads = {"mean": latent_dim, "scale": latent_dim}
        if context_dim:
            heads["context"] = context_dim
        self.encoder = (encoder or Encoder)(in_dim, hidden, heads, dropout)
        self.flow = IAFFlow(latent_dim, n_transforms, made_hidden, context_dim)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Mean and std of the base Gaussian q(z0 | x) and the flow's context c(x)."""
        h = self.encoder(x)
        return h["mean"], positive_scale(h["scale"]), h.get("context")

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        mean, std, context = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z, ladj = self.flow(mean + std * eps, context)
        return z, diag_normal_log_prob(eps, std) - ladj

    def log_prob(self, z: Tensor, x: Tensor) -> Tensor:
        """log q(z | x) for given z (inverts the flow: sequential, for evaluation only)."""
        mean, std, context = self.encode(x)
        z0 = self.flow.inverse(z, context)
        _, ladj = self.flow(z0, context)
        return diag_normal_log_prob((z0 - mean) / std, std) - ladj

    def summary(self, x: Tensor) -> Tensor:
        """f(mean(x)): the flow applied to the base mean."""
        mean, _, context = self.encode(x)
        return self.flow(mean, context)[0]
