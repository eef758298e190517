"""Methods by name: each an objective paired with a posterior family, in one table
(:data:`METHOD_TABLE`), with the paper's default weights for it (appendix H)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ddvi.config import ModelConfig
from ddvi.convnets import ARCHS, CONV_HIDDEN, architecture
from ddvi.likelihoods import get_likelihood
from ddvi.methods.aaeb import AAEB
from ddvi.methods.aevb import AEVB, ElboObjective
from ddvi.methods.base import Method, StepContext
from ddvi.methods.ddvi import DDVI
from ddvi.methods.wake_sleep import SLEEP_MODES, Sleeper, WakeSleep
from ddvi.nets import EncoderFactory
from ddvi.posteriors.base import Posterior
from ddvi.posteriors.deterministic import DeterministicPosterior
from ddvi.posteriors.diffusion import GUIDANCE, DiffusionPosterior
from ddvi.posteriors.gaussian import GaussianPosterior
from ddvi.posteriors.hierarchical import HierarchicalPosterior
from ddvi.posteriors.iaf import IAFPosterior
from ddvi.posteriors.pis import PISPosterior
from ddvi.priors import GaussianPrior, Prior, get_prior

# AEVB-IAF, H-AEVB and PIS train AEVB's objective; only their posterior family differs (their
# former class names stay as aliases; build_method gives the model its method's name).
AEVBIAF = HAEVB = PIS = AEVB

GUIDANCE_CHOICES = ("auto", *GUIDANCE)
PAPER_PRIOR_WEIGHT = 5.0
PAPER_LR = {"aaeb": 2e-4}


@dataclass(frozen=True)
class PosteriorArgs:
    """What a posterior family is built from (``build_method``'s arguments): the encoder network,
    the context for flows, drifts and denoisers (None = the family's default), DDVI's chain."""

    n_features: int
    latent_dim: int
    hidden: Sequence[int]
    dropout: float
    encoder: EncoderFactory
    context_dim: int | None = None
    timesteps: int = 20
    schedule: str = "linear"
    denoiser_hidden: int = 128
    denoiser_layers: int = 5
    learn_variance: bool = True
    beta_start: float | None = None
    beta_end: float | None = None
    guidance: str = "none"  # resolved: none | prior | joint
    sleep: str = "none"

    def context(self, default: int = 10) -> int:
        return default if self.context_dim is None else self.context_dim


def _encoder_args(a: PosteriorArgs) -> dict[str, Any]:
    """The keyword arguments every posterior family takes: input and latent sizes, encoder."""
    return {"in_dim": a.n_features, "latent_dim": a.latent_dim, "hidden": a.hidden,
            "dropout": a.dropout, "encoder": a.encoder}


def gaussian_posterior(a: PosteriorArgs) -> Posterior:
    return GaussianPosterior(**_encoder_args(a))


def iaf_posterior(a: PosteriorArgs) -> Posterior:
    return IAFPosterior(**_encoder_args(a), context_dim=a.context())


def hierarchical_posterior(a: PosteriorArgs) -> Posterior:
    return HierarchicalPosterior(**_encoder_args(a), context_dim=a.context())


def pis_posterior(a: PosteriorArgs) -> Posterior:
    return PISPosterior(**_encoder_args(a), steps=a.timesteps, context_dim=a.context(),
                        drift_hidden=a.denoiser_hidden)


def deterministic_posterior(a: PosteriorArgs) -> Posterior:
    return DeterministicPosterior(**_encoder_args(a))


def diffusion_posterior(a: PosteriorArgs) -> Posterior:
    """Context 10 by default, 0 for the latent sleep (an unconditional denoiser)."""
    return DiffusionPosterior(**_encoder_args(a), timesteps=a.timesteps, schedule=a.schedule,
                              context_dim=a.context(0 if a.sleep == "latent" else 10),
                              denoiser_hidden=a.denoiser_hidden, denoiser_layers=a.denoiser_layers,
                              learn_variance=a.learn_variance, beta_start=a.beta_start,
                              beta_end=a.beta_end, guidance=a.guidance)


@dataclass(frozen=True)
class MethodSpec:
    """One method: the objective (the :class:`Method` subclass that trains it), the factory of
    the posterior family it trains, and the objective's defaults: the paper's per-pixel KL weight
    (``beta_reg = kl_weight * n_features``), prior weight and KL warm-up (AEVB's objective;
    None: fixed at 1, no warm-up); ``wake_sleep``: the objective takes DDVI's sleep settings."""

    objective: type[Method]
    posterior: Callable[[PosteriorArgs], Posterior]
    kl_weight: float | None = None
    prior_weight: float | None = None
    warmup_fraction: float = 0.0
    wake_sleep: bool = False

    def settings(self, n_features: int, beta_reg: float | None, prior_weight: float | None,
                 **wake_sleep: Any) -> dict[str, Any]:
        """The objective's keyword arguments: the given weights, else the defaults, and (for a
        ``wake_sleep`` objective) the sleep settings ``wake_sleep``."""
        out: dict[str, Any] = {}
        if self.kl_weight is not None:
            out["beta_reg"] = self.kl_weight * n_features if beta_reg is None else beta_reg
        if self.prior_weight is not None:
            out["prior_weight"] = self.prior_weight if prior_weight is None else prior_weight
            out["warmup_fraction"] = self.warmup_fraction
        return out | (wake_sleep if self.wake_sleep else {})


# The paper states KL weights relative to a per-pixel *mean* reconstruction; in nats per example
# (reconstruction summed over the n_features) the same objective has beta = weight * n_features.
# It gives AEVB-IAF AEVB's weights (appendix H), and none for H-AEVB and PIS, which use them too:
# H-AEVB's log_q = log q(a|x) + log q(z|a,x) - log r(a|z,x) and PIS's path-space term make
# AEVB's loss their bounds.
_AEVB_WEIGHTS = {"kl_weight": 0.01, "prior_weight": PAPER_PRIOR_WEIGHT, "warmup_fraction": 0.8}
METHOD_TABLE: dict[str, MethodSpec] = {
    "aevb": MethodSpec(AEVB, gaussian_posterior, **_AEVB_WEIGHTS),
    "aevb-iaf": MethodSpec(AEVB, iaf_posterior, **_AEVB_WEIGHTS),
    "aaeb": MethodSpec(AAEB, deterministic_posterior),
    "h-aevb": MethodSpec(AEVB, hierarchical_posterior, **_AEVB_WEIGHTS),
    "pis": MethodSpec(AEVB, pis_posterior, **_AEVB_WEIGHTS),
    "ddvi": MethodSpec(DDVI, diffusion_posterior, kl_weight=0.003, wake_sleep=True),
}
METHODS = tuple(METHOD_TABLE)
PAPER_KL_WEIGHT = {name: spec.kl_weight for name, spec in METHOD_TABLE.items()
                   if spec.kl_weight is not None}


def build_method(method: str | ModelConfig, n_features: int, *, prior: str | Prior | None = None,
                 **settings: Any) -> Method:
    """Assemble prior, decoder, likelihood and the method's posterior family and objective
    (its row of :data:`METHOD_TABLE`) from a :class:`~ddvi.config.ModelConfig`; settings a
    method does not use are ignored.

    ``method``: the config, or a method's name with the settings as flat keywords (the names of
    :data:`ddvi.config.FLAT_KEYS`, e.g. ``build_method("ddvi", 784, hidden=(64,),
    timesteps=10)``); keywords given with a config replace its fields. ``prior``: a name (with
    ``prior_options``), or a :class:`ddvi.priors.Prior` used as it is (e.g. a
    :class:`ddvi.priors.SamplesPrior`) in place of the config's.

    ``arch``: ``"mlp"`` (MLP encoders and decoder, any data) or ``"conv"`` (the paper's CIFAR-10
    networks, for flattened 32x32 images with 1-3 channels, HWC order): every network that reads
    x (the posterior's encoder with all its heads, i.e. also the context of DDVI's denoiser, of
    the IAF/H-AEVB flows and of PIS's drift, and AAEB's deterministic encoder) is a
    :class:`ddvi.convnets.ConvEncoder`, the decoder a :class:`ddvi.convnets.ConvDecoder`.
    ``hidden``: the encoders' (and the MLP decoder's) hidden widths; by default (1000, 1000) for
    ``"mlp"`` and, as in the paper, (1000,) after the conv trunk for ``"conv"``.
    DDVI's chain: ``timesteps`` T, ``schedule`` (linear | geometric | cosine) with end points
    ``beta_start``, ``beta_end`` (defaults in :func:`ddvi.diffusion.make_betas`; every
    beta_t <= 0.5), a denoiser of ``denoiser_layers`` x ``denoiser_hidden`` units and, with
    ``learn_variance``, learned step variances; ``guidance`` (auto | none | prior | joint, see
    :func:`resolve_guidance`): the model's score that the denoiser sees at each step.
    """
    instance = prior if isinstance(prior, Prior) else None
    if isinstance(prior, str):
        settings["prior"] = prior
    if isinstance(method, ModelConfig):
        config = method.replace(**settings) if settings else method
    else:
        config = ModelConfig.from_flat(method=method, **settings)
    return _build(config, n_features, instance)


def resolve_guidance(guidance: str, prior: Prior) -> str:
    """``"auto"``: ``"prior"``, unless the prior is Gaussian, whose score -z / std^2 is affine in
    the chain's u and adds nothing the denoiser does not see (measured: it only slowed the
    bimodal toy's chain, benchmarks/RESULTS.md); other values are returned as they are."""
    if guidance not in GUIDANCE_CHOICES:
        raise ValueError(f"unknown guidance {guidance!r}; choose one of {GUIDANCE_CHOICES}")
    if guidance != "auto":
        return guidance
    return "none" if isinstance(prior, GaussianPrior) else "prior"


def _build(config: ModelConfig, n_features: int, prior: Prior | None) -> Method:
    method, net, chain, obj = config.method, config.network, config.diffusion, config.objective
    if method not in METHOD_TABLE:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    spec = METHOD_TABLE[method]
    encoder, make_decoder = architecture(net.arch, n_features)
    hidden = net.hidden
    if hidden is None:
        hidden = CONV_HIDDEN if net.arch == "conv" else (1000, 1000)
    if prior is not None and config.prior_options:
        raise ValueError("prior_options apply to a prior given by name, not to a Prior instance")
    p = prior if prior is not None else get_prior(config.prior, **(config.prior_options or {}))
    if p.dim != config.latent_dim:
        name = config.prior if prior is None else p.name
        raise ValueError(f"prior {name!r} is {p.dim}-dimensional but "
                         f"latent_dim={config.latent_dim}")
    lik = get_likelihood(config.likelihood, n_features)
    decoder = make_decoder(config.latent_dim, hidden, n_features, net.dropout)
    q = spec.posterior(PosteriorArgs(
        n_features=n_features, latent_dim=config.latent_dim, hidden=hidden, dropout=net.dropout,
        encoder=encoder, context_dim=net.context_dim, timesteps=chain.timesteps,
        schedule=chain.schedule, denoiser_hidden=net.denoiser_hidden,
        denoiser_layers=net.denoiser_layers, learn_variance=chain.learn_variance,
        beta_start=chain.beta_start, beta_end=chain.beta_end,
        guidance=resolve_guidance(chain.guidance, p), sleep=obj.sleep))
    settings = spec.settings(n_features, obj.beta_reg, obj.prior_weight, sleep=obj.sleep,
                             beta_diff=obj.beta_diff, sleep_steps=obj.sleep_steps,
                             fantasy=obj.fantasy)
    return spec.objective(p, lik, decoder, q, name=method, **settings)


__all__ = ["AAEB", "AEVB", "AEVBIAF", "ARCHS", "DDVI", "HAEVB", "METHODS", "METHOD_TABLE",
           "GUIDANCE_CHOICES", "PAPER_KL_WEIGHT", "PAPER_LR", "PAPER_PRIOR_WEIGHT", "PIS", "SLEEP_MODES",
           "ElboObjective", "Method", "MethodSpec", "ModelConfig", "PosteriorArgs", "Sleeper", "StepContext",
           "WakeSleep", "build_method", "resolve_guidance"]
