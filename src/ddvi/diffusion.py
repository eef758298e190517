"""Gaussian diffusion in latent space: noise schedules, the forward process r and its closed forms.

Time runs t = 1..T as in the paper; tensors are indexed by ``t - 1``. ``y_0`` is the latent and

    r(y_t | y_{t-1}) = N(sqrt(alpha_t) y_{t-1}, beta_t I),    alpha_t = 1 - beta_t,
    r(y_t | y_0)     = N(sqrt(abar_t) y_0, (1 - abar_t) I),   abar_t = prod_{s<=t} alpha_s.

N(0, I) is stationary under r, and the time reversal of the stationary chain is the same chain:
r(y_{t-1} | y_t) = N(sqrt(alpha_t) y_t, beta_t I) when y_0 ~ N(0, I). DDVI's posterior starts
there (see :mod:`ddvi.posteriors.diffusion`), so the forward process need not reach N(0, I); what
matters is conditioning: every beta_t is at most ``BETA_MAX`` = 0.5, so no step divides by a
vanishing sqrt(alpha_t).

Example:
    >>> s = NoiseSchedule(20)
    >>> float(s.beta.max()) <= BETA_MAX, round(float(s.alpha_bar[-1]), 3)
    (True, 0.009)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

SCHEDULES = ("linear", "geometric", "cosine")
BETA_MAX = 0.5
DEFAULT_BETA_START = 1e-3
LOG_2PI = math.log(2 * math.pi)


def default_beta_end(timesteps: int) -> float:
    """``min(0.5, 8 / T)``: total noise sum(beta) ~ 4 (abar_T ~ 0.01-0.02) where 0.5 allows it."""
    return min(BETA_MAX, 8.0 / timesteps)


def make_betas(timesteps: int, kind: str = "linear", beta_start: float | None = None,
               beta_end: float | None = None) -> Tensor:
    """Noise levels beta_1..beta_T (float64), each in (0, 0.5].

    ``linear``: from ``beta_start`` (default 1e-3) to ``beta_end`` (default
    :func:`default_beta_end`); T = 1 uses ``beta_end``. ``geometric``: the same end points
    (``beta_end`` default 0.5) with a constant ratio between steps, so the noise levels are
    spaced evenly on a log scale and more steps sit where the noise is small. ``cosine``:
    Nichol & Dhariwal (2021), s = 0.008, each beta capped at ``beta_end`` (default 0.5).
    Out-of-range arguments raise ``ValueError`` naming the valid range.
    """
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}")
    if kind not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {kind!r}; choose one of {SCHEDULES}")
    start = DEFAULT_BETA_START if beta_start is None else float(beta_start)
    end = (default_beta_end(timesteps) if kind == "linear" else BETA_MAX) if beta_end is None \
        else float(beta_end)
    if not 0 < end <= BETA_MAX:
        raise ValueError(f"beta_end must be in (0, {BETA_MAX}], got {end}")
    if kind in ("linear", "geometric"):
        if not 0 < start <= end:
            raise ValueError(f"beta_start must be in (0, beta_end = {end}], got {start}")
        if timesteps == 1:
            return torch.tensor([end], dtype=torch.float64)
        if kind == "geometric":
            return torch.logspace(math.log10(start), math.log10(end), timesteps, dtype=torch.float64)
        return torch.linspace(start, end, timesteps, dtype=torch.float64)
    s = 0.008
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(min=1e-6, max=end)


class NoiseSchedule(nn.Module):
    """All per-step constants of a Gaussian diffusion, as float32 buffers of length T."""

    def __init__(self, timesteps: int = 20, kind: str = "linear", beta_start: float | None = None,
                 beta_end: float | None = None):
        super().__init__()
        self.timesteps, self.kind = timesteps, kind
        beta = make_betas(timesteps, kind, beta_start, beta_end)
        alpha = 1 - beta
        abar = torch.cumprod(alpha, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        consts = {
            "beta": beta, "alpha": alpha, "alpha_bar": abar, "alpha_bar_prev": abar_prev,
            # r(y_{t-1} | y_t, y_0) = N(coef_y0 * y_0 + coef_yt * y_t, posterior_variance); 0 at t=1
            "coef_y0": beta * abar_prev.sqrt() / (1 - abar),
            "coef_yt": alpha.sqrt() * (1 - abar_prev) / (1 - abar),
            "posterior_variance": beta * (1 - abar_prev) / (1 - abar),
        }
        for name, value in consts.items():
            self.register_buffer(name, value.float(), persistent=False)
        #: (sqrt alpha_t, sqrt beta_t, log beta_t) of step t at index t - 1, as Python floats: the
        #: reverse chain's per-step scalars without a tensor operation (or a device sync) per step.
        self.step_scalars: list[tuple[float, float, float]] = [
            (math.sqrt(a), math.sqrt(b), math.log(b))
            for a, b in zip(self.alpha.double().tolist(), self.beta.double().tolist())]

    def at(self, name: str, t: Tensor | int, like: Tensor) -> Tensor:
        """Constant ``name`` at step t (int or (B,) tensor of steps in 1..T), shaped to broadcast."""
        v = getattr(self, name)
        if isinstance(t, int):
            return v[t - 1]
        return v[t - 1].view(-1, *([1] * (like.dim() - 1)))

    # ---- forward process r --------------------------------------------------------------
    def q_sample(self, y0: Tensor, t: Tensor | int, noise: Tensor) -> Tensor:
        """y_t ~ r(y_t | y_0) given the standard normal ``noise``."""
        abar = self.at("alpha_bar", t, y0)
        return abar.sqrt() * y0 + (1 - abar).sqrt() * noise

    def posterior(self, y0: Tensor, yt: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of r(y_{t-1} | y_t, y_0) (the DDPM posterior; variance 0 at t=1)."""
        mean = self.at("coef_y0", t, y0) * y0 + self.at("coef_yt", t, yt) * yt
        return mean, self.at("posterior_variance", t, y0)

    def forward_log_prob_steps(self, ys: Tensor) -> Tensor:
        """log r(y_t | y_{t-1}) for t = 1..T, shape (T, B), of a trajectory ys (T+1, B, d), ys[t]=y_t."""
        beta = self.beta.view(-1, 1, 1)
        diff = ys[1:] - (1 - beta).sqrt() * ys[:-1]
        d = ys.shape[-1]
        return -0.5 * (diff.pow(2) / beta).sum(-1) - 0.5 * d * (LOG_2PI + beta.log().squeeze(-1))

    def forward_log_prob(self, ys: Tensor) -> Tensor:
        """sum_{t=1..T} log r(y_t | y_{t-1}) for a trajectory ``ys`` of shape (T+1, B, d)."""
        return self.forward_log_prob_steps(ys).sum(0)

    def endpoint_kl(self, y0: Tensor, mean: Tensor | float = 0.0, std: Tensor | float = 1.0
                    ) -> Tensor:
        """KL(r(y_T | y_0) || N(mean, std^2)) per row, summed over dimensions."""
        abar = self.alpha_bar[-1]
        m_r, v_r = abar.sqrt() * y0, (1 - abar)
        var = torch.as_tensor(std, dtype=y0.dtype, device=y0.device).pow(2)
        return 0.5 * (var.log() - torch.log(v_r) + (v_r + (m_r - mean).pow(2)) / var - 1).sum(-1)
