"""Fit methods x priors x seeds on one dataset and tabulate them in the layout of the paper's Table 1
(unsupervised) or Table 2 (semi-supervised, with ``n_labels``).

Every finished fit is cached under ``OUT/fits/<key>/`` (key = hash of its full configuration), so
an interrupted comparison resumes and a rerun only computes what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddvi.bench.paper import LATENT_NLL_FLOOR, TABLE1, TABLE2
from ddvi.metrics import mean_ci

TITLES = {
    "elbo": "ELBO (lower bound, nats per example)",
    "elbo_per_pixel_rec": "ELBO as the paper computes it (reconstruction per pixel; not a bound)",
    "mmd": "MMD (paper kernel)",
    "latent_nll": "Latent NLL (small-bandwidth KDE protocol, recipe-only prior samples)",
    "knn_accuracy": "kNN-20 accuracy (all training labels, reference notes 5.4)",
    "accuracy": "Classifier q(l|x) accuracy on the test set",
}
# metric -> (key of its protocol in a fit's result, what to say when no fit names one)
PROTOCOL_KEYS: dict[str, tuple[str, str]] = {
    "elbo": ("elbo_protocol", "lower bound on log p(x), nats per example, over the test set"),
    "elbo_per_pixel_rec": ("elbo_per_pixel_rec_protocol",
                           "the paper's figure: reconstruction averaged over pixels, other terms "
                           "per example (not a bound)"),
    "mmd": ("mmd_protocol", "paper kernel sum_s exp(-d^2/(2s)), s in (2,5,10,20,40,80), biased"),
    "latent_nll": ("latent_nll_protocol", "KDE of the test latents scoring recipe-only prior "
                   "samples (reference notes 5.3)"),
    "knn_accuracy": ("knn_protocol", "kNN-20 on the latents, fitted on all training labels, "
                     "scored on the test set (reference notes 5.4)"),
    "accuracy": ("accuracy_protocol", "the model's classifier q(l|x) on the test set"),
}
NLL_FLOOR_NOTE = ("the same protocol with recipe-only prior samples in place of the posterior "
                  "draws (the prior scored against itself, as many latents as test examples); a "
                  "model's latent NLL reads as its distance above this floor. Reference floor: "
                  "the paper's protocol at 10 000 latents (reference notes 5.3)")


def has_current_nll(result: dict[str, Any]) -> bool:
    """Whether a fit's latent NLL comes from the current protocol (recipe-only prior samples,
    floor beside it); fits cached before it scored prior samples with kernel noise."""
    return result.get("latent_nll_floor") is not None


def metric_protocol_lines(metrics: Sequence[str], results: Sequence[dict[str, Any]]) -> list[str]:
    """A Markdown list naming the protocol of each metric, as the fits' results name them."""
    lines = ["Metrics (the protocol behind each number of this table):"]
    for metric in metrics:
        key, fallback = PROTOCOL_KEYS[metric]
        named = [r.get(key) for r in results if r.get(metric) is not None and r.get(key)
                 and (metric != "latent_nll" or has_current_nll(r))]
        lines.append(f"- {TITLES[metric]}: {' | '.join(dict.fromkeys(named)) or fallback}.")
        if metric == "latent_nll":
            lines.append(f"- Latent NLL floor: {NLL_FLOOR_NOTE}.")
    return lines


LAYOUTS = {  # table -> (metrics, paper numbers)
    "table1": (("elbo", "elbo_per_pixel_rec", "mmd", "latent_nll"), TABLE1),
    "table2": (("elbo", "elbo_per_pixel_rec", "knn_accuracy", "latent_nll", "accuracy"), TABLE2),
}


