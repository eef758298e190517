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
           ``extra=geometric`` (the geometric noise schedule).

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

from ddvi.methods import Method, StepContext  # noqa: E402


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


def fit(case_name: str, method: str, seed: int, steps: int, lr_mult: float = 1.0,
        timesteps: int | None = None, extra: str | None = None) -> dict[str, Any]:
    case = bg.CASES[case_name]
    truth, _ = bg.true_model_checks(case, [seed])
    x_eval, log_px = truth[(case.name, seed)]
    g = torch.Generator().manual_seed(seed)
    model = bg.build(method, case, "frozen", timesteps, seed)
    if extra:
        EXTRAS[extra](model)
    denoiser = getattr(model.posterior, "denoiser", None)
    if lr_mult != 1.0 and denoiser is not None:
        ids = {id(p) for p in denoiser.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        opt = torch.optim.Adam([{"params": rest, "lr": bg.LR},
                                {"params": list(denoiser.parameters()), "lr": bg.LR * lr_mult}])
    else:
        opt = model.configure_optimizer(bg.LR)
    model.train()
    start = time.time()
    for step in range(steps):
        model.training_step(bg.sample_data(case, model.prior, bg.BATCH, g), opt,
                            StepContext(step, steps, g))
    elbo, se = bg.mc_elbo(model, x_eval, 256, g)
    res: dict[str, Any] = {"case": case_name, "method": method, "seed": seed, "steps": steps,
                           "lr_mult": lr_mult, "timesteps": timesteps, "extra": extra,
                           "gap": round(float((log_px - elbo).mean()), 3), "se": round(se, 3),
                           "seconds": round(time.time() - start)}
    if denoiser is not None:
        out = denoiser.out
        with torch.no_grad():
            saved = out.weight.clone(), out.bias.clone()
            out.weight.zero_()
            out.bias.zero_()
        gaussian_elbo, _ = bg.mc_elbo(model, x_eval, 256, g)
        with torch.no_grad():
            out.weight.copy_(saved[0])
            out.bias.copy_(saved[1])
        res["chain_gain"] = round(float((elbo - gaussian_elbo).mean()), 3)
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
            options[key] = value if key == "extra" else float(value) if key == "lr_mult" else int(value)
        for seed in (int(s) for s in seeds.split(",")):
            print(json.dumps(fit(case, method, seed, steps, **options)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
