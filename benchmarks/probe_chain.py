"""Where DDVI's bound gap comes from, on bound_gap.py's frozen toys (synthetic; exact log p(x)).

Two probes (single runs per seed, to guide design; they prove nothing alone):

``floor``  the gap of the best Gaussian fitted to each eval point separately (no encoder, Adam on
           (mean, log std) per point, 3 000 steps): the part of a Gaussian posterior's gap that is
           the family's; the rest of AEVB's gap is amortisation and optimisation.
``fit``    one method fitted as bound_gap.py does (frozen protocol), printing its gap and, for
           DDVI, ``chain_gain``: its ELBO minus the ELBO with the denoiser's residual output set to
           zero (the encoder's Gaussian alone, with the same encoder). Variants: ``lr_mult`` (the
           denoiser's learning rate times this), ``timesteps``, ``extra=detach`` (the full sleep
           trains the chain only: the encoder's mean, std and context are detached in L_diff),
           ``extra=geometric`` (the geometric noise schedule); ``post=sched`` (learned per-step,
           per-dimension, x-dependent noise levels beta_t(x) shared by r and q's stationary part),
           ``post=sched_global`` (the same, one learned schedule for all x), ``post=rnet`` (a
           learned auxiliary r(u_t | u_{t-1}, x), mean and variance residuals of a zero-initialised
           MLP), ``post=x0`` (the residual as a correction to the stationary guess of u_0),
           ``post=tril`` (a full-covariance affine map z = mean + L(x) u, not a diagonal one),
           ``post=zframe`` (the denoiser also sees y_t = mean + std u_t, mean and log std),
           ``post=meanstd`` (the same without y_t), ``post=film`` (context in every layer),
           ``ctx=K`` (context width), ``hidden=AxB`` (encoder widths), ``points=K`` (no
           amortisation: train and score on the first K eval points only), ``batch=N``, ``draws=K``
           (each x of a batch drawn K times: K trajectories per x), ``freeze_after=K`` (the
           encoder frozen after K steps: only the chain trains on), ``beta_start``/``beta_end``,
           ``dhidden`` (the denoiser's width), ``lr`` (the shared learning rate, default bound_gap.LR),
           ``guidance`` (none | prior | joint; default: build_method's); ``post=score`` /
           ``pscore`` (the first prototypes of the guidance, joint / prior score, differentiated
           through: diverged), ``post=score_detach`` / ``pscore_detach`` (the score as a constant
           input, as the library now does it).
           For AEVB-IAF it prints ``flow_gain``, the flow's gain over its own base Gaussian.

Usage:
    python benchmarks/probe_chain.py floor
    python benchmarks/probe_chain.py fit CASE STEPS "METHOD[:key=value...],..." SEEDS
    e.g. python benchmarks/probe_chain.py fit bimodal 1000 "ddvi-none:timesteps=5,aevb" 0,1
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bound_gap as bg  # noqa: E402

from ddvi.diffusion import BETA_MAX, LOG_2PI  # noqa: E402
from ddvi.methods import Method, StepContext  # noqa: E402
from ddvi.posteriors.diffusion import LOG_VAR_RANGE  # noqa: E402


def gaussian_floor(case_name: str, seed: int, steps: int = 3000) -> float:
    """Mean gap over the eval points of the best per-point (non-amortised) Gaussian."""
    case = bg.CASES[case_name]
    truth, _ = bg.true_model_checks(case, [seed])
    x, log_px = truth[(case_name, seed)]
    model = bg.true_model(case)
    mu = torch.zeros(len(x), 2, requires_grad=True)
    log_std = torch.full((len(x), 2), -1.0, requires_grad=True)
    opt = torch.optim.Adam([mu, log_std], lr=0.02)

    def elbo(draws: int) -> torch.Tensor:
        eps = torch.randn(draws, *mu.shape)
        z = (mu + log_std.exp() * eps).reshape(-1, 2)
        log_q = (-0.5 * eps ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_joint = model.prior.log_prob(z) + model.likelihood.log_prob(x.repeat(draws, 1),
                                                                          model.decoder(z))
        return log_joint.view(draws, -1) - log_q

    for _ in range(steps):
        loss = -elbo(16).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((log_px - elbo(2048).mean(0)).mean())


def detach_sleep(model: Method) -> None:
    """L_diff reaches only the chain: the encoder's outputs are detached."""
    post = model.posterior

    def sleep_loss(x: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None = None):
        mean, std, context = post.encode(x)
        mean, std = mean.detach(), std.detach()
        context = None if context is None else context.detach()
        return post.chain_nll((z - mean) / std, context, generator) + std.log().sum(-1)

    post.sleep_loss = sleep_loss


