"""DDVI: a diffusion posterior trained by the wake-sleep regularised ELBO (paper sections 3-4).

Wake (every variant), on data x, over theta and phi:
    L_rec + beta_reg * L_reg,   L_reg = E_q[log p(z) + sum_t log r(y_t | y_{t-1})] + H(q)
estimated on-policy by backpropagating through the T reverse steps (eq. 5-6): AEVB's objective
with prior weight 1 and no warm-up, ``log_q`` being the diffusion posterior's auxiliary term.

Sleep (:class:`~ddvi.methods.wake_sleep.WakeSleep`), added in the same optimizer step:
``"none"`` (the Markovian ELBO alone), ``"latent"`` (the unconditional chain learns the prior's
shape, appendix B) or ``"full"`` (phi fits z ~ p(z) from fantasy x ~ p(x|z), algorithm 1: L_diff
of eq. 9 with the bound's own weights, E_r[log r(y | z, x) - log q(y, z | x)] >= -log q(z | x),
every step's Gaussian KL in nats, ``DiffusionPosterior.chain_nll``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddvi.methods.aevb import AEVB
from ddvi.methods.base import Held, StepContext
from ddvi.methods.wake_sleep import SLEEP_MODES, WakeSleep, dream_shape_loss, warm_up_denoiser
from ddvi.posteriors.diffusion import DiffusionPosterior

__all__ = ["DDVI", "SLEEP_MODES"]


class DDVI(AEVB):
    """AEVB's objective on a :class:`DiffusionPosterior` plus the sleep term of ``wake_sleep``
    (whose settings are also this object's ``sleep``, ``beta_diff``, ``sleep_steps``,
    ``fantasy``). A :class:`~ddvi.methods.wake_sleep.Sleeper` that dreams from p(x, z)."""

    name = "ddvi"
    posterior: DiffusionPosterior
    wake_sleep: WakeSleep
    sleep, sleep_steps = Held("wake_sleep", "mode"), Held("wake_sleep", "steps")
    beta_diff, fantasy = Held("wake_sleep"), Held("wake_sleep")

    def __init__(self, *args, sleep: str = "full", beta_reg: float = 1.0, beta_diff: float = 1.0,
                 sleep_steps: int = 1, fantasy: str = "sample", **kwargs):
        super().__init__(*args, beta_reg=beta_reg, **kwargs)
        self.wake_sleep = WakeSleep(sleep, beta_diff, sleep_steps, fantasy)
        if sleep == "latent" and self.posterior.context_dim:
            raise ValueError("sleep='latent' fits an unconditional denoiser: use context_dim=0")

    def wake_loss(self, x: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        """The wake terms alone (past any KL warm-up)."""
        return super().loss_terms(x, StepContext(1, 1, generator))

    def loss_terms(self, x: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        return self.wake_sleep.add_sleep(super().loss_terms(x, ctx), self, x.shape[0],
                                         ctx.generator)

    # ---- the Sleeper protocol ------------------------------------------------------------------
    def dream_latent(self, n: int, generator: torch.Generator | None) -> Tensor:
        """z ~ p(z)."""
        return self.prior.sample(n, generator)[0]

    def full_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """L_diff on (z, x) ~ p(x, z): depends on phi only (the fantasy x is detached)."""
        with torch.no_grad():
            z, _ = self.prior.sample(n, generator)
            x = self.wake_sleep.fantasy_x(self.likelihood, self.decoder(z), generator)
        return self.posterior.sleep_loss(x, z, generator).mean()

    def latent_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """The unconditional chain's NLL of prior samples (appendix B)."""
        return dream_shape_loss(self, n, generator)

    def pretrain_denoiser(self, steps: int, batch_size: int, lr: float,
                          generator: torch.Generator | None = None) -> list[float]:
        """Optional warm-up (algorithm 1, line 1): fit the denoiser to the prior's shape alone
        (zero context). Off by default: it moves q(z | x) away from the encoder's Gaussian that
        DDVI starts from. Returns the loss every 100 steps."""
        return warm_up_denoiser(self, steps, batch_size, lr, generator)
