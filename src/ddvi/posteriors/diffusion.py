"""The diffusion posterior of DDVI (paper section 3.1, appendix G), in standardised coordinates.

The encoder gives mean(x), std(x) and a context c(x). The chain runs on u = (z - mean(x)) / std(x):

    q(u_T | x) = N(0, I),
    q(u_{t-1} | u_t, x) = N(sqrt(alpha_t) u_t + sqrt(beta_t) m(u_t, t, c),  beta_t exp(v(u_t, t, c))),
    z = mean(x) + std(x) * u_0,

with the auxiliary reverse model r(u_{1:T} | u_0) the forward process of
:class:`ddvi.diffusion.NoiseSchedule` in u-space, i.e. r(y | z, x) with y_t = mean + std * u_t.
The denoiser's outputs m and v are residuals whose last layer starts at zero. With m = v = 0 the
chain is the time reversal of the stationary forward process, so q(u_{0:T}) = N(u_0; 0, I)
r(u_{1:T} | u_0) exactly: q(z | x) is the encoder's Gaussian N(mean, std^2) and
log q(y, z | x) - log r(y | z, x) = log N(z; mean, std^2). DDVI therefore contains AEVB: at
initialisation its bound is AEVB's, and training the residuals can only add to the family (as
an IAF's identity initialisation). ``learn_variance=False`` keeps v = 0.

The denoiser sees x through the context c(x) (``context_dim > 0``) or not at all
(``context_dim = 0``, the simplified wake-sleep of appendix B).

Guidance. With ``guidance="prior"`` (``"joint"``) the denoiser also sees, at every step, the
model's own score at the chain's current point in u-space, asinh(std(x) grad_z log p(z)) (with
``"joint"``: of log p(x | z) + log p(z)) at z = mean(x) + std(x) u_t, as Langevin-type samplers
do. The chain then need not learn the prior's shape anew for every x: on a structured prior's
thin arms this is what lets the amortised chain help (benchmarks/RESULTS.md). The score is an
input of the chain like u_t, so the bound keeps its form (the step densities are evaluated at the
sampled path); its gradient is not propagated through the score (no second derivatives of the
prior's density, whose tabulated score is discontinuous), so the training gradient treats the
score as a constant input. ``"prior"`` costs one prior density gradient per step; ``"joint"``
also a decoder pass per step. The model is given by :meth:`DiffusionPosterior.attach_model`
(every :class:`ddvi.methods.Method` does it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ddvi.diffusion import LOG_2PI, NoiseSchedule
from ddvi.nets import Denoiser, DenoiserPass, Encoder, EncoderFactory
from ddvi.posteriors.base import Posterior, positive_scale

LOG_VAR_RANGE = 5.0
"""The learned log-variance residual v is soft-clipped to (-5, 5) (a factor e^5 either way)."""
GUIDANCE = ("none", "prior", "joint")
"""What score the chain sees at each step: none, grad log p(z), or grad log p(x, z)."""

Frame = tuple[Tensor | None, Tensor, Tensor]
"""(x or None, mean, std): what the guidance needs to place u in z-space and score it."""


class DiffusionPosterior(Posterior):
    """Encoder to (mean, std, context) plus a reverse diffusion chain in standardised coordinates.

    Example:
        >>> q = DiffusionPosterior(4, 2, [8], timesteps=5, context_dim=3)
        >>> z, log_q = q.rsample(torch.zeros(6, 4))
        >>> z.shape, log_q.shape
        (torch.Size([6, 2]), torch.Size([6]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], timesteps: int = 20,
                 schedule: str = "linear", context_dim: int = 10, denoiser_hidden: int = 128,
                 denoiser_layers: int = 5, dropout: float = 0.0, learn_variance: bool = True,
                 encoder: EncoderFactory | None = None, beta_start: float | None = None,
                 beta_end: float | None = None, guidance: str = "none"):
        super().__init__()
        if guidance not in GUIDANCE:
            raise ValueError(f"unknown guidance {guidance!r}; choose one of {GUIDANCE}")
        self.latent_dim, self.context_dim = latent_dim, context_dim
        self.learn_variance, self.guidance = learn_variance, guidance
        heads = {"mean": latent_dim, "scale": latent_dim}
        if context_dim:
            heads["context"] = context_dim
        self.encoder = (encoder or Encoder)(in_dim, hidden, heads, dropout)
        self.schedule = NoiseSchedule(timesteps, schedule, beta_start, beta_end)
        self.denoiser = Denoiser(latent_dim, timesteps, denoiser_hidden, denoiser_layers,
                                 context_dim, extra_out=latent_dim if learn_variance else 0,
                                 extra_in=0 if guidance == "none" else latent_dim)
        torch.nn.init.zeros_(self.denoiser.out.weight)
        torch.nn.init.zeros_(self.denoiser.out.bias)

    @property
    def timesteps(self) -> int:
        return self.schedule.timesteps

    def attach_model(self, model: Any) -> None:
        """The generative model (an object with ``prior``, ``likelihood`` and ``decoder``, read
        at every use) whose score guides the chain; held, not registered: the method that owns
        this posterior registers those modules, so they are counted and saved once."""
        self.__dict__["_model"] = model

    def guided(self, u: Tensor, frame: Frame | None) -> Tensor:
        """The denoiser's input at u: u itself, or u and the guidance feature (see the module
        docstring) at z = mean + std * u."""
        if self.guidance == "none":
            return u
        if frame is None:
            raise ValueError("a guided chain needs (x, mean, std) to score u")
        model = self.__dict__.get("_model")
        if model is None:
            raise RuntimeError("guidance needs the generative model: build the posterior with "
                               "ddvi.methods.build_method, or call attach_model(method)")
        x, mean, std = frame
        score = _score(model, self.guidance == "joint", x, mean + std * u)
        return torch.cat([u, torch.asinh(std * score)], -1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """mean(x), std(x) of the affine map u -> z, and the denoiser's context c(x) (or None)."""
        h = self.encoder(x)
        return h["mean"], positive_scale(h["scale"]), h.get("context")

    def step(self, u: Tensor, t: Tensor | int, context: Tensor | None,
             frame: Frame | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(u_{t-1} | u_t, x); ``t`` an int or a (B,) tensor."""
        s, d = self.schedule, self.latent_dim
        out = self.denoiser(self.guided(u, frame), t, context)
        beta = s.at("beta", t, u)
        mean = s.at("alpha", t, u).sqrt() * u + beta.sqrt() * out[:, :d]
        log_var = beta.log().expand_as(u)
        if self.learn_variance:
            log_var = log_var + LOG_VAR_RANGE * torch.tanh(out[:, d:] / LOG_VAR_RANGE)
        return mean, log_var

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        z, log_ratio, _ = self.rsample_trajectory(x, generator)
        return z, log_ratio.sum(0)

    def rsample_trajectory(self, x: Tensor, generator: torch.Generator | None = None
                           ) -> tuple[Tensor, Tensor, Tensor]:
        """z; the terms of log q(y, z | x) - log r(y | z, x) as a (T + 1, B) tensor; and the
        trajectory us (T + 1, B, d) in u-space with us[t] = u_t.

        Row 0 of the terms is log q(u_T | x) - sum log std(x) (the affine map's log-determinant);
        row t (1..T) is log q(u_{t-1} | u_t, x) - log r(u_t | u_{t-1}). Their sum is ``log_q``.
        """
        mean, std, context = self.encode(x)
        noise = torch.randn((self.timesteps + 1, *mean.shape), generator=generator,
                            device=mean.device, dtype=mean.dtype)
        chain = self._chain
        compiled = self.__dict__.get("_compiled_chain")
        if compiled is not None and torch.is_grad_enabled():
            fn, batch = compiled
            if batch is None:  # compiled for the first batch size it trains on
                self.__dict__["_compiled_chain"] = (fn, mean.shape[0])
                chain = fn
            elif batch == mean.shape[0]:
                chain = fn
        return chain(noise, mean, std, context, x)

    def _chain(self, noise: Tensor, mean: Tensor, std: Tensor, context: Tensor | None,
               x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`rsample_trajectory` from the encoder's outputs and the (T + 1, B, d) noise."""
        T, d = self.timesteps, self.latent_dim
        prepared = self.denoiser.prepare(context)
        frame = (x, mean, std)
        u = noise[T]
        us, log_vars = [u], []
        for t in range(T, 0, -1):
            u, v = self._fast_step(u, t, prepared, noise[t - 1], frame)
            us.append(u)
            log_vars.append(v)
        traj = torch.stack(us[::-1])
        # log q(u_{t-1} | u_t, x) = -1/2 (|eps|^2 + sum log var + d log 2 pi), log var = log beta + v
        log_beta = self.schedule.beta.log()[:, None]
        log_q = -0.5 * (noise[:T].pow(2).sum(-1) + d * (log_beta + LOG_2PI))
        if log_vars[0] is not None:
            log_q = log_q - 0.5 * torch.stack(log_vars[::-1]).sum(-1)
        end = -0.5 * (noise[T].pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)
        steps = log_q - self.schedule.forward_log_prob_steps(traj)
        return mean + std * u, torch.cat([end[None], steps]), traj

    def compile_chain(self) -> None:
        """Train with the reverse chain compiled by ``torch.compile`` (one fused graph for the T
        steps, forward and backward: about 20 % less time per DDVI step on a CPU at the paper's
        settings, after a one-off compilation of a minute or two). The compiled chain serves the
        first batch size it trains on, with gradients on; other sizes and evaluation run the plain
        chain, which computes the same function. Not saved with the model."""
        self.__dict__["_compiled_chain"] = (torch.compile(self._chain, dynamic=False), None)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_compiled_chain", None)  # a compiled function is neither picklable nor copyable
        return state

    def _fast_step(self, u: Tensor, t: int, prepared: DenoiserPass, noise: Tensor | None,
                   frame: Frame | None) -> tuple[Tensor, Tensor | None]:
        """u_{t-1} = mean + std * noise (the mean alone if ``noise`` is None) and the learned
        log-variance residual v (None without ``learn_variance``): :meth:`step` for an int t in
        fewer operations, from the denoiser's per-pass constants and the schedule's scalars."""
        d = self.latent_dim
        out = self.denoiser.step(self.guided(u, frame), t, prepared)
        sqrt_alpha, sqrt_beta, _ = self.schedule.step_scalars[t - 1]
        mean = torch.add(u * sqrt_alpha, out[:, :d], alpha=sqrt_beta)
        if noise is None:
            return mean, None
        if not self.learn_variance:
            return torch.add(mean, noise, alpha=sqrt_beta), None
        v = LOG_VAR_RANGE * torch.tanh(out[:, d:] / LOG_VAR_RANGE)
        return torch.addcmul(mean, (0.5 * v).exp() * sqrt_beta, noise), v

    @torch.no_grad()
    def log_ratio_per_step(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The (T + 1, B) terms of ``log_q`` along one sampled trajectory (a diagnostic)."""
        return self.rsample_trajectory(x, generator)[1]

    @torch.no_grad()
    def summary(self, x: Tensor) -> Tensor:
        """Deterministic latent: u_T = 0, then the chain's means (no noise), mapped to z."""
        mean, std, context = self.encode(x)
        prepared = self.denoiser.prepare(context)
        u = torch.zeros_like(mean)
        for t in range(self.timesteps, 0, -1):
            u = self._fast_step(u, t, prepared, None, (x, mean, std))[0]
        return mean + std * u

    def chain_nll(self, u0: Tensor, context: Tensor | None,
                  generator: torch.Generator | None = None, frame: Frame | None = None) -> Tensor:
        """E_r[log r(u_{1:T} | u_0) - log q(u_{0:T} | x)] per row: an upper bound on -log q(u_0 | x).

        The sum, in nats, of KL(r(u_T | u_0) || N(0, I)), of KL(r(u_{t-1} | u_t, u_0) ||
        q(u_{t-1} | u_t, x)) for t = 2..T and of -log q(u_0 | u_1, x), every step evaluated in one
        batched denoiser pass (one u_t ~ r(u_t | u_0) per step): the bound's own weights, and
        both the mean and the variance outputs trained. ``frame`` (x or None, mean, std) places
        u in z-space for the guidance.
        """
        s, T = self.schedule, self.timesteps
        B = u0.shape[0]
        t = torch.arange(1, T + 1, device=u0.device).repeat_interleave(B)
        u0_rep = u0.repeat(T, 1)
        eps = torch.randn(u0_rep.shape, generator=generator, device=u0.device, dtype=u0.dtype)
        ut = s.q_sample(u0_rep, t, eps)
        ctx = None if context is None else context.repeat(T, 1)
        if frame is not None:
            frame = tuple(None if f is None else f.expand_as(u0).repeat(T, 1) if f.dim() == 1
                          else f.repeat(T, 1) for f in frame)  # type: ignore[assignment]
        m_q, log_v_q = self.step(ut, t, ctx, frame)
        m_r, v_r = s.posterior(u0_rep, ut, t)
        kl = 0.5 * (log_v_q - torch.log(v_r.clamp(min=1e-30))
                    + (v_r + (m_r - m_q).pow(2)) / log_v_q.exp() - 1)
        nll = 0.5 * ((u0_rep - m_q).pow(2) / log_v_q.exp() + log_v_q + LOG_2PI)
        per_step = torch.where((t == 1)[:, None], nll, kl).sum(-1).view(T, B).sum(0)
        return per_step + s.endpoint_kl(u0)

    def sleep_loss(self, x: Tensor, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Per-row upper bound on -log q(z | x) for pairs (x, z) ~ p(x, z) (the full sleep, L_diff)."""
        mean, std, context = self.encode(x)
        return (self.chain_nll((z - mean) / std, context, generator, (x, mean, std))
                + std.log().sum(-1))

    def shape_loss(self, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Chain NLL of a batch of latents standardised by its own (detached) moments, with a zero
        context: teaches the chain the shape of z's distribution without x (latent sleep)."""
        mean, std = z.mean(0).detach(), z.std(0).detach().clamp(min=1e-6)
        ctx = z.new_zeros(z.shape[0], self.context_dim) if self.context_dim else None
        return self.chain_nll((z - mean) / std, ctx, generator, (None, mean, std))


def _score(model: Any, joint: bool, x: Tensor | None, z: Tensor) -> Tensor:
    """grad_z log p(z) (``joint`` and x given: + log p(x | z)) of ``model`` at z, without a
    graph (the guidance's score is a constant input of the chain)."""
    score = model.prior.score(z)
    if joint and x is not None:
        score = score + _likelihood_score(model, x, z)
    return score


@torch.compiler.disable
def _likelihood_score(model: Any, x: Tensor, z: Tensor) -> Tensor:
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        log_lik = model.likelihood.log_prob(x, model.decoder(z))
        return torch.autograd.grad(log_lik.sum(), z)[0]