def geometric_schedule(model: Method) -> None:
    """The chain's forward process on the geometric schedule (more steps at small noise)."""
    from ddvi.diffusion import NoiseSchedule

    model.posterior.schedule = NoiseSchedule(model.posterior.timesteps, "geometric")


EXTRAS = {"detach": detach_sleep, "geometric": geometric_schedule}


def _soft(v: torch.Tensor) -> torch.Tensor:
    return LOG_VAR_RANGE * torch.tanh(v / LOG_VAR_RANGE)


def learned_schedule(model: Method, global_only: bool = False) -> None:
    """Prototype: per-step, per-dimension noise levels beta_t(x) = 0.5 sigmoid(logit(2 beta_t) +
    g_t(x)), g = W c(x) + b zero-initialised (``global_only``: b alone, a learned schedule shared
    by all x), used by both r (the auxiliary forward process in u-space) and q's stationary part,
    so at g = 0 it is the default chain and with zero residuals still exactly the encoder's
    Gaussian for any g."""
    post = model.posterior
    T, d = post.timesteps, post.latent_dim
    post.sched_head = torch.nn.Linear(max(post.context_dim, 1), T * d)
    torch.nn.init.zeros_(post.sched_head.weight)
    torch.nn.init.zeros_(post.sched_head.bias)
    base = post.schedule.beta.clamp(max=BETA_MAX * 0.999) / BETA_MAX
    logit0 = (base.log() - (1 - base).log()).float()

    def rsample_trajectory(x, generator=None):
        mean, std, context = post.encode(x)
        B = mean.shape[0]
        c = context if (context is not None and not global_only) else mean.new_zeros(B, 1)
        if global_only:
            c = mean.new_zeros(B, post.sched_head.in_features)
        g = post.sched_head(c).view(B, T, d)
        beta = BETA_MAX * torch.sigmoid(logit0[None, :, None] + g)
        noise = torch.randn((T + 1, B, d), generator=generator, dtype=mean.dtype)
        prepared = post.denoiser.prepare(context)
        u = noise[T]
        us, terms = [u], []
        for t in range(T, 0, -1):
            out = post.denoiser.step(u, t, prepared)
            b = beta[:, t - 1]
            v = _soft(out[:, d:])
            prev = (1 - b).sqrt() * u + b.sqrt() * out[:, :d] + (b * v.exp()).sqrt() * noise[t - 1]
            log_q = -0.5 * (noise[t - 1].pow(2) + b.log() + v + LOG_2PI).sum(-1)
            log_r = -0.5 * ((u - (1 - b).sqrt() * prev).pow(2) / b + b.log() + LOG_2PI).sum(-1)
            terms.append(log_q - log_r)
            u = prev
            us.append(u)
        end = -0.5 * (noise[T].pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)
        traj = torch.stack(us[::-1])
        return mean + std * u, torch.cat([end[None], torch.stack(terms[::-1])]), traj

    post.rsample_trajectory = rsample_trajectory


def learned_reverse(model: Method, hidden: int = 64, layers: int = 3) -> None:
    """Prototype: a learned auxiliary r(u_t | u_{t-1}, x) = N(sqrt(alpha_t) u_{t-1} + sqrt(beta_t)
    n(u_{t-1}, t, c), beta_t exp(w(u_{t-1}, t, c))), (n, w) a zero-initialised time-conditioned MLP
    on the denoiser's context: at initialisation the default chain."""
    from ddvi.nets import Denoiser

    post = model.posterior
    T, d, s = post.timesteps, post.latent_dim, post.schedule
    post.rnet = Denoiser(d, T, hidden, layers, post.context_dim, extra_out=d)
    torch.nn.init.zeros_(post.rnet.out.weight)
    torch.nn.init.zeros_(post.rnet.out.bias)
    plain = post.rsample_trajectory

    def rsample_trajectory(x, generator=None):
        z, steps, traj = plain(x, generator)
        fixed = s.forward_log_prob_steps(traj)
        B = traj.shape[1]
        context = post.encode(x)[2]  # recomputed: cheap next to the chain
        t = torch.arange(1, T + 1).repeat_interleave(B)
        prev, cur = traj[:-1].reshape(T * B, d), traj[1:].reshape(T * B, d)
        out = post.rnet(prev, t, None if context is None else context.repeat(T, 1))
        beta = s.beta[t - 1][:, None]
        m = (1 - beta).sqrt() * prev + beta.sqrt() * out[:, :d]
        log_var = beta.log() + _soft(out[:, d:])
        log_r = -0.5 * ((cur - m).pow(2) / log_var.exp() + log_var + LOG_2PI).sum(-1)
        steps = steps.clone()
        steps[1:] = steps[1:] + fixed - log_r.view(T, B)
        return z, steps, traj

    post.rsample_trajectory = rsample_trajectory


