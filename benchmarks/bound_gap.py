"""How tight is each method's ELBO? Toy latent variable models whose log p(x) is exact.

What is measured: for a method fitted with a fixed budget, the **bound gap**

    gap = mean over eval points x of [ log p(x) - ELBO(x) ]    (nats per example, >= 0)

where log p(x) is computed by quadrature (logsumexp of log p(x|z) + log p(z) over a fine 2-D grid
of z, times the cell area; its error is estimated from a grid 2/3 as fine) and ELBO(x) is the
method's own bound ``Method.elbo_terms(x)["elbo"]``, averaged over ``--draws`` posterior draws
per point in eval mode. The gap is KL(q(z|x) || p(z|x)) (for DDVI, H-AEVB and PIS: the KL of the
auxiliary-variable bound), so it measures the posterior family and its training, nothing else.

Cases (2-D latent z, p(x|z) = N(f(z), s^2 I) with f a fixed, known function):
    gaussian  prior N(0, I), f nearly linear into R^5, s = 0.3: near-Gaussian posterior.
    pinwheel  the paper's pinwheel prior, x = z + noise, s = 0.4: the posterior is the prior's thin
              arms inside a disc of radius ~0.4, curved and often multimodal.
    bimodal   prior N(0, I), f(z) = (z1^2, z2, (z1^2 + z2) / 2), s = 0.25: the sign of z1 is
              unidentifiable, so the posterior has two mirror-image modes when |z1| is not small.

Protocols:
    frozen    the generative model is the true one and frozen; only q(z|x) is fitted, on fresh
              batches x ~ p(x) every step; evaluated on a fixed held-out set from the model.
    joint     decoder (an MLP) and likelihood scale are trained too, on a fixed set of points
              from the true model; evaluated on the first training points, with log p(x) computed
              under the *learned* model, so the gap is exact for the model each method learned.

Every method gets the same budget (steps, batch, Adam lr, encoder widths) and optimises the plain
ELBO (beta_reg = prior_weight = 1, no KL warm-up); DDVI variants add their sleep terms, and
pre-train the denoiser exactly as ``ddvi.DDVI.fit`` does (its default ``warmup_steps``).
For DDVI the per-step terms of log q along the chain are reported too (if the posterior has
``log_ratio_per_step``).

Usage:  python benchmarks/bound_gap.py [--steps 3000] [--seeds 0,1,2] [--cases ...] [--methods ...]
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from scipy.special import stdtrit
from torch import Tensor, nn

from ddvi import DDVI as Estimator
from ddvi.likelihoods import Likelihood, get_likelihood
from ddvi.methods import Method, StepContext, build_method
from ddvi.nets import mlp
from ddvi.priors import Prior, get_prior

METHODS = ("aevb", "aevb-iaf", "h-aevb", "pis", "ddvi-none", "ddvi-latent", "ddvi-full")
PROTOCOLS = ("frozen", "joint")
BATCH, LR = 128, 1e-3
HIDDEN = (128, 128)          # every encoder's hidden widths
DECODER_HIDDEN = (64, 64)    # the learned decoder of the joint protocol
N_TRAIN, N_EVAL = 512, 64
DATA_SEED = 10_000           # data of seed k are drawn with DATA_SEED + k
GRID_CHUNK = 16384
LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- the toy models

def _near_linear(z: Tensor) -> Tensor:
    z1, z2 = z.unbind(-1)
    return torch.stack([z1, z2, 0.6 * z1 - 0.8 * z2, 0.8 * z1 + 0.6 * z2,
                        0.5 * torch.tanh(z1 + z2) + 0.1 * z1 * z2], -1)


def _identity(z: Tensor) -> Tensor:
    return z


def _square_first(z: Tensor) -> Tensor:
    z1, z2 = z.unbind(-1)
    return torch.stack([z1 ** 2, z2, 0.5 * (z1 ** 2 + z2)], -1)


@dataclass(frozen=True)
class Case:
    """A toy model p(z) N(x; f(z), noise^2 I) and the z-grid its log p(x) is integrated on."""

    name: str
    prior: str
    f: Callable[[Tensor], Tensor]
    n_features: int
    noise: float
    half_width: float    # the grid covers [-half_width, half_width]^2
    points: int          # grid points per axis
    posterior: str       # what the posterior looks like (checked by ``describe_posterior``)


CASES = {c.name: c for c in (
    Case("gaussian", "gaussian", _near_linear, 5, 0.3, 5.0, 641, "near-Gaussian"),
    Case("pinwheel", "pinwheel", _identity, 2, 0.4, 2.2, 641, "thin curved arms, often multimodal"),
    Case("bimodal", "gaussian", _square_first, 3, 0.25, 5.0, 641, "two mirror modes (sign of z1)"),
)}


class FixedDecoder(nn.Module):
    """The case's known f(z) as a parameter-free decoder."""

    def __init__(self, f: Callable[[Tensor], Tensor]):
        super().__init__()
        self.f = f

    def forward(self, z: Tensor) -> Tensor:
        return self.f(z)


