r"""The path integral sampler (PIS, Zhang & Chen 2021) amortised as a posterior q(z | x).

A controlled diffusion started at the fixed point y_0 = 0 runs over time [0, 1] in N Euler-Maruyama
steps of size dt = 1/N:

    y_{k+1} = y_k + u(y_k, k, c(x)) dt + sigma sqrt(dt) eps_k,    eps_k ~ N(0, I),

with the drift u a time-conditioned MLP (:class:`ddvi.nets.Denoiser`) that sees x through a
context head c(x) of an encoder; z = y_N. This defines Q(y_{1:N} | x).

The bound. The reference process R is the same chain with u = 0 (Brownian motion); its end point
has density nu(z) = N(0, sigma^2 I) (variance sigma^2 N dt = sigma^2), so R(y_{1:N}) =
nu(z) r(y_{1:N-1} | z) with r the (discrete) Brownian bridge. Treating y_{1:N-1} as auxiliary
latents with the reverse model r, the auxiliary-variable bound is

    log p(x) >= E_Q[log p(x | z) + log p(z) - log Q(y_{1:N} | x) + log r(y_{1:N-1} | z)]

(it is log p(x) - KL(Q(y_{1:N} | x) || p(z | x) r(y_{1:N-1} | z)) <= log p(x)), i.e. the
:class:`Posterior` convention with

    log_q = log Q(path | x) - log r(path | z) = log Q(path | x) - log R(path) + log nu(z)
          = sum_k [log N(y_{k+1}; y_k + u_k dt, sigma^2 dt) - log N(y_{k+1}; y_k, sigma^2 dt)]
            + log nu(z).

In closed form: with y_{k+1} - y_k = u_k dt + sigma sqrt(dt) eps_k, the first density's
standardised residual is eps_k and the second's is eps_k + u_k sqrt(dt) / sigma, so each step's
log-ratio is -||eps_k||^2/2 + ||eps_k + u_k sqrt(dt)/sigma||^2/2
= u_k . eps_k sqrt(dt)/sigma + ||u_k||^2 dt / (2 sigma^2)  (the normalisers cancel).
This is the discrete Girsanov weight of PIS; the bound is exact in discrete time (no SDE limit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ddvi.nets import Denoiser, Encoder, EncoderFactory
from ddvi.posteriors.base import Posterior


class PISPosterior(Posterior):
    """Amortised path integral sampler: a learned drift steers Brownian motion from 0 to z.

    The context c(x) is the single head of ``encoder`` (see
    :class:`ddvi.posteriors.gaussian.GaussianPosterior`).

    Example:
        >>> q = PISPosterior(4, 2, [8], steps=5, context_dim=3, drift_hidden=16)
        >>> z, log_q = q.rsample(torch.zeros(6, 4))
        >>> z.shape, log_q.shape
        (torch.Size([6, 2]), torch.Size([6]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], steps: int = 20,
                 sigma: float = 1.0, context_dim: int = 10, drift_hidden: int = 128,
                 dropout: float = 0.0, encoder: EncoderFactory | None = None):
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if context_dim < 1:
            raise ValueError("PISPosterior needs context_dim >= 1 (the drift sees x only through "
                             f"the context), got {context_dim}")
        self.latent_dim, self.steps, self.sigma = latent_dim, steps, float(sigma)
        self.context_dim = context_dim
        self.encoder = (encoder or Encoder)(in_dim, hidden, {"context": context_dim}, dropout)
        self.drift = Denoiser(latent_dim, steps, drift_hidden, 5, context_dim)

    @property
    def dt(self) -> float:
        return 1.0 / self.steps

    def context(self, x: Tensor) -> Tensor:
        return self.encoder(x)["context"]

    def reference_log_prob(self, z: Tensor) -> Tensor:
        """log nu(z), nu = N(0, sigma^2 I): the end point of the zero-drift chain."""
        d = z.shape[-1]
        return (-0.5 * z.pow(2).sum(-1) / self.sigma**2
                - d * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi)))

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        z, log_q, _ = self.rsample_trajectory(x, generator)
        return z, log_q

    def rsample_trajectory(self, x: Tensor, generator: torch.Generator | None = None
                           ) -> tuple[Tensor, Tensor, Tensor]:
        """z, log_q (see the module docstring) and the path ys (N+1, B, d), ys[0] = 0, ys[N] = z."""
        c = self.context(x)
        n, d, dt, sigma = self.steps, self.latent_dim, self.dt, self.sigma
        noise = torch.randn((n, c.shape[0], d), generator=generator, device=c.device, dtype=c.dtype)
        y = c.new_zeros(c.shape[0], d)
        ys, us = [y], []
        for k in range(n):
            u = self.drift(y, k + 1, c)
            y = y + u * dt + sigma * math.sqrt(dt) * noise[k]
            ys.append(y)
            us.append(u)
        u_all = torch.stack(us)
        log_ratio = ((u_all * noise).sum((0, -1)) * (math.sqrt(dt) / sigma)
                     + u_all.pow(2).sum((0, -1)) * (dt / (2 * sigma**2)))
        return y, log_ratio + self.reference_log_prob(y), torch.stack(ys)

    @torch.no_grad()
    def summary(self, x: Tensor) -> Tensor:
        """Deterministic latent: the controlled chain with all noise set to 0."""
        c = self.context(x)
        y = c.new_zeros(c.shape[0], self.latent_dim)
        for k in range(self.steps):
            y = y + self.drift(y, k + 1, c) * self.dt
        return y
