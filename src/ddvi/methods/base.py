"""What every method shares: the generative model p(x, z), the ELBO, and the step interface."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ddvi.likelihoods import Likelihood
from ddvi.posteriors.base import Posterior
from ddvi.priors import Prior


def adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel where every parameter is on a device it supports (one
    kernel per parameter instead of several passes over it: about 5 ms of a 30 ms AEVB step on
    a CPU at the paper's settings); the same update rule either way."""
    params = list(params)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point()
                                 for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


@dataclass
class StepContext:
    """Where training is: ``epoch`` counts from 0; ``generator`` drives all sampling;
    ``labels`` holds the current batch's labels (-1 = unlabeled) when the task has any."""

    epoch: int
    epochs: int
    generator: torch.Generator | None = None
    labels: Tensor | None = None


def linear_warmup(weight: float, epoch: int, epochs: int, fraction: float) -> float:
    """``weight`` ramped linearly from 0 over the first ``fraction`` of the epochs."""
    ramp = int(fraction * epochs)
    return weight if ramp <= 0 else weight * min(1.0, epoch / ramp)


class Held:
    """A method attribute that reads and writes a field of a settings object the method holds,
    e.g. ``beta_reg = Held("objective")`` or ``sleep = Held("wake_sleep", "mode")``."""

    def __init__(self, holder: str, field: str | None = None):
        self.holder, self.field = holder, field

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = self.field or name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.holder), self.field)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.holder), self.field, value)


class Method(nn.Module):
    """A latent variable model p(x|z)p(z) with a posterior family and its training objective.

    Subclasses implement ``loss_terms`` (one optimizer) or ``training_step``; everything that
    evaluates a fitted model lives here. ``name`` defaults to the class's (the method table names
    the methods that share an objective class).
    """

    name: str = "method"
    has_elbo: bool = True

    def __init__(self, prior: Prior, likelihood: Likelihood, decoder: nn.Module,
                 posterior: Posterior, *, name: str | None = None):
        super().__init__()
        self.prior, self.likelihood = prior, likelihood
        self.decoder, self.posterior = decoder, posterior
        attach = getattr(posterior, "attach_model", None)
        if attach is not None:  # a posterior guided by the model's score (DDVI's chain)
            attach(self)
        if name is not None:
            self.name = name

    # ---- groups of parameters: theta (generative model) and phi (inference) ---------------
    def generative_parameters(self) -> list[nn.Parameter]:
        return [*self.decoder.parameters(), *self.likelihood.parameters(),
                *self.prior.parameters()]

    def inference_parameters(self) -> list[nn.Parameter]:
        return list(self.posterior.parameters())

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer | dict[str, torch.optim.Optimizer]:
        """One Adam over all parameters; multi-optimizer methods return a dict of named ones."""
        return adam(self.parameters(), lr)

    # ---- evaluation -------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Per-example single-sample terms of the bound, in nats:
        ``rec`` = log p(x|z), ``log_prior`` = log p(z), ``log_q`` (see Posterior), ``elbo``."""
        z, log_q = self.posterior.rsample(x, generator)
        rec = self.likelihood.log_prob(x, self.decoder(z))
        log_prior = self.prior.log_prob(z)
        return {"rec": rec, "log_prior": log_prior, "log_q": log_q,
                "elbo": rec + log_prior - log_q}

    def transform(self, x: Tensor) -> Tensor:
        return self.posterior.summary(x)

    def decode(self, z: Tensor) -> Tensor:
        """Mean of p(x | z)."""
        return self.likelihood.mean(self.decoder(z))

    def loss_terms(self, x: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        """The training loss ``loss`` of batch ``x`` (not detached) and its named parts."""
        raise NotImplementedError

    def training_step(self, x: Tensor, optimizer: Any, ctx: StepContext) -> dict[str, Tensor]:
        """One update on batch ``x`` with what ``configure_optimizer`` returned; returns detached
        named loss terms, ``loss`` among them (the trainer logs them per epoch). By default one
        optimizer step on ``loss_terms(x, ctx)["loss"]``."""
        terms = self.loss_terms(x, ctx)
        self._step(optimizer, terms["loss"])
        return {k: v.detach() for k, v in terms.items()}

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
