"""The paper's tables as grids of fits: ``ddvi bench TABLE --scale smoke|cpu|mid|paper``.

Each table is a list of JSON configs (one fit each, see :mod:`ddvi.bench.tasks`), run by
:func:`ddvi.bench.runner.run_grid` (cached by config, so a rerun only computes what is missing;
sequential or on Dask), then tabulated as Markdown and JSON with mean ± 95% t-interval over
seeds beside the paper's numbers, plus a figure of the latent maps.

Scales: ``paper`` uses the paper's settings (appendix H, reference notes section 7); ``cpu`` is
sized for a 2-core CPU in well under an hour per table, but its few hundred steps per fit leave
every model near posterior collapse; ``mid`` trains on all images for 10 epochs (~2 h per MNIST
table with two workers on 2 cores); ``smoke`` checks the whole pipeline in about a minute.
The reductions are listed in :data:`SCALES` and printed in every table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddvi.bench import paper
from ddvi.bench.compare import has_current_nll, metric_protocol_lines
from ddvi.metrics import mean_ci

__all__ = ["SCALES", "TABLES", "TableSpec", "run_bench", "table_configs"]

PRIORS = ("pinwheel", "swiss_roll", "square")
GENOTYPE_MODELS = ("aevb", "aevb-iaf", "aaeb", "ddvi")
EMBEDDING_ROWS = ("pca", "tsne", "umap")


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    kind: str  # "image" | "genotype" | "timing"
    rows: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    dataset: str | None = None
    semi: bool = False
    row_options: dict[str, dict[str, Any]] = field(default_factory=dict)


TABLES: dict[str, TableSpec] = {
    "table1": TableSpec("table1", "MNIST, unsupervised", "image",
                        ("aevb", "aevb-iaf", "aaeb", "h-aevb", "pis", "ddvi", "aevb-elbo",
                         "aevb-iaf-elbo", "h-aevb-elbo", "pis-elbo", "ddvi-elbo"),
                        ("elbo", "elbo_per_pixel_rec", "mmd", "latent_nll"), "mnist"),
    "table2": TableSpec("table2", "MNIST, semi-supervised", "image",
                        ("aevb", "aevb-iaf", "aaeb", "ddvi", "aevb-elbo", "aevb-iaf-elbo",
                         "ddvi-elbo"),
                        ("elbo", "elbo_per_pixel_rec", "knn_accuracy", "latent_nll", "accuracy"),
                        "mnist", semi=True),
    "table3": TableSpec("table3", "1000 Genomes clustering (20 clusters)", "genotype",
                        GENOTYPE_MODELS + EMBEDDING_ROWS),
    "table5": TableSpec("table5", "1000 Genomes: NMI against training time", "timing",
                        ("aevb", "aevb-iaf", "aaeb", "ddvi-t5", "ddvi-t10", "ddvi-t20", "ddvi-t50")),
    "table7": TableSpec("table7", "CIFAR-10, unsupervised", "image",
                        ("aevb", "aevb-iaf", "aaeb", "h-aevb", "pis", "ddvi"),
                        ("elbo", "elbo_per_pixel_rec", "latent_nll"), "cifar10"),
    "table8": TableSpec("table8", "CIFAR-10, semi-supervised", "image", ("aevb", "aevb-iaf", "aaeb", "ddvi"),
                        ("elbo", "elbo_per_pixel_rec", "knn_accuracy", "latent_nll", "accuracy"),
                        "cifar10", semi=True),
    "table9": TableSpec("table9", "MNIST, unsupervised, with DDVI without its sleep term", "image",
                        ("aevb", "aevb-iaf", "h-aevb", "ddvi", "ddvi-nosleep"),
                        ("latent_nll", "elbo", "knn_accuracy"), "mnist",
                        row_options={"ddvi": {"sleep": "full"}}),  # the paper's DDVI has its sleep
}
PAPER_NUMBERS = {"table1": paper.TABLE1, "table2": paper.TABLE2, "table7": paper.TABLE7,
                 "table8": paper.TABLE8, "table9": paper.TABLE9}

# scale -> settings. Image tables: training rows, test rows, epochs, MMD samples, labels (MNIST /
# CIFAR; other image sets, e.g. fashion-mnist, use the MNIST count), options. Genotype tables:
# SNPs, PCs, epochs, Table 5 time marks (s) and chunk.
SCALES: dict[str, dict[str, Any]] = {
    "smoke": {"n_train": 512, "n_test": 512, "epochs": 1, "semi_epochs": 1, "mmd_samples": 200,
              "labels": {"mnist": 100, "cifar10": 100}, "options": {"warmup_steps": 20},
              "n_snps": 2000, "n_components": 50, "genotype_epochs": 2,
              "time_marks": [1.0, 2.0], "max_epochs": 4, "chunk_epochs": 1, "seeds": [0, 1]},
    "cpu": {"n_train": 10000, "n_test": 2000, "epochs": 3, "semi_train": 20000, "semi_epochs": 5,
            "mmd_samples": 2000, "labels": {"mnist": 1000, "cifar10": 10000}, "options": {},
            "n_snps": 20000, "n_components": 1000, "genotype_epochs": 60,
            "time_marks": [30.0 * k for k in range(1, 7)], "max_epochs": 5000, "chunk_epochs": 10,
            "seeds": [0, 1, 2]},
    # all training images, the full test set, and enough epochs that AEVB's KL warm-up (80 % of
    # training) is over and the latents leave posterior collapse; ~2 h per MNIST table on 2 cores
    "mid": {"n_train": None, "n_test": None, "epochs": 10, "semi_epochs": 10, "mmd_samples": 10000,
            "labels": {"mnist": 1000, "cifar10": 10000}, "options": {},
            "n_snps": 20000, "n_components": 1000, "genotype_epochs": 100,
            "time_marks": [60.0 * k for k in range(1, 7)], "max_epochs": 10000, "chunk_epochs": 10,
            "seeds": [0]},
    "paper": {"n_train": None, "n_test": None, "epochs": 200, "semi_epochs": 50, "mmd_samples": 10000,
              "labels": {"mnist": 1000, "cifar10": 10000}, "options": {},
              "n_snps": None, "n_components": 1000, "genotype_epochs": 200,
              "time_marks": [600.0 * k for k in range(1, 7)], "max_epochs": 100000,
              "chunk_epochs": 10, "seeds": [0, 1, 2, 3, 4]},
}


#: The paper's semi-supervised DDVI (appendix H; reference notes 3.6.7), used at the ``paper``
#: scale only: KL weight 0.1 per pixel (CIFAR-10: 0.5; as beta_reg in nats per example), T = 100,
#: batch 1 024, 30 epochs. Other rows and scales keep the table's shared settings.
SEMI_DDVI_PAPER: dict[str, Any] = {
    "epochs": 30, "options": {"timesteps": 100, "batch_size": 1024},
    "beta_reg": {"mnist": 0.1 * 784, "fashion-mnist": 0.1 * 784, "cifar10": 0.5 * 3072},
}


#: Rows ending in this train on the plain ELBO (KL weight 1 and prior weight 1, in nats per
#: example; AEVB's KL warm-up still ramps up to it), so bounds compare at equal objective weights.
ELBO_SUFFIX = "-elbo"


def _row_method(row: str) -> tuple[str, dict[str, Any]]:
    """Table row -> (method, estimator options): ``ddvi-nosleep``, ``ddvi-t10``, ``aevb-elbo``..."""
    if row.endswith(ELBO_SUFFIX):
        method, options = _row_method(row.removesuffix(ELBO_SUFFIX))
        return method, {**options, "beta_reg": 1.0, "prior_weight": 1.0}
    if row == "ddvi-nosleep":
        return "ddvi", {"sleep": "none"}
    if row.startswith("ddvi-t"):
        return "ddvi", {"timesteps": int(row[6:])}
    return row, {}


def table_configs(name: str, scale: str, seeds: Sequence[int] | None = None, *,
                  rows: Sequence[str] | None = None, priors: Sequence[str] = PRIORS,
                  dataset: str | None = None, data_dir: str | None = None,
                  cohort: str = "synthetic-1kg") -> list[dict[str, Any]]:
    """Every fit of table ``name`` at ``scale`` as a JSON config."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; choose one of {sorted(TABLES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {tuple(SCALES)}")
    spec, s = TABLES[name], SCALES[scale]
    seeds = list(s["seeds"] if seeds is None else seeds)
    rows = list(spec.rows if rows is None else rows)
    unknown = [r for r in rows if r not in spec.rows]
    if unknown:
        raise ValueError(f"{name} has no rows {unknown}; its rows are {list(spec.rows)}")
    configs = []
    for row in rows:
        method, options = _row_method(row)
        options = {**options, **spec.row_options.get(row, {})}
        for seed in seeds:
            # no table name in the config: a fit shared by two tables (table1/table9) runs once
            base = {"scale": scale, "row": row, "method": method, "seed": seed}
            if spec.kind == "image":
                ds = dataset or spec.dataset
                opts = {**s["options"], **options}
                if ds == "cifar10":
                    opts["arch"] = "conv"
                epochs = s["semi_epochs"] if spec.semi else s["epochs"]
                if spec.semi and scale == "paper" and method == "ddvi":
                    opts = {**SEMI_DDVI_PAPER["options"],  # a row's own options (-elbo) win
                            "beta_reg": SEMI_DDVI_PAPER["beta_reg"][ds], **opts}
                    epochs = SEMI_DDVI_PAPER["epochs"]
                for prior in priors:
                    configs.append({**base, "task": "image", "prior": prior, "dataset": ds,
                                    "data_dir": data_dir, "options": opts,
                                    "n_train": s.get("semi_train", s["n_train"]) if spec.semi
                                    else s["n_train"], "n_test": s["n_test"],
                                    "epochs": epochs,
                                    "mmd_samples": s["mmd_samples"],
                                    "n_labels": s["labels"].get(ds, s["labels"]["mnist"])
                                    if spec.semi else None})
                continue
            geno = {"cohort": cohort, "n_snps": s["n_snps"], "n_components": s["n_components"]}
            if method in EMBEDDING_ROWS:
                configs.append({**base, **geno, "task": "embedding"})
            elif spec.kind == "genotype":
                configs.append({**base, **geno, "task": "genotype", "epochs": s["genotype_epochs"],
                                "options": options})
            else:
                configs.append({**base, **geno, "task": "genotype", "epochs": s["max_epochs"],
                                "time_marks": s["time_marks"], "chunk_epochs": s["chunk_epochs"],
                                "options": options})
    return configs


