"""AEVB (Kingma & Welling 2013): the weighted ELBO, the paper's baseline objective.

AEVB-IAF, H-AEVB and PIS are this objective with another posterior family (an inverse
autoregressive flow, a hierarchical posterior, a path integral sampler; see
``ddvi.methods.METHOD_TABLE``): each family's ``log_q`` turns the same loss into its bound
(the auxiliary-variable bound for H-AEVB, the path-space bound for PIS).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ddvi.methods.base import Held, Method, StepContext, linear_warmup
from ddvi.methods.wake_sleep import WakeSleep


@dataclass
class ElboObjective:
    """The weighted negative ELBO, per example:

        -[log p(x|z) + beta(epoch) * (prior_weight * log p(z) - log_q)]

    with beta ramped linearly from 0 to ``beta_reg`` over the first ``warmup_fraction`` of the
    epochs. The paper (appendix H) ramps it over 80% and multiplies the prior density by 5;
    beta_reg = prior_weight = 1 without warm-up is the plain negative ELBO.
    """

    beta_reg: float = 1.0
    prior_weight: float = 1.0
    warmup_fraction: float = 0.0

    def beta(self, ctx: StepContext) -> float:
        """The KL weight at ``ctx.epoch``."""
        return linear_warmup(self.beta_reg, ctx.epoch, ctx.epochs, self.warmup_fraction)

    def loss_terms(self, t: dict[str, Tensor], ctx: StepContext, *, entropy: Tensor | None = None,
                   extra: Tensor | None = None) -> dict[str, Tensor]:
        """``loss`` (the batch mean of the loss above) and the batch means of ``rec``, ``reg``
        and ``elbo``, from the per-example terms ``t`` of ``Method.elbo_terms``. A wrapper's
        additions: ``entropy`` of a discrete posterior q(l|x), weighted like ``-log_q``, and
        ``extra``, a per-example term added to the bound unweighted."""
        reg = self.prior_weight * t["log_prior"]
        if entropy is not None:
            reg = reg + entropy
        reg = reg - t["log_q"]
        gain = t["rec"] + self.beta(ctx) * reg
        if extra is not None:
            gain = gain + extra
        return {"loss": -gain.mean(), "rec": t["rec"].mean(), "reg": reg.mean(),
                "elbo": t["elbo"].mean()}


class AEVB(Method):
    """Trains its posterior and the generative model by an :class:`ElboObjective` (``objective``,
    whose weights are also this object's ``beta_reg``, ``prior_weight``, ``warmup_fraction``)."""

    name = "aevb"
    wake_sleep: WakeSleep | None = None  # no sleep phase (DDVI has one)
    beta_reg, prior_weight, warmup_fraction = Held("objective"), Held("objective"), Held("objective")

    def __init__(self, *args, beta_reg: float = 1.0, prior_weight: float = 1.0,
                 warmup_fraction: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective = ElboObjective(beta_reg, prior_weight, warmup_fraction)

    def loss_terms(self, x: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        return self.objective.loss_terms(self.elbo_terms(x, ctx.generator), ctx)