def x0_residual(model: Method) -> None:
    """Prototype: the residual predicts a correction h to the stationary guess of u_0,
    E[u_0 | u_t] = sqrt(abar_t) u_t, so the step mean is sqrt(alpha_t) u_t + coef_y0_t h (the DDPM
    posterior mean at u_0 = sqrt(abar_t) u_t + h) instead of sqrt(alpha_t) u_t + sqrt(beta_t) m:
    the same family, the residual's scale moved to the last steps (coef_y0 is 1 at t = 1, ~0.05 at
    t = T, against sqrt(beta_t) 0.03 .. 0.63). At h = 0 the default chain."""
    post = model.posterior
    coef = post.schedule.coef_y0.double().tolist()
    post.schedule.step_scalars = [(a, c, lb) for (a, _, lb), c in zip(post.schedule.step_scalars,
                                                                      coef)]
    beta = post.schedule.beta.double().tolist()
    d = post.latent_dim
    fast = post._fast_step

    def _fast_step(u, t, prepared, noise, frame):
        if noise is None:
            return fast(u, t, prepared, None, frame)
        mean_only, _ = fast(u, t, prepared, None, frame)
        out = post.denoiser.step(post.guided(u, frame), t, prepared)
        if not post.learn_variance:
            return mean_only + math.sqrt(beta[t - 1]) * noise, None
        v = _soft(out[:, d:])
        return mean_only + (0.5 * v).exp() * math.sqrt(beta[t - 1]) * noise, v

    post._fast_step = _fast_step


def tril_affine(model: Method) -> None:
    """Prototype: a full-covariance affine map z = mean(x) + L(x) u, L lower-triangular with
    diagonal std(x) and a strictly lower part from a zero-initialised linear head on the context
    (the log-determinant is still sum log std): at initialisation the default chain; with zero
    residuals q(z | x) is a full-covariance Gaussian, so the chain only has to bend, not rotate."""
    post = model.posterior
    d = post.latent_dim
    rows, cols = torch.tril_indices(d, d, offset=-1)
    post.tril_head = torch.nn.Linear(max(post.context_dim, 1), len(rows))
    torch.nn.init.zeros_(post.tril_head.weight)
    torch.nn.init.zeros_(post.tril_head.bias)
    plain = post.rsample_trajectory

    def rsample_trajectory(x, generator=None):
        _, steps, traj = plain(x, generator)
        mean, std, context = post.encode(x)
        c = context if context is not None else mean.new_zeros(mean.shape[0], 1)
        lower = mean.new_zeros(mean.shape[0], d, d)
        lower[:, rows, cols] = post.tril_head(c)
        u = traj[0]
        z = mean + std * u + (lower @ u.unsqueeze(-1)).squeeze(-1)
        return z, steps, traj

    post.rsample_trajectory = rsample_trajectory


def z_frame(model: Method, position: bool = True) -> None:
    """Prototype: the denoiser also sees where it is in z-space, y_t = mean(x) + std(x) u_t, with
    mean(x) and log std(x) in its context. The chain still runs on u (DDVI still contains AEVB),
    but a prior-shaped posterior (arms fixed in z) no longer looks different for every x."""
    from ddvi.nets import Denoiser

    post = model.posterior
    T, d, s = post.timesteps, post.latent_dim, post.schedule
    old = post.denoiser
    width = post.context_dim + (3 if position else 2) * d
    post.denoiser = Denoiser(d, T, old.out.in_features, len(old.hidden) + 1, width,
                             extra_out=d if post.learn_variance else 0)
    torch.nn.init.zeros_(post.denoiser.out.weight)
    torch.nn.init.zeros_(post.denoiser.out.bias)

    def rsample_trajectory(x, generator=None):
        mean, std, context = post.encode(x)
        B = mean.shape[0]
        base = torch.cat(([] if context is None else [context]) + [mean, std.log()], -1)
        noise = torch.randn((T + 1, B, d), generator=generator, dtype=mean.dtype)
        u = noise[T]
        us, terms = [u], []
        for t in range(T, 0, -1):
            out = post.denoiser(u, t, torch.cat([base, mean + std * u], -1) if position else base)
            b = float(s.beta[t - 1])
            v = _soft(out[:, d:]) if post.learn_variance else torch.zeros_like(u)
            prev = (math.sqrt(1 - b) * u + math.sqrt(b) * out[:, :d]
                    + math.sqrt(b) * (0.5 * v).exp() * noise[t - 1])
            log_q = -0.5 * (noise[t - 1].pow(2) + math.log(b) + v + LOG_2PI).sum(-1)
            log_r = -0.5 * ((u - math.sqrt(1 - b) * prev).pow(2) / b + math.log(b) + LOG_2PI).sum(-1)
            terms.append(log_q - log_r)
            u = prev
            us.append(u)
        end = -0.5 * (noise[T].pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)
        return mean + std * u, torch.cat([end[None], torch.stack(terms[::-1])]), torch.stack(us[::-1])

    post.rsample_trajectory = rsample_trajectory


