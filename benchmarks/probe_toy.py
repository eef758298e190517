"""The quick probe behind this release's design choices (see benchmarks/RESULTS.md).

A smaller, faster cousin of ``bound_gap.py``: frozen protocol only (the true generative model is
fixed, only q(z|x) is fitted on fresh x ~ p(x) each step), one held-out set of 64 points per
seed, 200 ELBO draws per point; prints the gap log p(x) - ELBO (nats per example, exact log p(x)
by grid quadrature) per seed. Methods and build options come from the command line.

Usage:  python benchmarks/probe_toy.py CASE STEPS "METHOD[:key=value...],..."
        e.g. python benchmarks/probe_toy.py bimodal 1000 "aevb,ddvi:sleep=none:schedule=geometric"
Environment: LR (Adam learning rate, default 1e-3), SEEDS (default 0,1).
"""

from __future__ import annotations

import math
import os
import sys
import time

import torch
from torch import Tensor, nn

from ddvi.methods import Method, StepContext, build_method

CASES = {"bimodal": ("gaussian", 0.3), "pinwheel": ("pinwheel", 0.4), "gaussian": ("gaussian", 0.3)}
STRING_OPTIONS = ("sleep", "schedule", "fantasy")


class Decoder(nn.Module):
    """The case's fixed f(z) into R^5."""

    def __init__(self, case: str):
        super().__init__()
        self.case = case
        self.A = torch.randn(2, 5, generator=torch.Generator().manual_seed(7))

    def forward(self, z: Tensor) -> Tensor:
        if self.case == "bimodal":  # the sign of z1 is unidentifiable
            h = torch.stack([z[:, 0] ** 2, z[:, 1], z[:, 0] ** 2 * z[:, 1]], -1)
            return torch.cat([h, h[:, :2] * 0.5], -1)
        if self.case == "pinwheel":  # x = z + noise: the posterior follows the prior's arms
            return torch.cat([z, torch.zeros(len(z), 3)], -1)
        return torch.tanh(z @ self.A) * 2


def log_px(m: Method, x: Tensor, lo: float = -4, hi: float = 4, n: int = 401) -> Tensor:
    g = torch.linspace(lo, hi, n)
    zz = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        lp, out = m.prior.log_prob(zz), m.decoder(zz)
        v = [torch.logsumexp(m.likelihood.log_prob(xi.expand(len(zz), -1), out) + lp, 0) for xi in x]
    return torch.stack(v) + math.log(float(g[1] - g[0]) ** 2)


def run(case: str, method: str, seed: int, steps: int, lr: float, **options) -> tuple[float, float]:
    prior, noise = CASES[case]
    torch.manual_seed(seed)
    m = build_method(method, 5, prior=prior, likelihood="gaussian", hidden=(128, 128), beta_reg=1.0,
                     prior_weight=1.0, **options)
    m.decoder = Decoder(case)
    if hasattr(m, "warmup_fraction"):
        m.warmup_fraction = 0.0
    with torch.no_grad():
        m.likelihood.log_scale.fill_(math.log(noise))
    for p in [*m.decoder.parameters(), *m.likelihood.parameters(), *m.prior.parameters()]:
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(100 + seed)

    def draw(n: int) -> Tensor:
        with torch.no_grad():
            z, _ = m.prior.sample(n, g)
            return m.likelihood.sample(m.decoder(z), g)

    x_eval = draw(64)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    start = time.time()
    for i in range(steps):
        m.training_step(draw(128), opt, StepContext(i, steps, g))
    m.eval()
    exact = log_px(m, x_eval)
    with torch.no_grad():
        elbo = torch.stack([m.elbo_terms(x_eval, g)["elbo"] for _ in range(200)]).mean(0)
    return float((exact - elbo).mean()), time.time() - start


def parse(spec: str) -> tuple[str, dict]:
    method, *pairs = spec.split(":")
    options = {}
    for pair in pairs:
        key, value = pair.split("=")
        options[key] = value if key in STRING_OPTIONS else int(value) if value.isdigit() else float(value)
    return method, options


if __name__ == "__main__":
    torch.set_num_threads(1)
    case, steps = sys.argv[1], int(sys.argv[2])
    seeds = [int(s) for s in os.environ.get("SEEDS", "0,1").split(",")]
    lr = float(os.environ.get("LR", "1e-3"))
    for spec in sys.argv[3].split(","):
        method, options = parse(spec)
        gaps = [run(case, method, seed, steps, lr, **options) for seed in seeds]
        print(case, spec, " ".join(f"{gap:.3f}" for gap, _ in gaps), f"{gaps[0][1]:.0f}s", flush=True)
