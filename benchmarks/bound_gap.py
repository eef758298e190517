"""How tight is each method's ELBO? A toy model whose log p(x) is computed by quadrature.

p(z) = the paper's square prior (2-D), p(x|z) = N(MLP(z), 0.3^2 I) with a random MLP (5-D x).
Each method is fitted to 64 points drawn from the model (decoder and likelihood are trained too),
then log p(x) (grid quadrature over z) is compared with the Monte-Carlo ELBO (400 draws per x).
Usage:  python benchmarks/bound_gap.py [--steps 1500]
"""

from __future__ import annotations

import argparse
import math

import torch

from ddvi.methods import StepContext, build_method

CASES = [("aevb", "full"), ("ddvi", "none"), ("ddvi", "latent"), ("ddvi", "full")]


def log_px(model, x: torch.Tensor, lo: float = -1.6, hi: float = 1.6, n: int = 641) -> torch.Tensor:
    g = torch.linspace(lo, hi, n)
    zz = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        lp, out = model.prior.log_prob(zz), model.decoder(zz)
        vals = [torch.logsumexp(model.likelihood.log_prob(xi.expand(len(zz), -1), out) + lp, 0)
                for xi in x]
    return torch.stack(vals) + math.log(float(g[1] - g[0]) ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    print(f"{'method':<20}{'log p(x)':>10}{'ELBO':>10}{'gap':>8}   (nats per example, 16 points)")
    for method, sleep in CASES:
        torch.manual_seed(0)
        model = build_method(method, 5, prior="square", likelihood="gaussian", hidden=(32,),
                             sleep=sleep, timesteps=8, beta_reg=1.0, prior_weight=1.0, fantasy="mean")
        with torch.no_grad():
            model.likelihood.log_scale.fill_(math.log(0.3))
            z, _ = model.prior.sample(64, torch.Generator().manual_seed(3))
            x = model.likelihood.sample(model.decoder(z))
        opt, g = model.configure_optimizer(3e-3), torch.Generator().manual_seed(0)
        for i in range(args.steps):
            model.training_step(x, opt, StepContext(i, args.steps, g))
        model.eval()
        exact = log_px(model, x[:16])
        with torch.no_grad():
            est = torch.stack([model.elbo_terms(x[:16], g)["elbo"] for _ in range(400)]).mean(0)
        name = method if method == "aevb" else f"ddvi (sleep={sleep})"
        print(f"{name:<20}{float(exact.mean()):>10.3f}{float(est.mean()):>10.3f}"
              f"{float((exact - est).mean()):>8.3f}")


if __name__ == "__main__":
    main()