class FiLMDenoiser(torch.nn.Module):
    """The default denoiser with x's context entering every hidden layer (FiLM): layer l computes
    relu((W_l h + b_l + e_l(t)) * (1 + a_l(c)) + s_l(c)), a_l and s_l linear in c, plus c
    concatenated to the input as before. Same prepare/step interface as :class:`Denoiser`."""

    def __init__(self, base, context_dim: int):
        super().__init__()
        self.base, self.dim = base, base.dim
        widths = [layer.linear.out_features for layer in base.hidden]
        self.film = torch.nn.Linear(context_dim, 2 * sum(widths))
        torch.nn.init.normal_(self.film.weight, std=0.1)
        torch.nn.init.zeros_(self.film.bias)
        self.widths = widths
        self.out = base.out

    def prepare(self, context):
        plain = self.base.prepare(context)
        mods = self.film(context).split([w for w in self.widths for _ in (0, 1)], -1)
        return plain, [(1 + mods[2 * i], mods[2 * i + 1]) for i in range(len(self.widths))]

    def step(self, y, t, prepared):
        (weights, tables, ctx), mods = prepared
        h = torch.addmm(tables[0][t - 1], y, weights[0]) + ctx
        h = torch.relu(torch.addcmul(mods[0][1], h, mods[0][0]))
        for (w, table), (a, s) in zip(zip(weights[1:], tables[1:]), mods[1:]):
            h = torch.relu(torch.addcmul(s, torch.addmm(table[t - 1], h, w), a))
        return self.out(h)


def film(model: Method) -> None:
    """Prototype: FiLM conditioning of every denoiser layer on the context (see FiLMDenoiser)."""
    post = model.posterior
    post.denoiser = FiLMDenoiser(post.denoiser, post.context_dim)


def random_out(model: Method, std: float = 0.05) -> None:
    """Prototype: the denoiser's last layer starts small and random, not at zero (so its hidden
    layers get a gradient from the first step; DDVI no longer starts exactly at AEVB)."""
    torch.nn.init.normal_(model.posterior.denoiser.out.weight, std=std)


def x_context(model: Method) -> None:
    """Prototype: the denoiser's context is the encoder's context plus x itself (the toy's x is
    2-D), so the chain's x-dependence does not hang on a learned context head."""
    from ddvi.nets import Denoiser

    post = model.posterior
    old, encode = post.denoiser, post.encode
    post.denoiser = Denoiser(post.latent_dim, post.timesteps, old.out.in_features, len(old.hidden) + 1,
                             post.context_dim + 2, extra_out=post.latent_dim if post.learn_variance else 0)
    torch.nn.init.zeros_(post.denoiser.out.weight)
    torch.nn.init.zeros_(post.denoiser.out.bias)

    def encode_with_x(x):
        mean, std, context = encode(x)
        return mean, std, torch.cat([context, x], -1)

    post.encode = encode_with_x