# ----------------------------------------------------------------------------- tabulation


def _fmt(mean: float | None, ci: float | None, digits: int = 2) -> str:
    if mean is None:
        return "N/A"
    return f"{mean:.{digits}f}" if ci is None or np.isnan(ci) else f"{mean:.{digits}f} ± {ci:.{digits}f}"


def _cell(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "ci": None}
    mean, ci = mean_ci(values)
    return {"n": len(values), "mean": mean, "ci": None if np.isnan(ci) else ci}


def _scale_line(name: str, scale: str, configs: list[dict]) -> str:
    c = configs[0]
    seeds = sorted({cfg["seed"] for cfg in configs})
    if TABLES[name].kind == "image":
        what = (f"{c['dataset']}, {c['n_train'] or 'all'} training / {c['n_test'] or 'all'} test "
                f"images, {c['epochs']} epochs, MMD on {c['mmd_samples']} samples")
        if c.get("n_labels"):
            what += f", {c['n_labels']} class-balanced labels"
    else:
        what = (f"cohort {c['cohort']} ({c['n_snps'] or 'all'} SNPs, {c['n_components']} PCs / 30)")
        if "time_marks" in c:
            what += f", NMI at {', '.join(f'{m:g}' for m in c['time_marks'])} s of training"
        elif "epochs" in c:
            what += f", {c['epochs']} epochs"
    return f"Scale `{scale}`: {what}; seeds {seeds} (mean ± 95% t-interval over seeds)."


