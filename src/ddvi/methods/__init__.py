"""Methods by name, and the paper's default weights for each (appendix H)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ddvi.likelihoods import get_likelihood
from ddvi.methods.aevb import AEVB
from ddvi.methods.base import Method, StepContext
from ddvi.methods.ddvi import DDVI, SLEEP_MODES
from ddvi.nets import mlp
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.posteriors.gaussian import GaussianPosterior
from ddvi.priors import get_prior

METHODS = ("aevb", "ddvi")

# The paper states KL weights relative to a per-pixel *mean* reconstruction; in nats per example
# (reconstruction summed over the n_features) the same objective has beta = weight * n_features.
PAPER_KL_WEIGHT = {"aevb": 0.01, "ddvi": 0.003}
PAPER_PRIOR_WEIGHT = {"aevb": 5.0}


def build_method(method: str, n_features: int, *, prior: str = "pinwheel",
                 likelihood: str = "bernoulli", latent_dim: int = 2,
                 hidden: Sequence[int] = (1000, 1000), beta_reg: float | None = None,
                 prior_weight: float | None = None, sleep: str = "full", timesteps: int = 20,
                 schedule: str = "linear", beta_diff: float = 1.0, sleep_steps: int = 1,
                 fantasy: str = "sample", context_dim: int | None = None,
                 denoiser_hidden: int = 128, dropout: float = 0.0,
                 prior_options: dict[str, Any] | None = None) -> Method:
    """Assemble prior, decoder, likelihood and posterior into the named method."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    p = get_prior(prior, **(prior_options or {}))
    if p.dim != latent_dim:
        raise ValueError(f"prior {prior!r} is {p.dim}-dimensional but latent_dim={latent_dim}")
    lik = get_likelihood(likelihood, n_features)
    decoder = mlp(latent_dim, hidden, n_features, dropout)
    if beta_reg is None:
        beta_reg = PAPER_KL_WEIGHT[method] * n_features
    if method == "aevb":
        q = GaussianPosterior(n_features, latent_dim, hidden, dropout)
        pw = PAPER_PRIOR_WEIGHT["aevb"] if prior_weight is None else prior_weight
        return AEVB(p, lik, decoder, q, beta_reg=beta_reg, prior_weight=pw, warmup_fraction=0.8)
    if sleep not in SLEEP_MODES:
        raise ValueError(f"unknown sleep mode {sleep!r}; choose one of {SLEEP_MODES}")
    if context_dim is None:
        context_dim = 0 if sleep == "latent" else 10
    q = DiffusionPosterior(n_features, latent_dim, hidden, timesteps, schedule, context_dim,
                           denoiser_hidden, dropout=dropout)
    return DDVI(p, lik, decoder, q, sleep=sleep, beta_reg=beta_reg, beta_diff=beta_diff,
                sleep_steps=sleep_steps, fantasy=fantasy)


__all__ = ["AEVB", "DDVI", "METHODS", "Method", "StepContext", "build_method"]
