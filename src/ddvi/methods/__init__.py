"""Methods by name, and the paper's default weights for each (appendix H)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ddvi.convnets import ARCHS, CONV_HIDDEN, architecture
from ddvi.likelihoods import get_likelihood
from ddvi.methods.aaeb import AAEB
from ddvi.methods.aevb import AEVB
from ddvi.methods.aevb_iaf import AEVBIAF
from ddvi.methods.base import Method, StepContext
from ddvi.methods.ddvi import DDVI, SLEEP_MODES
from ddvi.methods.h_aevb import HAEVB
from ddvi.methods.pis import PIS
from ddvi.posteriors.deterministic import DeterministicPosterior
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.posteriors.gaussian import GaussianPosterior
from ddvi.posteriors.hierarchical import HierarchicalPosterior
from ddvi.posteriors.iaf import IAFPosterior
from ddvi.posteriors.pis import PISPosterior
from ddvi.priors import Prior, get_prior

METHODS = ("aevb", "aevb-iaf", "aaeb", "h-aevb", "pis", "ddvi")

# The paper states KL weights relative to a per-pixel *mean* reconstruction; in nats per example
# (reconstruction summed over the n_features) the same objective has beta = weight * n_features.
# AEVB-IAF uses AEVB's weights (appendix H); the paper gives none for H-AEVB and PIS, which use them too.
PAPER_KL_WEIGHT = {"aevb": 0.01, "aevb-iaf": 0.01, "h-aevb": 0.01, "pis": 0.01, "ddvi": 0.003}
PAPER_PRIOR_WEIGHT = 5.0
PAPER_LR = {"aaeb": 2e-4}
_ELBO_BASELINES = {"aevb": AEVB, "aevb-iaf": AEVBIAF, "h-aevb": HAEVB, "pis": PIS}


def build_method(method: str, n_features: int, *, prior: str | Prior = "pinwheel",
                 likelihood: str = "bernoulli", latent_dim: int = 2,
                 hidden: Sequence[int] | None = None, beta_reg: float | None = None,
                 prior_weight: float | None = None, sleep: str = "none", timesteps: int = 20,
                 schedule: str = "linear", beta_diff: float = 1.0, sleep_steps: int = 1,
                 fantasy: str = "sample", context_dim: int | None = None,
                 denoiser_hidden: int = 128, dropout: float = 0.0,
                 prior_options: dict[str, Any] | None = None, arch: str = "mlp",
                 beta_start: float | None = None, beta_end: float | None = None,
                 denoiser_layers: int = 5, learn_variance: bool = True) -> Method:
    """Assemble prior, decoder, likelihood and posterior into the named method.

    ``arch``: ``"mlp"`` (MLP encoders and decoder, any data) or ``"conv"`` (the paper's CIFAR-10
    networks, for flattened 32x32 images with 1-3 channels, HWC order): every network that reads
    x (the posterior's encoder with all its heads, i.e. also the context of DDVI's denoiser, of
    the IAF/H-AEVB flows and of PIS's drift, and AAEB's deterministic encoder) is a
    :class:`ddvi.convnets.ConvEncoder`, the decoder a :class:`ddvi.convnets.ConvDecoder`.
    ``hidden``: the encoders' (and the MLP decoder's) hidden widths; by default (1000, 1000) for
    ``"mlp"`` and, as in the paper, (1000,) after the conv trunk for ``"conv"``.
    DDVI's chain: ``timesteps`` T, ``schedule`` (linear | geometric | cosine) with end points ``beta_start``,
    ``beta_end`` (defaults in :func:`ddvi.diffusion.make_betas`; every beta_t <= 0.5), a denoiser of
    ``denoiser_layers`` x ``denoiser_hidden`` units and, with ``learn_variance``, learned step
    variances. ``prior``: a name for :func:`ddvi.priors.get_prior` (with ``prior_options``), or a
    :class:`ddvi.priors.Prior` used as it is (e.g. a :class:`ddvi.priors.SamplesPrior`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    encoder, make_decoder = architecture(arch, n_features)
    if hidden is None:
        hidden = CONV_HIDDEN if arch == "conv" else (1000, 1000)
    if isinstance(prior, Prior) and prior_options:
        raise ValueError("prior_options apply to a prior given by name, not to a Prior instance")
    p = prior if isinstance(prior, Prior) else get_prior(prior, **(prior_options or {}))
    if p.dim != latent_dim:
        name = prior if isinstance(prior, str) else p.name
        raise ValueError(f"prior {name!r} is {p.dim}-dimensional but latent_dim={latent_dim}")
    lik = get_likelihood(likelihood, n_features)
    decoder = make_decoder(latent_dim, hidden, n_features, dropout)
    if method == "aaeb":
        return AAEB(p, lik, decoder, DeterministicPosterior(n_features, latent_dim, hidden, dropout,
                                                            encoder=encoder))
    if beta_reg is None:
        beta_reg = PAPER_KL_WEIGHT[method] * n_features
    if method in _ELBO_BASELINES:
        ctx = 10 if context_dim is None else context_dim
        if method == "aevb":
            q = GaussianPosterior(n_features, latent_dim, hidden, dropout, encoder=encoder)
        elif method == "aevb-iaf":
            q = IAFPosterior(n_features, latent_dim, hidden, context_dim=ctx, dropout=dropout,
                             encoder=encoder)
        elif method == "h-aevb":
            q = HierarchicalPosterior(n_features, latent_dim, hidden, context_dim=ctx, dropout=dropout,
                                      encoder=encoder)
        else:
            q = PISPosterior(n_features, latent_dim, hidden, timesteps, context_dim=ctx,
                             drift_hidden=denoiser_hidden, dropout=dropout, encoder=encoder)
        pw = PAPER_PRIOR_WEIGHT if prior_weight is None else prior_weight
        return _ELBO_BASELINES[method](p, lik, decoder, q, beta_reg=beta_reg, prior_weight=pw,
                                       warmup_fraction=0.8)
    if sleep not in SLEEP_MODES:
        raise ValueError(f"unknown sleep mode {sleep!r}; choose one of {SLEEP_MODES}")
    if context_dim is None:
        context_dim = 0 if sleep == "latent" else 10
    q = DiffusionPosterior(n_features, latent_dim, hidden, timesteps=timesteps, schedule=schedule,
                           context_dim=context_dim, denoiser_hidden=denoiser_hidden,
                           denoiser_layers=denoiser_layers, dropout=dropout,
                           learn_variance=learn_variance, encoder=encoder, beta_start=beta_start,
                           beta_end=beta_end)
    return DDVI(p, lik, decoder, q, sleep=sleep, beta_reg=beta_reg, beta_diff=beta_diff,
                sleep_steps=sleep_steps, fantasy=fantasy)


__all__ = ["AAEB", "AEVB", "AEVBIAF", "ARCHS", "DDVI", "HAEVB", "METHODS", "PAPER_LR", "PIS", "Method",
           "StepContext", "build_method"]