class Generative(NamedTuple):
    """p(z) p(x|z): what the quadrature integrates (a ``Method`` has the same three attributes)."""

    prior: Prior
    decoder: nn.Module
    likelihood: Likelihood


def true_model(case: Case) -> Generative:
    likelihood = get_likelihood("gaussian", case.n_features)
    with torch.no_grad():
        likelihood.log_scale.fill_(math.log(case.noise))
    return Generative(get_prior(case.prior), FixedDecoder(case.f), likelihood)


def sample_data(case: Case, prior: Prior, n: int, generator: torch.Generator) -> Tensor:
    """x ~ p(x) of the true model."""
    z, _ = prior.sample(n, generator)
    return case.f(z) + case.noise * torch.randn(n, case.n_features, generator=generator)


# ----------------------------------------------------------------------------- exact log p(x)

def grid_points(half_width: float, points: int) -> tuple[Tensor, float]:
    """The grid's z (points^2, 2) and the log of its cell area."""
    axis = torch.linspace(-half_width, half_width, points, dtype=torch.float64)
    return torch.cartesian_prod(axis, axis), 2 * math.log(2 * half_width / (points - 1))


def pairwise_log_likelihood(likelihood: Likelihood, x: Tensor, out: Tensor) -> Tensor:
    """log N(x_b; out_g, diag sigma^2) for every (g, b), (G, B) in float64, the squared distance
    expanded as |u|^2 + |v|^2 - 2 u.v in whitened units (a matrix product, not a (G, B, D) tensor)."""
    log_scale = likelihood.log_scale.double()
    u, v = x.double() * torch.exp(-log_scale), out.double() * torch.exp(-log_scale)
    sq = (v * v).sum(1, keepdim=True) + (u * u).sum(1) - 2 * v @ u.T
    return -0.5 * sq.clamp(min=0) - (log_scale.sum() + 0.5 * x.shape[1] * LOG_2PI)


def log_joint_chunks(model: Generative | Method, x: Tensor, zz: Tensor
                     ) -> Iterator[tuple[Tensor, Tensor]]:
    """(z chunk, log p(x, z) of shape (chunk, B)) over the grid ``zz``, in float64."""
    for z in zz.split(GRID_CHUNK):
        zf = z.float()
        log_lik = pairwise_log_likelihood(model.likelihood, x, model.decoder(zf))
        yield z, log_lik + model.prior.log_prob(zf).double()[:, None]


@torch.no_grad()
def log_evidence(model: Generative | Method, x: Tensor, half_width: float, points: int) -> Tensor:
    """log p(x) per row of x by grid quadrature over [-half_width, half_width]^2 (float64)."""
    zz, log_area = grid_points(half_width, points)
    parts = [torch.logsumexp(lj, 0) for _, lj in log_joint_chunks(model, x, zz)]
    return torch.logsumexp(torch.stack(parts), 0) + log_area