GENOTYPE_PROTOCOLS = (
    "gmm20: a 20-component full-covariance Gaussian mixture (random_state 2, n_init 10, "
    "reg_covar 1e-2) fitted on the 2-D map of every individual, its clusters scored against the "
    "labels (the paper's protocol, reference notes 5.5)",
    "model_clusters: the model's own 20 clusters (its cluster assignment of each individual)",
    "purity: fraction of individuals in their cluster's majority label; completeness and NMI: "
    "sklearn's completeness_score and normalized_mutual_info_score (arithmetic mean)",
)
TIMING_PROTOCOL = ("NMI: gmm20 protocol (20-component full-covariance GMM on the 2-D map, reference "
                   "notes 5.5) against the 26 populations, scored whenever the training time "
                   "(scoring excluded) passes a mark")


def _has_current_nll(record: dict) -> bool:
    return has_current_nll(record["result"])


def _protocol_lines(name: str, records: list[dict]) -> list[str]:
    """Which protocol computed each metric of the table (as the fits name them)."""
    spec = TABLES[name]
    if spec.kind == "image":
        lines = metric_protocol_lines(spec.metrics, [r["result"] for r in records])
        if any(row.endswith(ELBO_SUFFIX) for row in spec.rows):
            lines.append(f"- Rows `…{ELBO_SUFFIX}` train on the plain ELBO (KL weight 1 and prior "
                         "weight 1, nats per example); the other rows use the paper's weights, "
                         "which differ by method, so their bounds are not compared at equal "
                         "objectives.")
        return lines
    lines = ["Metrics (the protocol behind each number of this table):"]
    if spec.kind == "genotype":
        lines += [f"- {text}." for text in GENOTYPE_PROTOCOLS]
    else:
        lines.append(f"- {TIMING_PROTOCOL}.")
    return lines


