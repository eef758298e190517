"""DDVI's sleep phase as one piece: its settings (:class:`WakeSleep`) and what it needs of the
model it trains (:class:`Sleeper`). DDVI, and the semi-supervised and clustering models built on
it, add its sleep term to their wake loss.

Sleep, by ``mode``:
    "none"   no sleep term: the Markovian ELBO alone (section 3.2).
    "latent" simplified wake-sleep (appendix B): the unconditional chain learns the shape of
             latents dreamt from the prior (their chain NLL in their own standardised
             coordinates, ``DiffusionPosterior.shape_loss``); trains the denoiser only.
    "full"   wake-sleep (section 3.4, algorithm 1): phi fits z from fantasy x ~ p(x|z)
             (``Sleeper.full_sleep_loss``, mean over ``steps`` fantasy batches); phi only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from ddvi.likelihoods import Likelihood
from ddvi.methods.base import Method, adam
from ddvi.posteriors.diffusion import DiffusionPosterior

SLEEP_MODES = ("none", "latent", "full")
FANTASIES = ("sample", "mean")


class Sleeper(Protocol):
    """A model wake-sleep can train: a diffusion posterior and two ways of dreaming."""

    posterior: DiffusionPosterior

    def dream_latent(self, n: int, generator: torch.Generator | None) -> Tensor:
        """``n`` latents from the prior, as the posterior's chain produces them."""
        ...

    def full_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """L_diff (eq. 9) on ``n`` fantasies (z, x) ~ p(x, z), x detached: reaches phi only."""
        ...


def dream_shape_loss(model: Sleeper, n: int, generator: torch.Generator | None) -> Tensor:
    """The latent sleep term: the unconditional chain's NLL of ``n`` dreamt latents."""
    return model.posterior.shape_loss(model.dream_latent(n, generator), generator).mean()


def warm_up_denoiser(model: Sleeper, steps: int, batch_size: int, lr: float,
                     generator: torch.Generator | None) -> list[float]:
    """Optional warm-up (algorithm 1, line 1): ``steps`` Adam steps of the denoiser alone on
    :func:`dream_shape_loss`. Returns the loss every 100 steps."""
    opt = adam(model.posterior.denoiser.parameters(), lr)
    losses = []
    for i in range(steps):
        loss = dream_shape_loss(model, batch_size, generator)
        Method._step(opt, loss)
        if i % 100 == 0:
            losses.append(float(loss.detach()))
    return losses


@dataclass(frozen=True)
class WakeSleep:
    """The sleep settings: ``mode`` (module docstring), its weight ``beta_diff``, ``steps``
    fantasy batches per wake batch (full sleep), and the ``fantasy`` x of p(x|z) ("sample" or
    "mean")."""

    mode: str = "full"
    beta_diff: float = 1.0
    steps: int = 1
    fantasy: str = "sample"

    def __post_init__(self) -> None:
        if self.mode not in SLEEP_MODES:
            raise ValueError(f"unknown sleep mode {self.mode!r}; choose one of {SLEEP_MODES}")
        if self.fantasy not in FANTASIES:
            raise ValueError(f"fantasy must be 'sample' or 'mean', got {self.fantasy!r}")

    def fantasy_x(self, likelihood: Likelihood, out: Tensor,
                  generator: torch.Generator | None) -> Tensor:
        """The fantasy x given the decoder output ``out``: a sample of p(x|z) or its mean."""
        return likelihood.sample(out, generator) if self.fantasy == "sample" else likelihood.mean(out)

    def sleep_loss(self, model: Sleeper, n: int, generator: torch.Generator | None) -> Tensor | None:
        """The sleep term for a wake batch of ``n`` rows (None for ``"none"``)."""
        if self.mode == "latent":
            return dream_shape_loss(model, n, generator)
        if self.mode == "full":
            return sum(model.full_sleep_loss(n, generator) for _ in range(self.steps)) / self.steps
        return None

    def add_sleep(self, terms: dict[str, Tensor], model: Sleeper, n: int,
                  generator: torch.Generator | None) -> dict[str, Tensor]:
        """``terms`` (a wake ``loss`` and its parts) with the term ``sleep`` and ``loss`` +=
        ``beta_diff * sleep``. One optimizer step on the sum is algorithm 1's wake update of
        (theta, phi) and sleep update of phi (the sleep term reaches phi only); unlike two separate
        Adam steps, whose sizes Adam normalises, ``beta_diff`` is a real weight."""
        sleep = self.sleep_loss(model, n, generator)
        if sleep is not None:
            terms["sleep"] = sleep
            terms["loss"] = terms["loss"] + self.beta_diff * sleep
        return terms
