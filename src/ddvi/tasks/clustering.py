"""Clustering with DDVI and its baselines: the two strategies of the paper's section 4.2.

(a) **Mixture prior** (:func:`build_mixture_clustering`): p(z) = (1/K) sum_k N(z; mu_k, s^2 I),
    a mixture of desired priors whose means mu_k are generative parameters theta, learned with
    the rest of the model by the method's own objective. It plugs into any method; the clusters
    are ``argmax_k`` of the mixture's component posterior p(k | z) (:func:`assign_clusters`).
    The authors' genomics runs used s = 0.125 (``tiny_gauss``) and K = 20 learned centres.

(b) **Cluster variable** (:class:`ClusterVariable`): a discrete latent k in {1..K} with weights
    pi, p(x, z, k) = p(x | z, k) p(z) pi_k. The paper writes p(c) = Dir(eps 1) for the cluster
    weights; here pi is a global parameter (softmax of logits) and the Dirichlet prior enters as
    a MAP term log Dir(pi; eps 1) / n_data per example, which keeps the bound tractable. With the
    mean-field posterior q(z | x) q(k | x) (q(z | x) any posterior family of the base method, q(k|x)
    a softmax head) the expectation over k is analytic (a sum of K terms):

        ELBO = sum_k q(k|x) [log p(x | z, k) + log pi_k - log q(k|x)] + log p(z) - log_q,

    z ~ q(z | x) one reparameterised draw shared by the K terms; ``log_q`` as in
    :class:`~ddvi.posteriors.base.Posterior` (auxiliary-variable bound for DDVI). Two ways for k
    to enter (``mode``):

    * ``"shift"`` (default; the paper's p(x | z, c)): p(x | z, k) = p(x | z + mu_k), i.e. the
      decoder sees the position u = z + mu_k; p(z) = N(0, s^2 I) is the within-cluster offset.
      Costs K decoder passes per example.
    * ``"prior"`` (GMVAE-style, one decoder pass): p(x | z, k) = p(x | z) and k moves the prior,
      p(z | k) = p0(z - mu_k), so ``log p(z)`` above becomes sum_k q(k|x) log p0(z - mu_k).

    A DDVI base keeps its sleep term: ``"latent"`` fits the unconditional denoiser to prior
    samples of the latent the posterior produces; ``"full"`` fits it to fantasies (k ~ pi,
    z ~ p(z), x ~ p(x | z, k)) and also fits q(k | x) to the fantasy's k (the sleep phase for the
    discrete latent). Both touch inference parameters only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ddvi.devices import module_device
from ddvi.methods import build_method
from ddvi.methods.aevb import AEVB
from ddvi.methods.base import Held, Method, StepContext
from ddvi.methods.wake_sleep import dream_shape_loss, warm_up_denoiser
from ddvi.nets import mlp
from ddvi.priors import MixturePrior

__all__ = ["CLUSTER_MODES", "ClusterVariable", "assign_clusters", "build_cluster_variable",
           "build_mixture_clustering", "initial_centres", "mixture_prior", "predict_clusters"]

CLUSTER_MODES = ("shift", "prior")
_LOG_PI_FLOOR = math.log(1e-6)  # the Dirichlet MAP term stops pushing below this weight


def initial_centres(n_clusters: int, dim: int = 2, spread: float = 1.0, seed: int = 0,
                    init: str = "circle") -> Tensor:
    """(K, dim) starting cluster centres: ``"circle"`` = evenly on a circle of radius ``spread``
    in the first two coordinates (others 0; dim >= 2); ``"normal"`` = seeded N(0, spread^2)."""
    if isinstance(n_clusters, bool) or int(n_clusters) != n_clusters or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters}")
    if int(dim) < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread must be finite and >= 0, got {spread}")
    k, dim = int(n_clusters), int(dim)
    if init == "circle":
        if dim < 2:
            raise ValueError("init='circle' needs dim >= 2; use init='normal'")
        angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
        centres = torch.zeros(k, dim, dtype=torch.float64)
        centres[:, 0], centres[:, 1] = spread * angle.cos(), spread * angle.sin()
    elif init == "normal":
        g = torch.Generator().manual_seed(int(seed))
        centres = spread * torch.randn(k, dim, generator=g, dtype=torch.float64)
    else:
        raise ValueError(f"init must be 'circle' or 'normal', got {init!r}")
    return centres.to(torch.get_default_dtype())


# ============================================================================ (a) mixture prior


def mixture_prior(n_clusters: int, dim: int = 2, scale: float = 0.125, spread: float = 1.0,
                  seed: int = 0, init: str = "circle") -> MixturePrior:
    """Equal-weight mixture of K isotropic N(mu_k, scale^2 I) with learnable means mu_k,
    initialised by :func:`initial_centres`."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    return MixturePrior(means=initial_centres(n_clusters, dim, spread, seed, init),
                        scales=float(scale), learn_means=True)