@dataclass(frozen=True)
class FitSpec:
    """One fit of the grid; its hash names the cache folder."""

    method: str
    prior: str
    seed: int
    epochs: int
    n_train: int | None = None
    dataset: str = "mnist"
    mmd_samples: int = 2000
    options: dict[str, Any] = field(default_factory=dict)
    n_labels: int | None = None

    def key(self) -> str:
        from ddvi import __version__
        from ddvi.estimator import DDVI

        model = DDVI(method=self.method, prior=self.prior, epochs=self.epochs, seed=self.seed,
                     **self.options)
        params = {k: v for k, v in model.get_params().items()
                  if k not in ("verbose", "run_dir", "threads", "device", "compile")}  # not fitted
        blob = json.dumps({**asdict(self), "params": params, "version": __version__},
                          sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_fit(spec: FitSpec, data: tuple, cache: Path, verbose: bool = False,
            device: str = "auto") -> dict[str, Any]:
    """Fit and evaluate one spec on ``device``, or return its cached metrics."""
    from ddvi.data import subset
    from ddvi.estimator import DDVI
    from ddvi.report import evaluate, write_json

    folder = cache / spec.key()
    done = folder / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    (x_train, y_train), (x_test, y_test) = data
    x_fit, y_fit = subset(x_train, y_train, spec.n_train, spec.seed)
    model = DDVI(method=spec.method, prior=spec.prior, epochs=spec.epochs, seed=spec.seed,
                 verbose=verbose, run_dir=str(folder), device=device, **spec.options)
    start = time.perf_counter()
    y_semi = None
    if spec.n_labels is not None:
        from ddvi.tasks import select_labels

        y_semi = select_labels(y_fit, spec.n_labels, seed=spec.seed, balanced=True)
    model.fit(x_fit, y_semi, resume=True)
    seconds = time.perf_counter() - start
    model.save(folder / "model")
    m = evaluate(model, x_test, y_test, x_fit, y_fit, mmd_samples=spec.mmd_samples, seed=spec.seed,
                 dataset=spec.dataset)
    m |= {"seed": spec.seed, "train_seconds": seconds, "spec": asdict(spec)}
    tmp = folder / "metrics.json.tmp"
    write_json(m, tmp)
    os.replace(tmp, done)
    return m


def aggregate(results: Sequence[dict[str, Any]],
              metrics: Sequence[str] = tuple(TITLES)) -> dict[str, dict[str, dict[str, Any]]]:
    """metric -> method -> prior -> {mean, ci, n} over seeds (t-interval); with ``latent_nll``
    also ``latent_nll_floor`` -> prior -> cell (the prior scored against itself, over seeds).
    Latent NLLs of fits cached before the recipe-only protocol (no floor) are left out."""
    table: dict[str, Any] = {}
    for metric in metrics:
        for r in results:
            vals = [s[metric] for s in results if s["method"] == r["method"]
                    and s["prior"] == r["prior"] and s.get(metric) is not None
                    and (metric != "latent_nll" or has_current_nll(s))]
            table.setdefault(metric, {}).setdefault(r["method"], {})[r["prior"]] = _cell(vals)
    if "latent_nll" in metrics:
        for prior in dict.fromkeys(r["prior"] for r in results):
            by_seed = {s.get("seed"): s["latent_nll_floor"] for s in results
                       if s["prior"] == prior and has_current_nll(s)}
            table.setdefault("latent_nll_floor", {})[prior] = _cell(list(by_seed.values()))
    return table


def _cell(vals: Sequence[float]) -> dict[str, Any]:
    cell: dict[str, Any] = {"n": len(vals), "mean": None, "ci": None}
    if vals:
        mean, ci = mean_ci(list(vals))
        cell |= {"mean": mean, "ci": None if np.isnan(ci) else ci}
    return cell


def _fmt(mean: float | None, ci: float | None) -> str:
    if mean is None:
        return "N/A"
    return f"{mean:.2f}" if ci is None else f"{mean:.2f} ± {ci:.2f}"


def to_markdown(table: dict, methods: Sequence[str], priors: Sequence[str], header: str,
                layout: str = "table1") -> str:
    lines = [header, ""]
    metrics, paper_numbers = LAYOUTS[layout]
    for metric in metrics:
        paper = paper_numbers.get(metric, {})
        lines += [f"### {TITLES[metric]}", "", "| method | " + " | ".join(priors) + " |",
                  "|---|" + "---|" * len(priors)]
        for method in methods:
            cells = []
            for prior in priors:
                c = table.get(metric, {}).get(method, {}).get(prior)
                ours = "–" if c is None else _fmt(c["mean"], c["ci"])
                p = paper.get(method, {}).get(prior, "absent")
                if p != "absent":
                    ours += " (paper: " + ("N/A" if p is None else _fmt(*p)) + ")"
                cells.append(ours)
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        if metric == "latent_nll":
            cells = []
            for prior in priors:
                c = table.get("latent_nll_floor", {}).get(prior)
                text = "–" if c is None or c["mean"] is None else _fmt(c["mean"], c["ci"])
                if prior in LATENT_NLL_FLOOR:
                    text += f" (reference floor, 10 000 latents: {LATENT_NLL_FLOOR[prior]:.2f})"
                cells.append(text)
            lines.append("| floor: prior vs itself | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def compare(methods: Sequence[str], priors: Sequence[str], seeds: Sequence[int], epochs: int,
            out: str | Path, n_train: int | None = None, dataset: str = "mnist",
            data_dir: str | None = None, mmd_samples: int = 2000, verbose: bool = True,
            options: dict[str, dict[str, Any]] | None = None,
            n_labels: int | None = None, device: str = "auto") -> dict[str, Any]:
    """Run (or reuse) every fit of the grid on ``device``; write ``tableN.md`` and ``tableN.json``
    into ``out`` (Table 2, semi-supervised with ``n_labels`` class-balanced labels, when n_labels
    is given)."""
    from tqdm.auto import tqdm

    from ddvi.data import load_dataset

    out = Path(out)
    data = load_dataset(dataset, data_dir)
    specs = [FitSpec(m, p, s, epochs, n_train, dataset, mmd_samples, (options or {}).get(m, {}),
                     n_labels) for p in priors for m in methods for s in seeds]
    layout = "table1" if n_labels is None else "table2"
    results = []
    for spec in tqdm(specs, desc="fits", disable=not verbose):
        results.append(run_fit(spec, data, out / "fits", device=device))
    table = aggregate(results, LAYOUTS[layout][0])
    scale = f"{epochs} epochs on {n_train or 'all'} training images"
    if n_labels is not None:
        scale += f", {n_labels} labels (class-balanced)"
    name = {"table1": "Table 1", "table2": "Table 2"}[layout]
    header = (f"## {name} layout: {dataset}, {scale}, seeds {list(seeds)} "
              "(mean ± 95% t-interval)\n\n"
              "Paper numbers (in parentheses) come from 200-epoch runs; its ELBO averages the "
              "reconstruction over pixels, so compare it with the second block, not the first.\n\n"
              + "\n".join(metric_protocol_lines(LAYOUTS[layout][0], results)))
    md = to_markdown(table, methods, priors, header, layout)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{layout}.md").write_text(md + "\n")
    (out / f"{layout}.json").write_text(json.dumps({"table": table, "fits": results}, indent=1,
                                                   default=float))
    return {"table": table, "markdown": md, "fits": results, "layout": layout}