def score_input(model: Method, prior_only: bool = False, detach: bool = False) -> None:
    """Prototype: the denoiser also sees the model's own score at the chain's current point,
    asinh(std(x) * grad_z log p(x, z)) at z = mean(x) + std(x) u_t (``prior_only``: grad_z log p(z)
    alone, which costs no decoder pass), as Langevin-type samplers do. The score is differentiated
    through (create_graph), so the reparameterised gradient stays exact. Zero-initialised output:
    at initialisation the default chain. ``detach``: the score is an input without a gradient
    (a biased gradient, but no second derivatives of a table prior's discontinuous score)."""
    from ddvi.nets import Denoiser

    post = model.posterior
    T, d, s = post.timesteps, post.latent_dim, post.schedule
    old = post.denoiser
    post.denoiser = Denoiser(d, T, old.out.in_features, len(old.hidden) + 1, post.context_dim + d,
                             extra_out=d if post.learn_variance else 0)
    torch.nn.init.zeros_(post.denoiser.out.weight)
    torch.nn.init.zeros_(post.denoiser.out.bias)

    def log_joint(x, z):
        lp = model.prior.log_prob(z)
        return lp if prior_only else lp + model.likelihood.log_prob(x, model.decoder(z))

    def score(x, z):
        outer = torch.is_grad_enabled() and not detach
        with torch.enable_grad():
            if detach or not z.requires_grad:
                z = z.detach().requires_grad_(True)
            return torch.autograd.grad(log_joint(x, z).sum(), z, create_graph=outer)[0]

    def rsample_trajectory(x, generator=None):
        mean, std, context = post.encode(x)
        B = mean.shape[0]
        noise = torch.randn((T + 1, B, d), generator=generator, dtype=mean.dtype)
        u = noise[T]
        us, terms = [u], []
        for t in range(T, 0, -1):
            feat = torch.asinh(std * score(x, mean + std * u))
            out = post.denoiser(u, t, torch.cat([context, feat], -1))
            b = float(s.beta[t - 1])
            v = _soft(out[:, d:]) if post.learn_variance else torch.zeros_like(u)
            prev = (math.sqrt(1 - b) * u + math.sqrt(b) * out[:, :d]
                    + math.sqrt(b) * (0.5 * v).exp() * noise[t - 1])
            log_q = -0.5 * (noise[t - 1].pow(2) + math.log(b) + v + LOG_2PI).sum(-1)
            log_r = -0.5 * ((u - math.sqrt(1 - b) * prev).pow(2) / b + math.log(b) + LOG_2PI).sum(-1)
            terms.append(log_q - log_r)
            u = prev
            us.append(u)
        end = -0.5 * (noise[T].pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)
        return mean + std * u, torch.cat([end[None], torch.stack(terms[::-1])]), torch.stack(us[::-1])

    post.rsample_trajectory = rsample_trajectory


POSTS = {"film": film, "xctx": x_context, "randout": random_out,
         "randout_big": lambda m: random_out(m, 0.3), "x0": x0_residual, "tril": tril_affine,
         "zframe": z_frame, "meanstd": lambda m: z_frame(m, False), "sched": learned_schedule,
         "sched_global": lambda m: learned_schedule(m, True), "rnet": learned_reverse,
         "score": score_input, "pscore": lambda m: score_input(m, True),
         "score_detach": lambda m: score_input(m, detach=True),
         "pscore_detach": lambda m: score_input(m, True, True)}


def _elbo_zeroed(model: Method, layers: list[torch.nn.Linear], x: torch.Tensor,
                 g: torch.Generator) -> torch.Tensor:
    """The ELBO per row of x with ``layers``' weights and biases set to zero (then restored)."""
    with torch.no_grad():
        saved = [(lay.weight.clone(), lay.bias.clone()) for lay in layers]
        for lay in layers:
            lay.weight.zero_()
            lay.bias.zero_()
    elbo, _ = bg.mc_elbo(model, x, 256, g)
    with torch.no_grad():
        for lay, (w, b) in zip(layers, saved):
            lay.weight.copy_(w)
            lay.bias.copy_(b)
    return elbo