def quadrature_error(model: Generative | Method, x: Tensor, case: Case, log_px: Tensor) -> float:
    """Largest change of log p(x) on a grid 2/3 as fine: a conservative estimate of the error of
    ``log_px`` (the coarser grid's error is the larger one while the quadrature converges)."""
    coarser = log_evidence(model, x, case.half_width, case.points * 2 // 3)
    return float((coarser - log_px).abs().max())


@torch.no_grad()
def describe_posterior(model: Generative, x: Tensor, case: Case, log_px: Tensor) -> dict[str, float]:
    """Grid summaries of the exact posteriors p(z|x): mean std, KL(p(z|x) || its moment-matched
    Gaussian) (0 for a Gaussian posterior), and the mass on the less likely sign of z1."""
    zz, log_area = grid_points(case.half_width, case.points)
    mean = torch.zeros(x.shape[0], 2, dtype=torch.float64)
    second = torch.zeros(x.shape[0], 2, 2, dtype=torch.float64)
    neg_entropy = torch.zeros(x.shape[0], dtype=torch.float64)
    positive = torch.zeros(x.shape[0], dtype=torch.float64)
    for z, lj in log_joint_chunks(model, x, zz):
        log_density = lj - log_px            # log p(z|x) at the nodes
        w = (log_density + log_area).exp()   # posterior mass of each cell, (chunk, B)
        mean += w.T @ z
        second += (w.T @ (z[:, :, None] * z[:, None, :]).flatten(1)).view(-1, 2, 2)
        neg_entropy += (w * log_density).sum(0)
        positive += w[z[:, 0] > 0].sum(0)
    cov = second - mean[:, :, None] * mean[:, None, :]
    gauss_entropy = 0.5 * torch.logdet(2 * math.pi * math.e * cov)
    return {"posterior_std": float(cov.diagonal(dim1=1, dim2=2).sqrt().mean()),
            "kl_to_gaussian": float((gauss_entropy + neg_entropy).mean()),
            "minor_sign_mass": float(torch.minimum(positive, 1 - positive).mean())}


# ----------------------------------------------------------------------------- models and fits

def build(method: str, case: Case, protocol: str, timesteps: int | None, seed: int,
          **overrides: Any) -> Method:
    """The named method on the case's prior, optimising the plain ELBO; for ``frozen`` with the
    true decoder and noise and its generative model frozen, for ``joint`` a trainable MLP decoder."""
    name, _, sleep = method.partition("-") if method.startswith("ddvi") else (method, "", "")
    options: dict[str, Any] = {"prior": case.prior, "likelihood": "gaussian", "latent_dim": 2,
                               "hidden": HIDDEN, "beta_reg": 1.0, "prior_weight": 1.0}
    if name == "ddvi":
        options.update(sleep=sleep, context_dim=0 if sleep == "latent" else None)
    if timesteps is not None:
        options["timesteps"] = timesteps
    options.update(overrides)
    torch.manual_seed(seed)
    model = build_method(name, case.n_features, **options)
    if hasattr(model, "warmup_fraction"):
        model.warmup_fraction = 0.0
    if protocol == "frozen":
        _, model.decoder, model.likelihood = true_model(case)  # the prior is already the true one
        for module in (model.decoder, model.likelihood, model.prior):
            module.requires_grad_(False)
    else:
        model.decoder = mlp(2, DECODER_HIDDEN, case.n_features)
    return model


def train(model: Method, next_batch: Callable[[], Tensor], steps: int, generator: torch.Generator) -> None:
    """The estimator's recipe: optional denoiser warm-up, then ``steps`` training steps."""
    warmup = Estimator().warmup_steps
    if warmup > 0 and hasattr(model, "pretrain_denoiser"):
        model.pretrain_denoiser(warmup, BATCH, 1e-3, generator)
    optimizer = model.configure_optimizer(LR)
    model.train()
    for step in range(steps):
        model.training_step(next_batch(), optimizer, StepContext(step, steps, generator))


@torch.no_grad()
def mc_elbo(model: Method, x: Tensor, draws: int, generator: torch.Generator,
            chunk: int = 32) -> tuple[Tensor, float]:
    """ELBO per row of x averaged over ``draws`` posterior draws, and the Monte-Carlo standard
    error of its mean over the rows."""
    model.eval()
    rows = []
    for start in range(0, draws, chunk):
        k = min(chunk, draws - start)
        rows.append(model.elbo_terms(x.repeat(k, 1), generator)["elbo"].double().view(k, -1))
    values = torch.cat(rows)
    return values.mean(0), float(values.std(0).pow(2).mean().sqrt()) / math.sqrt(values.numel())


@torch.no_grad()
def per_step_log_ratio(model: Method, x: Tensor, generator: torch.Generator,
                       draws: int = 16) -> list[float] | None:
    """Mean of each row of ``posterior.log_ratio_per_step`` (DDVI), or None where there is none."""
    per_step = getattr(model.posterior, "log_ratio_per_step", None)
    if per_step is None:
        return None
    return per_step(x.repeat(draws, 1), generator).double().mean(1).tolist()


@dataclass
class Fit:
    """One fitted method on one case, protocol and seed (gap and log p(x) in nats per example)."""

    protocol: str
    case: str
    method: str
    seed: int
    log_px: float
    elbo: float
    gap: float
    elbo_se: float
    quadrature_error: float | None   # joint only (frozen: the case's check on the true model)
    seconds: float
    per_step: list[float] | None


def run_fit(protocol: str, case: Case, method: str, seed: int, args: argparse.Namespace,
            truth: dict[tuple[str, int], tuple[Tensor, Tensor]]) -> Fit:
    """Fit one method and measure its bound gap on the eval points."""
    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    data_g = torch.Generator().manual_seed(DATA_SEED + seed)
    model = build(method, case, protocol, args.timesteps, seed)
    if protocol == "frozen":
        x_eval, log_px = truth[(case.name, seed)]
        train(model, lambda: sample_data(case, model.prior, BATCH, g), args.steps, g)
        quad_err = None
    else:
        data = sample_data(case, model.prior, N_TRAIN, data_g)
        model.likelihood.init_from_data(data)
        train(model, lambda: data[torch.randint(N_TRAIN, (BATCH,), generator=g)], args.steps, g)
        x_eval = data[:N_EVAL]
        model.eval()
        log_px = log_evidence(model, x_eval, case.half_width, case.points)
        quad_err = quadrature_error(model, x_eval, case, log_px)
    elbo, se = mc_elbo(model, x_eval, args.draws, g)
    return Fit(protocol, case.name, method, seed, float(log_px.mean()), float(elbo.mean()),
               float((log_px - elbo).mean()), se, quad_err, time.perf_counter() - start,
               per_step_log_ratio(model, x_eval, g))


def true_model_checks(case: Case, seeds: Sequence[int]
                      ) -> tuple[dict[tuple[str, int], tuple[Tensor, Tensor]], dict[str, Any]]:
    """Held-out points and their exact log p(x) under the true model, per seed, and the
    posterior checks and quadrature error of the case (first seed)."""
    model = true_model(case)
    truth = {}
    for seed in seeds:
        x = sample_data(case, model.prior, N_EVAL, torch.Generator().manual_seed(DATA_SEED + seed))
        truth[(case.name, seed)] = x, log_evidence(model, x, case.half_width, case.points)
    x, log_px = truth[(case.name, seeds[0])]
    checks = {"posterior": case.posterior, "n_features": case.n_features, "noise": case.noise,
              "grid": f"[-{case.half_width}, {case.half_width}]^2, {case.points}^2 points",
              "quadrature_error": quadrature_error(model, x, case, log_px),
              **describe_posterior(model, x, case, log_px)}
    return truth, checks


# ----------------------------------------------------------------------------- report

def summarise(values: Sequence[float]) -> str:
    """'mean ± half-width of the 95% t-interval' (just the mean for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return f"{mean:.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return f"{mean:.3f} ± {stdtrit(n - 1, 0.975) * sd / math.sqrt(n):.3f}"


def below_bound(fit: Fit) -> bool:
    """ELBO above the exact log p(x) by more than Monte-Carlo and quadrature error allow."""
    return fit.gap < -(3 * fit.elbo_se + (fit.quadrature_error or 0.0))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def protocol_tables(fits: Sequence[Fit], protocol: str, cases: Sequence[str],
                    methods: Sequence[str]) -> list[str]:
    """Gap table, log p(x) table and DDVI per-step table of one protocol."""
    def select(case: str, method: str) -> list[Fit]:
        return [f for f in fits if f.protocol == protocol and f.case == case and f.method == method]

    def gap_cell(case: str, method: str) -> str:
        chosen = select(case, method)
        flag = " (!)" if any(below_bound(f) for f in chosen) else ""
        return summarise([f.gap for f in chosen]) + flag

    lines = [f"## Protocol `{protocol}`", "",
             "Bound gap log p(x) - ELBO, nats per example (mean ± 95% t-interval over seeds; "
             "smaller is better):", ""]
    lines += table(["method", *cases], [[m, *(gap_cell(c, m) for c in cases)] for m in methods])
    owners = [("true model", methods[0])] if protocol == "frozen" else [(m, m) for m in methods]
    lines += ["", "Mean exact log p(x) of the eval points, nats per example"
              + (" (under each method's learned model):" if protocol == "joint" else ":"), ""]
    lines += table(["model", *cases], [[label, *(summarise([f.log_px for f in select(c, m)])
                                                  for c in cases)] for label, m in owners])
    if protocol == "joint":
        worst = max((f.quadrature_error or 0.0 for f in fits if f.protocol == protocol), default=0.0)
        lines += ["", f"Largest quadrature error over the learned models: {worst:.1e} nats."]
    lines += ["", *per_step_table([f for f in fits if f.protocol == protocol], cases)]
    return lines


def per_step_table(fits: Sequence[Fit], cases: Sequence[str]) -> list[str]:
    """Row t of ``log_ratio_per_step`` averaged over eval points and seeds, per DDVI variant."""
    columns = [(c, m) for c in cases for m in dict.fromkeys(f.method for f in fits)
               if any(f.per_step for f in fits if f.case == c and f.method == m)]
    if not columns:
        return ["(No per-step diagnostics: the diffusion posterior has no `log_ratio_per_step`.)", ""]
    means = {}
    for c, m in columns:
        runs = [f.per_step for f in fits if f.case == c and f.method == m and f.per_step]
        means[c, m] = [sum(r[t] for r in runs) / len(runs) for t in range(len(runs[0]))]
    steps = max(len(v) for v in means.values())
    rows = [[str(t), *(f"{means[k][t]:.3f}" if t < len(means[k]) else "" for k in columns)]
            for t in range(steps)]
    return ["DDVI per-step terms of log q (nats per example, mean over eval points and seeds): "
            "t = 0 is log q(y_T|x), t >= 1 is log q(y_{t-1}|y_t,x) - log r(y_t|y_{t-1}):", "",
            *table(["t", *(f"{c} / {m}" for c, m in columns)], rows), ""]


def report(fits: Sequence[Fit], checks: dict[str, dict[str, Any]], args: argparse.Namespace,
           command: str, seconds: float) -> str:
    cases, methods = list(checks), args.methods
    lines = ["# Bound gap: exact log p(x) minus each method's ELBO", "",
             f"Command: `{command}`  ",
             f"Wall clock: {seconds:.0f} s, torch threads: {torch.get_num_threads()}.", "",
             f"Budget per fit: {args.steps} steps, batch {BATCH}, Adam lr {LR}, encoders {HIDDEN}, "
             f"ELBO from {args.draws} draws per point, {N_EVAL} eval points, seeds {args.seeds}; "
             f"denoiser warm-up {Estimator().warmup_steps} steps (the estimator's default). "
             "(!) marks a cell where some seed's ELBO exceeds log p(x) by more than 3 Monte-Carlo "
             "standard errors plus the quadrature error.", "",
             "## Cases (exact posteriors of the true model, first seed's eval points)", ""]
    lines += table(["case", "posterior", "x dim", "s", "grid", "mean posterior std",
                    "KL(p(z\\|x) ‖ moment-matched Gaussian)", "mass on minor sign of z1",
                    "quadrature error"],
                   [[name, c["posterior"], str(c["n_features"]), str(c["noise"]), c["grid"],
                     f"{c['posterior_std']:.3f}", f"{c['kl_to_gaussian']:.3f}",
                     f"{c['minor_sign_mass']:.3f}", f"{c['quadrature_error']:.1e}"]
                    for name, c in checks.items()])
    for protocol in args.protocols:
        lines += ["", *protocol_tables(fits, protocol, cases, methods)]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- command line

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    def names(choices: Sequence[str]) -> Callable[[str], list[str]]:
        def parse(text: str) -> list[str]:
            chosen = [s.strip() for s in text.split(",") if s.strip()]
            unknown = sorted(set(chosen) - set(choices))
            if unknown or not chosen:
                raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (got {text!r})")
            return chosen
        return parse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps per fit")
    parser.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--cases", type=names(list(CASES)), default=list(CASES))
    parser.add_argument("--protocols", type=names(PROTOCOLS), default=list(PROTOCOLS))
    parser.add_argument("--methods", type=names(METHODS), default=list(METHODS))
    parser.add_argument("--timesteps", type=int, default=None,
                        help="DDVI/PIS steps T (default: build_method's)")
    parser.add_argument("--draws", type=int, default=256, help="posterior draws per eval point")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bound_gap.md"),
                        help="the Markdown report; the JSON goes beside it")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/bound_gap.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.perf_counter()
    truth, checks = {}, {}
    for name in args.cases:
        case_truth, checks[name] = true_model_checks(CASES[name], args.seeds)
        truth.update(case_truth)
        c = checks[name]
        print(f"case {name} ({c['posterior']}): posterior std {c['posterior_std']:.3f}, "
              f"KL to moment-matched Gaussian {c['kl_to_gaussian']:.3f}, mass on minor sign of z1 "
              f"{c['minor_sign_mass']:.3f}, quadrature error {c['quadrature_error']:.1e}", flush=True)
    jobs = [(p, c, m, s) for p in args.protocols for c in args.cases for m in args.methods
            for s in args.seeds]
    fits = []
    for i, (protocol, case, method, seed) in enumerate(jobs, 1):
        fit = run_fit(protocol, CASES[case], method, seed, args, truth)
        fits.append(fit)
        flag = "  ELBO > log p(x)!" if below_bound(fit) else ""
        print(f"[{i}/{len(jobs)}] {protocol:<6} {case:<9} {method:<12} seed {seed}: "
              f"log p(x) {fit.log_px:8.3f}  gap {fit.gap:7.3f} ± {fit.elbo_se:.3f}  "
              f"({fit.seconds:.0f} s){flag}", flush=True)
    seconds = time.perf_counter() - start
    text = report(fits, checks, args, command, seconds)
    results = {"command": command, "wall_clock_s": seconds, "steps": args.steps, "seeds": args.seeds,
               "draws": args.draws, "batch": BATCH, "lr": LR, "hidden": list(HIDDEN),
               "timesteps": args.timesteps, "denoiser_warmup_steps": Estimator().warmup_steps,
               "cases": checks, "fits": [asdict(f) for f in fits]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)  # one core per run, so that runs can go in parallel
    main()
