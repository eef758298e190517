"""DDVI: a diffusion posterior trained by the wake-sleep regularised ELBO (paper sections 3-4).

Wake (every variant), on data x, over theta and phi:
    L_rec + beta_reg * L_reg,   L_reg = E_q[log p(z) + sum_t log r(y_t | y_{t-1})] + H(q)
estimated on-policy by backpropagating through the T reverse steps (eq. 5-6).

Sleep, by ``sleep``:
    "none"   unregularised DDVI: the Markovian ELBO alone (section 3.2).
    "latent" simplified wake-sleep (appendix B): z ~ p(z), y ~ r(y|z); the unconditional chain
             learns the prior's shape (its chain NLL on prior samples in their own standardised
             coordinates), added to the wake loss in one step.
    "full"   wake-sleep (section 3.4, algorithm 1): phi also fits z ~ p(z) from fantasy x ~ p(x|z)
             (``sleep_steps`` fantasy batches, in the wake's optimizer step): L_diff of eq. 9 with
             the bound's own weights, E_r[log r(y | z, x) - log q(y, z | x)] >= -log q(z | x),
             every step's Gaussian KL (mean and variance) in nats (``DiffusionPosterior.chain_nll``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ddvi.methods.base import Method, StepContext, adam
from ddvi.posteriors.diffusion import DiffusionPosterior

SLEEP_MODES = ("none", "latent", "full")


class DDVI(Method):
    name = "ddvi"
    posterior: DiffusionPosterior

    def __init__(self, *args, sleep: str = "full", beta_reg: float = 1.0, beta_diff: float = 1.0,
                 sleep_steps: int = 1, fantasy: str = "sample", **kwargs):
        super().__init__(*args, **kwargs)
        if sleep not in SLEEP_MODES:
            raise ValueError(f"unknown sleep mode {sleep!r}; choose one of {SLEEP_MODES}")
        if fantasy not in ("sample", "mean"):
            raise ValueError(f"fantasy must be 'sample' or 'mean', got {fantasy!r}")
        if sleep == "latent" and self.posterior.context_dim:
            raise ValueError("sleep='latent' fits an unconditional denoiser: use context_dim=0")
        self.sleep, self.beta_reg, self.beta_diff = sleep, beta_reg, beta_diff
        self.sleep_steps, self.fantasy = sleep_steps, fantasy

    def wake_loss(self, x: Tensor, generator: torch.Generator | None) -> dict[str, Tensor]:
        t = self.elbo_terms(x, generator)
        reg = t["log_prior"] - t["log_q"]
        return {"loss": -(t["rec"] + self.beta_reg * reg).mean(), "rec": t["rec"].mean(),
                "reg": reg.mean(), "elbo": t["elbo"].mean()}

    def latent_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """The unconditional chain's NLL of prior samples (appendix B)."""
        z, _ = self.prior.sample(n, generator)
        return self.posterior.shape_loss(z, generator).mean()

    def full_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """L_diff on (z, x) ~ p(x, z): depends on phi only (the fantasy x is detached)."""
        with torch.no_grad():
            z, _ = self.prior.sample(n, generator)
            out = self.decoder(z)
            x = self.likelihood.sample(out, generator) if self.fantasy == "sample" \
                else self.likelihood.mean(out)
        return self.posterior.sleep_loss(x, z, generator).mean()

    def training_step(self, x: Tensor, optimizer: torch.optim.Optimizer,
                      ctx: StepContext) -> dict[str, Tensor]:
        return wake_sleep_step(self, self.wake_loss(x, ctx.generator), x.shape[0], optimizer,
                               ctx.generator)

    def pretrain_denoiser(self, steps: int, batch_size: int, lr: float,
                          generator: torch.Generator | None = None) -> list[float]:
        """Optional warm-up (algorithm 1, line 1): fit the denoiser to the prior's shape alone
        (``DiffusionPosterior.shape_loss``, zero context). Off by default: it moves q(z | x)
        away from the encoder's Gaussian that DDVI starts from. Returns the loss every 100 steps."""
        return pretrain_shape(self, lambda: self.prior.sample(batch_size, generator)[0], steps, lr,
                              generator)


def pretrain_shape(method: Method, sample_z: Callable[[], Tensor], steps: int, lr: float,
                   generator: torch.Generator | None) -> list[float]:
    """Fit ``method.posterior.denoiser`` to batches from ``sample_z()`` by the chain's shape loss."""
    opt = adam(method.posterior.denoiser.parameters(), lr)
    losses = []
    for i in range(steps):
        loss = method.posterior.shape_loss(sample_z(), generator).mean()
        method._step(opt, loss)
        if i % 100 == 0:
            losses.append(float(loss.detach()))
    return losses


def wake_sleep_step(method: Method, terms: dict[str, Tensor], n: int, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator | None) -> dict[str, Tensor]:
    """DDVI's update for a method with ``sleep``, ``beta_diff``, ``sleep_steps`` and
    ``latent_sleep_loss``/``full_sleep_loss``: one optimizer step on the wake loss
    ``terms["loss"]`` plus ``beta_diff`` times the sleep term (for ``"full"`` the mean over
    ``sleep_steps`` fantasy batches). The full sleep term reaches only phi (its fantasy x is
    detached), so this is algorithm 1's wake update of (theta, phi) and sleep update of phi in
    one step; unlike two separate Adam steps, whose sizes Adam normalises, ``beta_diff`` is a
    real weight. Returns the detached terms."""
    loss = terms["loss"]
    if method.sleep == "latent":
        terms["sleep"] = method.latent_sleep_loss(n, generator)
    elif method.sleep == "full":
        terms["sleep"] = sum(method.full_sleep_loss(n, generator)
                             for _ in range(method.sleep_steps)) / method.sleep_steps
    if "sleep" in terms:
        loss = loss + method.beta_diff * terms["sleep"]
    method._step(optimizer, loss)
    terms["loss"] = loss
    return {k: v.detach() for k, v in terms.items()}