def fit(case_name: str, method: str, seed: int, steps: int, lr_mult: float = 1.0,
        timesteps: int | None = None, extra: str | None = None, post: str | None = None,
        ctx: int | None = None, hidden: str | None = None, points: int | None = None,
        batch: int | None = None, draws: int = 1, freeze_after: int | None = None,
        beta_start: float | None = None, beta_end: float | None = None,
        dhidden: int | None = None, lr: float = bg.LR, guidance: str | None = None
        ) -> dict[str, Any]:
    case = bg.CASES[case_name]
    truth, _ = bg.true_model_checks(case, [seed])
    x_eval, log_px = truth[(case.name, seed)]
    if points:  # no amortisation: train and score on the first ``points`` eval points only
        if not 0 < points <= len(x_eval):
            raise ValueError(f"points must be 1..{len(x_eval)} (bound_gap.N_EVAL)")
        x_eval, log_px = x_eval[:points], log_px[:points]
    g = torch.Generator().manual_seed(seed)
    overrides: dict[str, Any] = {} if ctx is None else {"context_dim": ctx}
    if dhidden is not None:
        overrides["denoiser_hidden"] = dhidden
    if guidance is not None:
        overrides["guidance"] = guidance
    if beta_start is not None:
        overrides["beta_start"] = beta_start
    if beta_end is not None:
        overrides["beta_end"] = beta_end
    if hidden:
        overrides["hidden"] = tuple(int(w) for w in hidden.split("x"))
    model = bg.build(method, case, "frozen", timesteps, seed, **overrides)
    if extra:
        EXTRAS[extra](model)
    if post:
        POSTS[post](model)
    denoiser = getattr(model.posterior, "denoiser", None)
    if lr_mult != 1.0 and denoiser is not None:
        ids = {id(p) for p in denoiser.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        opt = torch.optim.Adam([{"params": rest, "lr": lr},
                                {"params": list(denoiser.parameters()), "lr": lr * lr_mult}])
    else:
        opt = model.configure_optimizer(lr)
    model.train()
    start = time.time()
    size = batch or bg.BATCH
    for step in range(steps):
        if step == freeze_after:  # from here on only the chain (the denoiser) trains
            for p in model.posterior.encoder.parameters():
                p.requires_grad_(False)
                p.grad = None
        x = (bg.sample_data(case, model.prior, size // draws, g) if not points
             else x_eval.repeat(size // points + 1, 1)[:size // draws])
        x = x.repeat_interleave(draws, 0)
        model.training_step(x, opt, StepContext(step, steps, g))
    elbo, se = bg.mc_elbo(model, x_eval, 256, g)
    res: dict[str, Any] = {"case": case_name, "method": method, "seed": seed, "steps": steps,
                           "lr": lr, "lr_mult": lr_mult, "timesteps": timesteps, "extra": extra,
                           "post": post, "ctx": ctx, "hidden": hidden, "points": points,
                           "batch": batch, "draws": draws, "freeze_after": freeze_after,
                           "beta_start": beta_start, "beta_end": beta_end, "dhidden": dhidden,
                           "guidance": guidance,
                           "gap": round(float((log_px - elbo).mean()), 3), "se": round(se, 3),
                           "seconds": round(time.time() - start)}
    if denoiser is not None:
        outs = [denoiser.out] + ([model.posterior.rnet.out] if hasattr(model.posterior, "rnet")
                                 else [])
        res["chain_gain"] = round(float((elbo - _elbo_zeroed(model, outs, x_eval, g)).mean()), 3)
        first = getattr(denoiser, "base", denoiser).hidden[0].linear.weight
        if first.shape[1] > model.posterior.latent_dim:  # the chain's use of x: its context cut
            with torch.no_grad():
                saved = first[:, model.posterior.latent_dim:].clone()
                first[:, model.posterior.latent_dim:] = 0
            cut, _ = bg.mc_elbo(model, x_eval, 256, g)
            with torch.no_grad():
                first[:, model.posterior.latent_dim:] = saved
            res["context_gain"] = round(float((elbo - cut).mean()), 3)
    flow = getattr(model.posterior, "flow", None)
    if flow is not None:  # the IAF's gain over its own base Gaussian (the MADEs' outputs zeroed)
        layers = [t.hyper[-1] for t in flow.transforms]
        res["flow_gain"] = round(float((elbo - _elbo_zeroed(model, layers, x_eval, g)).mean()), 3)
    return res


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    if argv[:1] == ["floor"]:
        for case in bg.CASES:
            for seed in (0, 1):
                print(json.dumps({"case": case, "seed": seed,
                                  "gaussian_floor": round(gaussian_floor(case, seed), 3)}), flush=True)
        return
    if len(argv) != 5 or argv[0] != "fit":
        sys.exit(__doc__)
    case, steps, specs, seeds = argv[1], int(argv[2]), argv[3], argv[4]
    for spec in specs.split(","):
        method, *pairs = spec.split(":")
        options: dict[str, Any] = {}
        for pair in pairs:
            key, value = pair.split("=")
            floats = ("lr", "lr_mult", "beta_start", "beta_end")
            options[key] = (value if key in ("extra", "post", "hidden", "guidance")
                            else float(value) if key in floats else int(value))
        for seed in (int(s) for s in seeds.split(",")):
            print(json.dumps(fit(case, method, seed, steps, **options)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