def _latent_dim(build_kwargs: dict[str, Any]) -> int:
    for key in ("prior", "prior_options"):
        if key in build_kwargs:
            raise ValueError(f"{key!r} is set by the clustering builder; leave it out")
    return int(build_kwargs.get("latent_dim", 2))


def build_mixture_clustering(method: str, n_features: int, n_clusters: int = 20, *,
                             scale: float = 0.125, spread: float = 1.0, seed: int = 0,
                             init: str = "circle", **build_kwargs: Any) -> Method:
    """Strategy (a): ``build_method(method, n_features, prior="gaussian", **build_kwargs)`` with
    its prior replaced by :func:`mixture_prior` (learnable means).

    The prior is the method's submodule ``prior``, so the optimizer from ``configure_optimizer``
    (built after this) trains the means with theta. Methods that only *sample* the prior (AAEB)
    give the means no gradient: they stay where :func:`initial_centres` put them.
    """
    dim = _latent_dim(build_kwargs)
    if build_kwargs.get("guidance", "auto") == "auto":  # the prior will be a mixture
        build_kwargs = {**build_kwargs, "guidance": "prior"}
    m = build_method(method, n_features, prior="gaussian", prior_options={"dim": dim}, **build_kwargs)
    m.prior = mixture_prior(n_clusters, dim, scale, spread, seed, init)
    return m


@torch.no_grad()
def assign_clusters(method: Method, z: Tensor) -> np.ndarray:
    """Cluster ids (int64, (n,)) of latents ``z``: ``argmax_k log w_k + log N(z; mu_k, Sigma_k)``
    under the method's mixture prior (strategy (a)), i.e. the MAP component p(k | z)."""
    prior = method.prior
    if not isinstance(prior, MixturePrior):
        raise ValueError(f"assign_clusters needs a MixturePrior, the method has {type(prior).__name__}"
                         " (build it with build_mixture_clustering)")
    z = torch.as_tensor(z, dtype=torch.get_default_dtype(), device=prior.device)
    return prior.component_log_probs(z).argmax(-1).cpu().numpy().astype(np.int64)


@torch.no_grad()
def predict_clusters(method: Method, x: Tensor, batch_size: int = 1024) -> np.ndarray:
    """Cluster ids of data ``x`` for either strategy: ``ClusterVariable.predict`` or
    :func:`assign_clusters` on ``method.transform(x)``. Runs in eval mode, in batches."""
    was_training = method.training
    method.eval()
    device = module_device(method)
    try:
        out = []
        for batch in x.split(batch_size):
            batch = batch.to(device)
            if isinstance(method, ClusterVariable):
                out.append(method.predict(batch))
            else:
                out.append(assign_clusters(method, method.transform(batch)))
    finally:
        method.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


# ============================================================================ (b) cluster variable


