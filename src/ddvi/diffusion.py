"""Gaussian diffusion in latent space: noise schedules, the forward process r and its closed forms.

Time runs t = 1..T as in the paper; tensors are indexed by ``t - 1``. ``y_0 = z`` is the latent,
``y_T`` is (close to) N(0, I) under the forward process

    r(y_t | y_{t-1}) = N(sqrt(alpha_t) y_{t-1}, beta_t I),    alpha_t = 1 - beta_t,
    r(y_t | y_0)     = N(sqrt(abar_t) y_0, (1 - abar_t) I),   abar_t = prod_{s<=t} alpha_s.

The reverse model used by DDVI is Gaussian with fixed variance ``reverse_variance[t-1]``: the
DDPM posterior variance for t >= 2 and beta_1 for the last step (whose posterior variance is 0).

Example:
    >>> s = NoiseSchedule(20)
    >>> float(s.alpha_bar[-1].sqrt()) < 0.1
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SCHEDULES = ("linear", "cosine")
LOG_2PI = math.log(2 * math.pi)


def make_betas(timesteps: int, kind: str = "linear", beta_start: float = 1e-4,
               beta_end: float | None = None) -> Tensor:
    """Noise levels beta_1..beta_T (float64).

    ``linear``: from ``beta_start`` to ``beta_end`` (default ``min(0.999, 10 / T)``, so that the
    total noise sum(beta) ~ 5 and sqrt(abar_T) ~ 0.07 for any T: y_T is close to N(0, I), unlike
    the official 1e-4..0.02 schedule at T = 20). ``cosine``: Nichol & Dhariwal (2021), s = 0.008.
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    if kind == "linear":
        end = min(0.999, 10.0 / timesteps) if beta_end is None else beta_end
        if not 0 < beta_start <= end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {end}")
        return torch.linspace(beta_start, end, timesteps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {kind!r}; choose one of {SCHEDULES}")


class NoiseSchedule(nn.Module):
    """All per-step constants of a Gaussian diffusion, as float32 buffers of length T."""

    def __init__(self, timesteps: int = 20, kind: str = "linear", beta_start: float = 1e-4,
                 beta_end: float | None = None):
        super().__init__()
        self.timesteps, self.kind = timesteps, kind
        beta = make_betas(timesteps, kind, beta_start, beta_end)
        alpha = 1 - beta
        abar = torch.cumprod(alpha, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        post_var = beta * (1 - abar_prev) / (1 - abar)
        post_var[0] = beta[0]  # the last reverse step needs a positive variance
        consts = {
            "beta": beta, "alpha": alpha, "alpha_bar": abar, "alpha_bar_prev": abar_prev,
            "reverse_variance": post_var,
            # DDPM posterior mean r(y_{t-1} | y_t, y_0) = coef_y0 * y_0 + coef_yt * y_t
            "coef_y0": beta * abar_prev.sqrt() / (1 - abar),
            "coef_yt": alpha.sqrt() * (1 - abar_prev) / (1 - abar),
            "eps_coef": beta / (1 - abar).sqrt(),
        }
        for name, value in consts.items():
            self.register_buffer(name, value.float(), persistent=False)

    def _at(self, name: str, t: Tensor | int, like: Tensor) -> Tensor:
        """Constant ``name`` at step t (int or (B,) tensor of steps in 1..T), shaped to broadcast."""
        v = getattr(self, name)
        if isinstance(t, int):
            return v[t - 1]
        return v[t - 1].view(-1, *([1] * (like.dim() - 1)))

    # ---- forward process r --------------------------------------------------------------
    def q_sample(self, y0: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """y_t ~ r(y_t | y_0) given the standard normal ``noise``."""
        abar = self._at("alpha_bar", t, y0)
        return abar.sqrt() * y0 + (1 - abar).sqrt() * noise

    def posterior(self, y0: Tensor, yt: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of r(y_{t-1} | y_t, y_0) (the DDPM posterior; variance 0 at t=1)."""
        mean = self._at("coef_y0", t, y0) * y0 + self._at("coef_yt", t, yt) * yt
        abar, abar_prev = self._at("alpha_bar", t, y0), self._at("alpha_bar_prev", t, y0)
        var = self._at("beta", t, y0) * (1 - abar_prev) / (1 - abar)
        return mean, var

    def forward_log_prob(self, ys: Tensor) -> Tensor:
        """sum_{t=1..T} log r(y_t | y_{t-1}) for a trajectory ``ys`` of shape (T+1, B, d), ys[t]=y_t."""
        beta = self.beta.view(-1, 1, 1)
        diff = ys[1:] - (1 - beta).sqrt() * ys[:-1]
        d = ys.shape[-1]
        per_step = -0.5 * (diff.pow(2) / beta).sum(-1) - 0.5 * d * (LOG_2PI + beta.log().squeeze(-1))
        return per_step.sum(0)

    # ---- reverse model helpers ------------------------------------------------------------
    def reverse_mean(self, yt: Tensor, eps: Tensor, t: Tensor | int) -> Tensor:
        """Mean of the reverse step q(y_{t-1} | y_t) for a noise prediction ``eps``."""
        coef = self._at("eps_coef", t, yt)
        return (yt - coef * eps) / self._at("alpha", t, yt).sqrt()

    def ddim_step(self, yt: Tensor, eps: Tensor, t: Tensor | int) -> Tensor:
        """Deterministic DDIM (eta = 0) step from y_t to y_{t-1}."""
        abar, abar_prev = self._at("alpha_bar", t, yt), self._at("alpha_bar_prev", t, yt)
        y0_hat = (yt - (1 - abar).sqrt() * eps) / abar.sqrt()
        return abar_prev.sqrt() * y0_hat + (1 - abar_prev).sqrt() * eps

    def prior_endpoint_kl(self, y0: Tensor, mean: Tensor, std: Tensor) -> Tensor:
        """KL(r(y_T | y_0) || N(mean, std^2)) per row, summed over dimensions."""
        abar = self.alpha_bar[-1]
        m_r, v_r = abar.sqrt() * y0, (1 - abar)
        var = std.pow(2)
        return 0.5 * (var.log() - torch.log(v_r) + (v_r + (m_r - mean).pow(2)) / var - 1).sum(-1)