def _floor_row(records: list[dict], priors: list[str]) -> tuple[str, dict]:
    cells, table = [], {}
    for prior in priors:
        by_seed = {r["config"]["seed"]: r["result"]["latent_nll_floor"] for r in records
                   if r["config"]["prior"] == prior and _has_current_nll(r)}
        c = _cell(list(by_seed.values()))
        table[prior] = c
        text = _fmt(c["mean"], c["ci"]) if by_seed else "N/A"
        ref = paper.LATENT_NLL_FLOOR.get(prior)
        if ref is not None:
            text += f" (reference floor, 10 000 latents: {ref:.2f})"
        cells.append(text)
    return "| floor: prior vs itself | " + " | ".join(cells) + " |", table


def _image_table(name: str, records: list[dict]) -> tuple[list[str], dict]:
    from ddvi.bench.compare import TITLES

    spec = TABLES[name]
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    priors = list(dict.fromkeys(r["config"]["prior"] for r in records))
    ref = PAPER_NUMBERS.get(name, {})
    lines, table = [], {}
    for metric in spec.metrics:
        lines += [f"### {TITLES[metric]}", "", "| method | " + " | ".join(priors) + " |",
                  "|---|" + "---|" * len(priors)]
        for row in rows:
            cells = []
            for prior in priors:
                vals = [r["result"][metric] for r in records if r["config"]["row"] == row
                        and r["config"]["prior"] == prior and r["result"].get(metric) is not None
                        and (metric != "latent_nll" or _has_current_nll(r))]
                c = _cell(vals)
                table.setdefault(metric, {}).setdefault(row, {})[prior] = c
                text = _fmt(c["mean"], c["ci"]) if vals else "N/A"
                p = ref.get(metric, {}).get(row, {}).get(prior, "absent")
                if p != "absent":
                    text += " (paper: " + ("N/A" if p is None else _fmt(*p)) + ")"
                cells.append(text)
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        if metric == "latent_nll":
            floor, table["latent_nll_floor"] = _floor_row(records, priors)
            lines.append(floor)
            stale = sum(1 for r in records if r["result"].get("latent_nll") is not None
                        and not _has_current_nll(r))
            if stale:
                lines += ["", f"{stale} cached fit(s) scored their latent NLL with the earlier "
                          "protocol (prior samples with kernel noise) and are left out of this "
                          "block: delete their folders under OUT/fits to recompute them."]
        lines.append("")
    return lines, table


def _genotype_table(records: list[dict]) -> tuple[list[str], dict]:
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    lines, table = [], {}
    for protocol, target, note in (("gmm20", "population", "the paper's protocol"),
                                   ("gmm20", "super_population", ""),
                                   ("model_clusters", "population", "the model's own 20 clusters")):
        lines += [f"### {protocol} vs {target.replace('_', '-')}s" + (f" ({note})" if note else ""),
                  "", "| method | purity | completeness | NMI | train seconds |", "|---|---|---|---|---|"]
        for row in rows:
            recs = [r for r in records if r["config"]["row"] == row]
            scored = [r["result"]["scores"].get(protocol, {}).get(target) for r in recs]
            scored = [s for s in scored if s]
            if not scored:
                continue
            cells = []
            for metric in ("purity", "completeness", "nmi"):
                c = _cell([s[metric] for s in scored])
                table.setdefault(f"{protocol}/{target}", {}).setdefault(row, {})[metric] = c
                text = _fmt(c["mean"], c["ci"])
                p = paper.TABLE3[metric].get(row) if (protocol, target) == ("gmm20", "population") else None
                cells.append(text + (f" (paper: {_fmt(*p)})" if p else ""))
            secs = np.mean([r["result"]["train_seconds"] for r in recs])
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {secs:.1f} |")
        lines.append("")
    return lines, table


