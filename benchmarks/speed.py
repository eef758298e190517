"""Training steps per second of every method at the paper's MNIST settings, and the fraction of
this machine's measured matmul throughput that a step reaches.

Settings (appendix G/H): batch 128, MLP encoder/decoder 2x1000, denoiser 5x128, T = 20, 2-D
pinwheel prior; every method with torch's fused Adam (``ddvi.methods.base.adam``), DDVI also
with its chain compiled (``compile=True``; compiled once in the warm-up, not timed) and without
its default guidance (``guidance="none"``: the chain the paper describes). The ``floor`` column
is a step's FLOPs over AEVB's: the time ratio it would have at AEVB's own GFLOP/s.
Usage:  python benchmarks/speed.py [--steps 40] [--json out.json] [--under-load]

``--under-load`` also measures AEVB and DDVI with one busy-looping neighbour process on the
machine, with torch's default thread count (one per core) and with ``ddvi``'s default
(``threads="auto"``: the cores the neighbour leaves free), against the idle machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ddvi.methods import StepContext, build_method
from ddvi.threads import available_cores, configure_threads

CONFIGS = [
    ("aevb", {}),
    ("aevb-iaf", {}),
    ("aaeb", {}),
    ("h-aevb", {}),
    ("pis", {}),
    ("ddvi", {"sleep": "none"}),
    ("ddvi", {"sleep": "none", "guidance": "none"}),
    ("ddvi", {"sleep": "latent"}),
    ("ddvi", {"sleep": "full"}),
    ("ddvi", {"sleep": "none", "compile": True}),
    ("ddvi", {"sleep": "full", "compile": True}),
]


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best observed float32 GFLOP/s of an n x n matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def prepare(method: str, options: dict, batch: int = 128) -> dict:
    """A model at the paper's settings, warmed up, with its FLOPs per training step counted."""
    torch.manual_seed(0)
    options = dict(options)
    compiled = options.pop("compile", False)
    model = build_method(method, 784, prior="pinwheel", timesteps=20, **options)
    opt = model.configure_optimizer(2e-4 if method == "aaeb" else 1e-4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 784, generator=g) > 0.5).float()
    ctx = StepContext(0, 10, g)
    for _ in range(5):  # warm-up (also builds the prior's density table)
        model.training_step(x, opt, ctx)
    with FlopCounterMode(display=False) as counter:
        model.training_step(x, opt, ctx)
    if compiled:  # DDVI(compile=True), compiled here, untimed (after the FLOP count: a compiled
        model.posterior.compile_chain()  # region run under FlopCounterMode falls back to eager)
        for _ in range(3):
            model.training_step(x, opt, ctx)
    name = method if not options else f"{method} (sleep={options['sleep']}" + \
        (", unguided" if options.get("guidance") == "none" else "") + \
        (", compiled)" if compiled else ")")
    return {"method": name, "step": lambda: model.training_step(x, opt, ctx),
            "gflop_per_step": counter.get_total_flops() / 1e9}


def bench_interleaved(configs: list[tuple[str, dict]], steps: int, rounds: int = 5) -> list[dict]:
    """Seconds per step of every config, measured in ``rounds`` interleaved rounds of
    ``steps // rounds`` steps each (the median round counts), so that a slow phase of the
    machine hits every method alike instead of whichever ran then."""
    models = [prepare(m, o) for m, o in configs]
    per_round = max(1, steps // rounds)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for i, m in enumerate(models):
            start = time.perf_counter()
            for _ in range(per_round):
                m["step"]()
            times[i].append((time.perf_counter() - start) / per_round)
    rows = []
    for m, ts in zip(models, times):
        seconds = statistics.median(ts)
        rows.append({"method": m["method"], "steps_per_second": 1 / seconds,
                     "ms_per_step": 1e3 * seconds, "ms_per_step_rounds": [1e3 * t for t in ts],
                     "gflop_per_step": m["gflop_per_step"],
                     "achieved_gflops": m["gflop_per_step"] / seconds})
    return rows


def bench(method: str, options: dict, steps: int) -> dict:
    """One config alone (the under-load figures)."""
    return bench_interleaved([(method, options)], steps, rounds=1)[0]


def under_load(steps: int) -> list[dict]:
    """Steps/s of AEVB and DDVI (sleep="none"), idle and beside one busy-looping process, with
    torch's default threads (all cores) and with threads="auto" (chosen after the neighbour
    starts, as a fit launched on a busy machine would)."""
    rows = []
    for load in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load else None
        try:
            time.sleep(1.0)
            for threads in ("default", "auto"):
                if threads == "default":
                    torch.set_num_threads(available_cores())
                else:
                    configure_threads("auto")
                n = torch.get_num_threads()
                for method, options in (("aevb", {}), ("ddvi", {"sleep": "none"})):
                    r = bench(method, options, steps)
                    rows.append({"method": r["method"], "neighbour": load, "threads": threads,
                                 "torch_threads": n, "steps_per_second": r["steps_per_second"]})
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    torch.set_num_threads(available_cores())
    idle = {(r["method"], r["threads"]): r["steps_per_second"] for r in rows if not r["neighbour"]}
    best_idle = {m: max(v for (mm, _), v in idle.items() if mm == m) for m, _ in idle}
    print(f"\n{'method':<30}{'neighbour':>10}{'threads':>9}{'n':>3}{'steps/s':>9}{'of idle':>9}")
    for r in rows:
        r["fraction_of_idle"] = r["steps_per_second"] / best_idle[r["method"]]
        print(f"{r['method']:<30}{'busy' if r['neighbour'] else 'none':>10}{r['threads']:>9}"
              f"{r['torch_threads']:>3}{r['steps_per_second']:>9.1f}{r['fraction_of_idle']:>9.0%}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--under-load", action="store_true",
                        help="also measure beside one busy neighbour process (see above)")
    args = parser.parse_args()
    peak = matmul_peak()
    rows = bench_interleaved(CONFIGS, args.steps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor()}; "
          f"median of 5 interleaved rounds of {max(1, args.steps // 5)} steps")
    print(f"measured matmul peak: {peak:.1f} GFLOP/s (float32, 2048x2048)")
    aevb = next(r for r in rows if r["method"] == "aevb")
    print(f"{'method':<30}{'steps/s':>9}{'ms/step':>9}{'vs AEVB':>9}{'GFLOP/step':>12}"
          f"{'floor':>8}{'GFLOP/s':>9}{'of peak':>9}")
    for r in rows:
        r["fraction_of_peak"] = r["achieved_gflops"] / peak
        r["time_vs_aevb"] = r["ms_per_step"] / aevb["ms_per_step"]
        # the time ratio if this step ran at AEVB's own GFLOP/s: below it only by beating AEVB's
        # efficiency (no fast path can go under it without changing the arithmetic)
        r["flops_vs_aevb"] = r["gflop_per_step"] / aevb["gflop_per_step"]
        print(f"{r['method']:<30}{r['steps_per_second']:>9.1f}{r['ms_per_step']:>9.1f}"
              f"{r['time_vs_aevb']:>8.2f}x{r['gflop_per_step']:>12.2f}{r['flops_vs_aevb']:>7.2f}x"
              f"{r['achieved_gflops']:>9.1f}{r['fraction_of_peak']:>9.0%}")
    load_rows = under_load(args.steps) if args.under_load else None
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_peak_gflops": peak, "rows": rows, "under_load": load_rows}, f,
                      indent=1)


if __name__ == "__main__":
    main()
