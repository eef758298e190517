"""The diffusion posterior of DDVI (paper section 3.1, appendix G).

q(y_T | x) = N(mean(x), diag std(x)^2) from the encoder, then T Gaussian reverse steps
q(y_{t-1} | y_t, x) = N(mu(y_t, t, c(x)), diag sigma_t^2) with mu given by an epsilon-predicting
denoiser; z = y_0. The step variance is either fixed (the forward process' posterior variance) or
learned (``learn_variance``, Nichol & Dhariwal 2021): log sigma^2 = v log beta_t + (1 - v) log
sigma~_t^2 with v in (0, 1) an extra (sigmoid) output of the denoiser. A learned variance keeps
the bound tight when q(z | x) is broader than the fixed variances allow (H(q), section 3.2).
The denoiser sees x through a context head c(x) of the encoder (``context_dim > 0``) or not at
all (``context_dim = 0``, simplified wake-sleep).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ddvi.diffusion import LOG_2PI, NoiseSchedule
from ddvi.nets import Denoiser, Encoder, EncoderFactory
from ddvi.posteriors.base import Posterior, diag_normal_log_prob, positive_scale


class DiffusionPosterior(Posterior):
    """Encoder to y_T plus a reverse diffusion chain to z.

    One ``encoder`` pass (see :class:`ddvi.posteriors.gaussian.GaussianPosterior`) gives the
    heads ``mean``, ``scale`` and, if ``context_dim > 0``, the denoiser's context c(x).

    Example:
        >>> q = DiffusionPosterior(4, 2, [8], timesteps=5, context_dim=3)
        >>> z, log_q = q.rsample(torch.zeros(6, 4))
        >>> z.shape, log_q.shape
        (torch.Size([6, 2]), torch.Size([6]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], timesteps: int = 20,
                 schedule: str = "linear", context_dim: int = 10, denoiser_hidden: int = 128,
                 denoiser_layers: int = 5, dropout: float = 0.0, learn_variance: bool = True,
                 encoder: EncoderFactory | None = None):
        super().__init__()
        self.latent_dim, self.context_dim = latent_dim, context_dim
        self.learn_variance = learn_variance
        heads = {"mean": latent_dim, "scale": latent_dim}
        if context_dim:
            heads["context"] = context_dim
        self.encoder = (encoder or Encoder)(in_dim, hidden, heads, dropout)
        self.schedule = NoiseSchedule(timesteps, schedule)
        self.denoiser = Denoiser(latent_dim, timesteps, denoiser_hidden, denoiser_layers,
                                 context_dim, extra_out=latent_dim if learn_variance else 0)

    @property
    def timesteps(self) -> int:
        return self.schedule.timesteps

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Mean and std of q(y_T | x) and the denoiser's context c(x) (None if unconditional)."""
        h = self.encoder(x)
        return h["mean"], positive_scale(h["scale"]), h.get("context")

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        z, log_q, _ = self.rsample_trajectory(x, generator)
        return z, log_q

    def rsample_trajectory(self, x: Tensor, generator: torch.Generator | None = None
                           ) -> tuple[Tensor, Tensor, Tensor]:
        """z, log q(y, z | x) - log r(y | z), and the trajectory ys (T+1, B, d) with ys[t] = y_t."""
        mean, std, context = self.encode(x)
        s, T, d = self.schedule, self.timesteps, self.latent_dim
        noise = torch.randn((T + 1, *mean.shape), generator=generator, device=mean.device,
                            dtype=mean.dtype)
        y = mean + std * noise[T]
        ys, log_var_sum = [y], mean.new_zeros(mean.shape[0])
        for t in range(T, 0, -1):
            eps, log_var = self.step(y, t, context)
            y = s.reverse_mean(y, eps, t) + (0.5 * log_var).exp() * noise[t - 1]
            log_var_sum = log_var_sum + log_var.sum(-1)
            ys.append(y)
        traj = torch.stack(ys[::-1])
        log_q_steps = -0.5 * (noise[:T].pow(2).sum((0, -1)) + log_var_sum + T * d * LOG_2PI)
        log_q = diag_normal_log_prob(noise[T], std) + log_q_steps
        return y, log_q - s.forward_log_prob(traj), traj

    def step(self, y: Tensor, t: int, context: Tensor | None) -> tuple[Tensor, Tensor]:
        """Noise prediction and log-variance of q(y_{t-1} | y_t, x)."""
        out = self.denoiser(y, t, context)
        s, d = self.schedule, self.latent_dim
        log_fixed = s.reverse_variance[t - 1].log()
        if not self.learn_variance:
            return out, log_fixed.expand_as(y)
        eps, v = out[:, :d], torch.sigmoid(out[:, d:])
        return eps, v * s.beta[t - 1].log() + (1 - v) * log_fixed

    @torch.no_grad()
    def summary(self, x: Tensor) -> Tensor:
        """Deterministic latent: y_T = mean(x), then the DDIM (eta = 0) reverse map."""
        y, _, context = self.encode(x)
        for t in range(self.timesteps, 0, -1):
            y = self.schedule.ddim_step(y, self.step(y, t, context)[0], t)
        return y

    def denoising_loss(self, z: Tensor, context: Tensor | None,
                       generator: torch.Generator | None = None) -> Tensor:
        """Per-row noise-prediction loss ||eps - eps_phi(y_t, t, c)||^2, t ~ U{1..T}, y_t ~ r(.|z).

        The paper's practical form of L_diff's sum of KL(r_t || q_t) (section 3.4).
        """
        t = torch.randint(1, self.timesteps + 1, (z.shape[0],), generator=generator,
                          device=z.device)
        eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        pred = self.denoiser(self.schedule.q_sample(z, t, eps), t, context)[:, :self.latent_dim]
        return (eps - pred).pow(2).sum(-1)