def _timing_table(records: list[dict]) -> tuple[list[str], dict]:
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    marks = records[0]["config"]["time_marks"]
    lines = ["| method | " + " | ".join(f"NMI @ {m / 60:g} min" if m >= 60 else f"NMI @ {m:g} s"
                                       for m in marks) + " |",
             "|---|" + "---|" * len(marks)]
    table: dict[str, list] = {}
    for row in rows:
        cells = []
        for i, mark in enumerate(marks):
            vals = [t["nmi"] for r in records if r["config"]["row"] == row
                    for t in r["result"]["trace"] if t["mark_seconds"] == mark]
            c = _cell(vals)
            table.setdefault(row, []).append(c)
            ref = paper.TABLE5.get(row, [None] * 6)
            p = ref[i] if i < len(ref) else None
            cells.append(_fmt(c["mean"], c["ci"]) + (f" (paper: {p:.2f})" if p is not None else ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "A mark past the end of training (max epochs reached) is scored at the end."
              " The paper's marks are 10-60 minutes on a GPU; the `cpu` scale uses 0.5-3 minutes."]
    return lines, table


def _figure(name: str, records: list[dict], path: Path) -> Path | None:
    from ddvi.plot import plot_latent_grid

    first_seed = min(r["config"]["seed"] for r in records)
    panels = {}
    for r in records:
        pts = r["result"].get("points")
        if r["config"]["seed"] != first_seed or not pts:
            continue
        row, cfg = r["config"]["row"], r["config"]
        # image tables: method x prior (the paper's Figures 2-3); genotype tables: one strip
        key = (row, cfg["prior"]) if "prior" in cfg else (cfg.get("cohort", ""), row)
        panels[key] = (np.asarray(pts["z"]), pts.get("labels"))
    if not panels:
        return None
    return plot_latent_grid(panels, path, title=f"{name}: latent maps (seed {first_seed})")


def run_bench(name: str, scale: str, out: str | Path, seeds: Sequence[int] | None = None, *,
              scheduler: str | None = None, workers: int = 1, progress: bool = True,
              device: str | None = None, **grid: Any) -> dict[str, Any]:
    """Run (or reuse) every fit of the table and write ``OUT/<name>.md``, ``.json`` and ``.png``.

    ``device`` (default: ``$DDVI_BENCH_DEVICE``, else ``auto``) is where the fits compute; local
    Dask workers inherit it (with several GPUs, worker i takes GPU i mod their number), remote
    workers read their own ``$DDVI_BENCH_DEVICE``. The fit cache does not depend on it."""
    from ddvi.bench.runner import run_grid
    from ddvi.bench.tasks import check_inputs, run_task
    from ddvi.devices import resolve_device

    out = Path(out)
    configs = table_configs(name, scale, seeds, **grid)
    check_inputs(configs)
    before = os.environ.get("DDVI_BENCH_DEVICE")
    if device is not None:
        resolve_device(device)  # a typo fails here, not in every task
        os.environ["DDVI_BENCH_DEVICE"] = device
    try:
        records = run_grid(run_task, configs, out / "fits", scheduler=scheduler, workers=workers,
                           progress=progress)
    finally:
        if before is None:
            os.environ.pop("DDVI_BENCH_DEVICE", None)
        else:
            os.environ["DDVI_BENCH_DEVICE"] = before
    spec = TABLES[name]
    header = [f"## {name}: {spec.title}", "", _scale_line(name, scale, configs), "",
              *_protocol_lines(name, records), ""]
    if spec.kind == "image":
        body, table = _image_table(name, records)
        header.append("The paper's ELBO averages the reconstruction over pixels (not a bound); "
                      "compare it with the per-pixel row, not with the bound in nats.")
    elif spec.kind == "genotype":
        body, table = _genotype_table(records)
    else:
        body, table = _timing_table(records)
    data = {r["result"].get("data") for r in records if r["result"].get("data")}
    if data:
        header.append("Data: " + "; ".join(sorted(data)))
    wall = sum(r["seconds"] for r in records)
    footer = [f"{len(records)} fits, {wall:.0f} s of fitting in all (sum over fits)."]
    md = "\n".join(header + [""] + body + footer) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(md)
    (out / f"{name}.json").write_text(json.dumps(
        {"table": table, "scale": scale, "fits": [{"config": r["config"], "seconds": r["seconds"],
                                                    "result": {k: v for k, v in r["result"].items()
                                                               if k != "points"}}
                                                   for r in records]}, indent=1, default=float))
    figure = _figure(name, records, out / f"{name}.png")
    return {"markdown": md, "table": table, "records": records, "figure": figure}