class ClusterVariable(Method):
    """Strategy (b): a categorical cluster latent k on top of a base method (module docstring).

    Shares the base's prior p(z), likelihood, decoder and posterior q(z|x), and holds its
    ``objective`` (``beta_reg``, ``prior_weight``, ``warmup_fraction``) and, for a DDVI base, its
    ``wake_sleep`` (whose dreams it draws itself: a :class:`~ddvi.methods.wake_sleep.Sleeper`).
    Adds ``cluster_head`` (x -> logits of q(k|x)),
    ``centres`` mu (K, d) and the weight logits of pi (a parameter if ``weights="learned"``,
    else a zero buffer = uniform pi).

    Loss per example (beta ramped as the base does):
        -[rec + beta * (prior_weight * log_prior - log_q) + beta_cluster * cluster]
        - log Dir(pi; eps) / n_data   (+ the DDVI base's sleep loss)
    with ``rec``, ``log_prior`` the k-expected terms of the mode and ``cluster`` = -KL(q(k|x)||pi).
    ``n_data=None`` scales the Dirichlet term by 1 / batch size.
    """

    beta_reg, prior_weight, warmup_fraction = Held("objective"), Held("objective"), Held("objective")

    def __init__(self, base: AEVB, n_clusters: int, n_features: int, *,
                 head_hidden: Sequence[int] = (1000, 1000), mode: str = "shift",
                 spread: float = 1.0, seed: int = 0, init: str = "circle", weights: str = "learned",
                 dirichlet_eps: float = 1.0, n_data: int | None = None, beta_cluster: float = 1.0):
        if not isinstance(base, AEVB):
            raise ValueError(f"the cluster variable needs an ELBO-trained base method, got {base.name!r}")
        if mode not in CLUSTER_MODES:
            raise ValueError(f"mode must be one of {CLUSTER_MODES}, got {mode!r}")
        if weights not in ("learned", "uniform"):
            raise ValueError(f"weights must be 'learned' or 'uniform', got {weights!r}")
        if not (math.isfinite(dirichlet_eps) and dirichlet_eps > 0):
            raise ValueError(f"dirichlet_eps must be > 0, got {dirichlet_eps}")
        if n_data is not None and n_data < 1:
            raise ValueError(f"n_data must be >= 1, got {n_data}")
        super().__init__(base.prior, base.likelihood, base.decoder, base.posterior,
                         name=f"{base.name}+cluster")
        self.base_name, self.mode, self.n_clusters = base.name, mode, int(n_clusters)
        self.objective, self.wake_sleep = base.objective, base.wake_sleep
        self.weights, self.dirichlet_eps, self.n_data = weights, float(dirichlet_eps), n_data
        self.beta_cluster = float(beta_cluster)
        dim = self.posterior.latent_dim
        self.cluster_head = mlp(n_features, head_hidden, self.n_clusters)
        self.centres = nn.Parameter(initial_centres(n_clusters, dim, spread, seed, init))
        logits = torch.zeros(self.n_clusters)
        if weights == "learned":
            self.weight_logits = nn.Parameter(logits)
        else:
            self.register_buffer("weight_logits", logits)

    @property
    def sleep(self) -> str:
        """The DDVI base's sleep mode ("none" for other bases)."""
        return "none" if self.wake_sleep is None else self.wake_sleep.mode

    # ---- parameter groups ----------------------------------------------------------------------
    def generative_parameters(self) -> list[nn.Parameter]:
        extra = [self.centres] + ([self.weight_logits] if self.weights == "learned" else [])
        return [*super().generative_parameters(), *extra]

    def inference_parameters(self) -> list[nn.Parameter]:
        return [*super().inference_parameters(), *self.cluster_head.parameters()]

    # ---- the model -----------------------------------------------------------------------------
    def log_weights(self) -> Tensor:
        """log pi, shape (K,)."""
        return torch.log_softmax(self.weight_logits, -1)

    def cluster_log_probs(self, x: Tensor) -> Tensor:
        """log q(k | x), shape (n, K)."""
        return torch.log_softmax(self.cluster_head(x), -1)

    def log_dirichlet(self) -> Tensor:
        """log Dir(pi; eps 1) (0 for uniform weights); log pi is floored at 1e-6 in this term."""
        eps, k = self.dirichlet_eps, self.n_clusters
        if self.weights == "uniform" or eps == 1.0:
            return self.weight_logits.new_zeros(())
        log_pi = self.log_weights().clamp(min=_LOG_PI_FLOOR)
        return math.lgamma(k * eps) - k * math.lgamma(eps) + (eps - 1) * log_pi.sum()

    def conditional_log_probs(self, x: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Per-cluster terms (n, K) ``(log p(x | z, k), log p(z | k))`` of the mode; a column
        that does not depend on k is broadcast ((n, 1))."""
        n, d = z.shape
        k = self.n_clusters
        if self.mode == "shift":
            u = (z[:, None, :] + self.centres).reshape(n * k, d)
            out = self.decoder(u)
            xk = x[:, None].expand(n, k, *x.shape[1:]).reshape(n * k, *x.shape[1:])
            rec = self.likelihood.log_prob(xk, out).view(n, k)
            return rec, self.prior.log_prob(z)[:, None]
        rec = self.likelihood.log_prob(x, self.decoder(z))[:, None]
        shifted = (z[:, None, :] - self.centres).reshape(n * k, d)
        return rec, self.prior.log_prob(shifted).view(n, k)

    def elbo_terms(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Per-example terms, k summed out analytically: ``rec`` = E_q(k)[log p(x|z,k)],
        ``log_prior`` = E_q(k)[log p(z|k)], ``log_q``, ``cluster`` = -KL(q(k|x) || pi), ``elbo``."""
        z, log_q = self.posterior.rsample(x, generator)
        log_qk = self.cluster_log_probs(x)
        qk = log_qk.exp()
        rec_k, prior_k = self.conditional_log_probs(x, z)
        rec = (qk * rec_k).sum(-1) if rec_k.shape[1] > 1 else rec_k[:, 0]
        log_prior = (qk * prior_k).sum(-1) if prior_k.shape[1] > 1 else prior_k[:, 0]
        cluster = (qk * (self.log_weights() - log_qk)).sum(-1)
        return {"rec": rec, "log_prior": log_prior, "log_q": log_q, "cluster": cluster,
                "elbo": rec + log_prior - log_q + cluster}

    # ---- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: Tensor) -> np.ndarray:
        """Cluster ids (int64, (n,)): argmax_k q(k | x)."""
        return self.cluster_log_probs(x).argmax(-1).cpu().numpy().astype(np.int64)

    @torch.no_grad()
    def transform(self, x: Tensor) -> Tensor:
        """The position the decoder reads: ``summary(x) + sum_k q(k|x) mu_k`` in ``"shift"`` mode,
        ``summary(x)`` in ``"prior"`` mode (``decode`` maps it back to x)."""
        z = self.posterior.summary(x)
        if self.mode == "shift":
            z = z + self.cluster_log_probs(x).exp() @ self.centres
        return z

    # ---- training ------------------------------------------------------------------------------
    def loss_terms(self, x: Tensor, ctx: StepContext) -> dict[str, Tensor]:
        t = self.elbo_terms(x, ctx.generator)
        terms = self.objective.loss_terms(t, ctx, extra=self.beta_cluster * t["cluster"])
        terms["loss"] = terms["loss"] - self.log_dirichlet() / (self.n_data or x.shape[0])
        terms["cluster"] = t["cluster"].mean()
        if self.wake_sleep is not None:
            self.wake_sleep.add_sleep(terms, self, x.shape[0], ctx.generator)
        return terms

    # ---- dreams (a DDVI base's sleep) ----------------------------------------------------------
    def _fantasy(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(k, z) with k ~ pi and z the posterior's latent: z ~ p(z) (shift) / p0 + mu_k (prior)."""
        probs = self.log_weights().detach().exp()
        k = torch.multinomial(probs, n, replacement=True, generator=generator).to(probs.device)
        z, _ = self.prior.sample(n, generator)
        if self.mode == "prior":
            z = z + self.centres.detach()[k]
        return k, z

    def dream_latent(self, n: int, generator: torch.Generator | None) -> Tensor:
        """Prior samples of the posterior's latent z."""
        return self._fantasy(n, generator)[1]

    def latent_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """The unconditional chain's NLL of prior samples of z (appendix B)."""
        return dream_shape_loss(self, n, generator)

    def full_sleep_loss(self, n: int, generator: torch.Generator | None) -> Tensor:
        """DDVI's L_diff on fantasies (k, z, x) ~ p plus -log q(k | x); phi only."""
        if self.wake_sleep is None:
            raise ValueError("the sleep phase needs a DDVI base")
        with torch.no_grad():
            k, z = self._fantasy(n, generator)
            u = z + self.centres[k] if self.mode == "shift" else z
            x = self.wake_sleep.fantasy_x(self.likelihood, self.decoder(u), generator)
        head = -self.cluster_log_probs(x).gather(1, k[:, None])[:, 0]
        return (self.posterior.sleep_loss(x, z, generator) + head).mean()

    def pretrain_denoiser(self, steps: int, batch_size: int, lr: float,
                          generator: torch.Generator | None = None) -> list[float]:
        """DDVI's optional denoiser warm-up on prior samples of the posterior's latent z."""
        if self.wake_sleep is None:
            raise ValueError("pretrain_denoiser needs a DDVI base")
        return warm_up_denoiser(self, steps, batch_size, lr, generator)


def build_cluster_variable(method: str, n_features: int, n_clusters: int = 20, *,
                           mode: str = "shift", scale: float = 0.125, spread: float = 1.0,
                           seed: int = 0, init: str = "circle",
                           head_hidden: Sequence[int] | None = None, weights: str = "learned",
                           dirichlet_eps: float = 1.0, n_data: int | None = None,
                           beta_cluster: float = 1.0, **build_kwargs: Any) -> ClusterVariable:
    """Strategy (b): ``build_method(method, n_features, prior="gaussian",
    prior_options={"dim": latent_dim, "std": scale}, **build_kwargs)`` wrapped in
    :class:`ClusterVariable`; ``head_hidden`` defaults to the base's ``hidden``."""
    dim = _latent_dim(build_kwargs)
    base = build_method(method, n_features, prior="gaussian",
                        prior_options={"dim": dim, "std": float(scale)}, **build_kwargs)
    if head_hidden is None:
        head_hidden = tuple(build_kwargs.get("hidden") or (1000, 1000))
    return ClusterVariable(base, n_clusters, n_features, head_hidden=head_hidden, mode=mode,
                           spread=spread, seed=seed, init=init, weights=weights,
                           dirichlet_eps=dirichlet_eps, n_data=n_data, beta_cluster=beta_cluster)
