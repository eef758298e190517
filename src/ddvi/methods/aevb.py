"""AEVB (Kingma & Welling 2013) with a Gaussian posterior, as the paper's baseline."""

from __future__ import annotations

import torch
from torch import Tensor

from ddvi.methods.base import Method, StepContext, linear_warmup


class AEVB(Method):
    """Loss per example: -[log p(x|z) + beta(epoch) * (prior_weight * log p(z) - log q(z|x))].

    The paper (appendix H) ramps beta linearly from 0 over the first 80% of the epochs and
    multiplies the prior density by 5; beta = prior_weight = 1 is the plain negative ELBO.
    """

    name = "aevb"

    def __init__(self, *args, beta_reg: float = 1.0, prior_weight: float = 1.0,
                 warmup_fraction: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.beta_reg, self.prior_weight = beta_reg, prior_weight
        self.warmup_fraction = warmup_fraction

    def training_step(self, x: Tensor, optimizer: torch.optim.Optimizer,
                      ctx: StepContext) -> dict[str, Tensor]:
        t = self.elbo_terms(x, ctx.generator)
        beta = linear_warmup(self.beta_reg, ctx.epoch, ctx.epochs, self.warmup_fraction)
        reg = self.prior_weight * t["log_prior"] - t["log_q"]
        loss = -(t["rec"] + beta * reg).mean()
        self._step(optimizer, loss)
        return {"loss": loss.detach(), "rec": t["rec"].mean().detach(),
                "reg": reg.mean().detach(), "elbo": t["elbo"].mean().detach()}
