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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddvi.bench import paper
from ddvi.bench.render import ELBO_SUFFIX, latent_figure, table_markdown
from ddvi.fitting import ImageFitConfig

__all__ = ["SCALES", "TABLES", "TableSpec", "run_bench", "run_table", "table_configs"]

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
                        ("aevb", "aevb-iaf", "h-aevb", "ddvi", "ddvi-nosleep", "aevb-elbo",
                         "aevb-iaf-elbo", "h-aevb-elbo", "ddvi-elbo", "ddvi-nosleep-elbo"),
                        ("latent_nll", "elbo", "knn_accuracy"), "mnist",
                        # the paper's DDVI has its sleep, with its weights and on the plain ELBO
                        row_options={"ddvi": {"sleep": "full"}, "ddvi-elbo": {"sleep": "full"}}),
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


# Rows ending in ELBO_SUFFIX train on the plain ELBO (KL weight 1 and prior weight 1, in nats per
# example; AEVB's KL warm-up still ramps up to it), so bounds compare at equal objective weights.


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
                n_train = s.get("semi_train", s["n_train"]) if spec.semi else s["n_train"]
                n_labels = s["labels"].get(ds, s["labels"]["mnist"]) if spec.semi else None
                for prior in priors:
                    fit = ImageFitConfig(method, prior, seed, epochs, ds, n_train, s["n_test"],
                                         n_labels, s["mmd_samples"], opts, data_dir)
                    configs.append({**base, "task": "image", **fit.to_dict()})
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



# ------------------------------------------------------------------------------------ running


@contextmanager
def _environ(**values: str | None) -> Iterator[None]:
    """Set the environment variables given (None: leave alone) for the block, then restore them."""
    before = {k: os.environ.get(k) for k, v in values.items() if v is not None}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bench_fits(records: list[dict]) -> list[dict[str, Any]]:
    """The fits as ``<table>.json`` of ``ddvi bench`` lists them (no latent points)."""
    return [{"config": r["config"], "seconds": r["seconds"],
             "result": {k: v for k, v in r["result"].items() if k != "points"}} for r in records]


def run_table(spec: TableSpec, configs: list[dict[str, Any]], out: str | Path, *,
              scale: str | None = None, paper_numbers: Mapping[str, Any] | None = None,
              scheduler: str | None = None, workers: int = 1, progress: bool = True,
              device: str | None = None, threads: str | None = None, figure: bool = True,
              fits: Callable[[list[dict]], list[dict]] = bench_fits) -> dict[str, Any]:
    """Run (or reuse, cached in ``OUT/fits``) every config of a named or ad-hoc table with
    :func:`ddvi.bench.runner.run_grid` and :func:`ddvi.bench.tasks.run_task`, then write
    ``OUT/<spec.name>.md``, ``.json`` (cells, ``scale`` if any, ``fits(records)``) and, with
    ``figure``, ``.png``.

    ``device`` (default: ``$DDVI_BENCH_DEVICE``, else ``auto``) is where the fits compute; local
    Dask workers inherit it (with several GPUs, worker i takes GPU i mod their number), remote
    workers read their own ``$DDVI_BENCH_DEVICE``. ``threads`` likewise sets
    ``$DDVI_BENCH_THREADS`` for the fits run in this process. The fit cache depends on neither."""
    from ddvi.bench.runner import run_grid
    from ddvi.bench.tasks import check_inputs, run_task
    from ddvi.devices import resolve_device

    out = Path(out)
    check_inputs(configs)
    if device is not None:
        resolve_device(device)  # a typo fails here, not in every task
    with _environ(DDVI_BENCH_DEVICE=device, DDVI_BENCH_THREADS=threads):
        records = run_grid(run_task, configs, out / "fits", scheduler=scheduler, workers=workers,
                           progress=progress)
    md, table = table_markdown(spec, scale, configs, records, paper_numbers or {})
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{spec.name}.md").write_text(md)
    (out / f"{spec.name}.json").write_text(json.dumps(
        {"table": table, **({} if scale is None else {"scale": scale}), "fits": fits(records)},
        indent=1, default=float))
    path = latent_figure(spec.name, records, out / f"{spec.name}.png") if figure else None
    return {"markdown": md, "table": table, "records": records, "figure": path}


def run_bench(name: str, scale: str, out: str | Path, seeds: Sequence[int] | None = None, *,
              scheduler: str | None = None, workers: int = 1, progress: bool = True,
              device: str | None = None, **grid: Any) -> dict[str, Any]:
    """Run (or reuse) every fit of the paper's table ``name`` at ``scale`` and write
    ``OUT/<name>.md``, ``.json`` and ``.png`` (see :func:`run_table`; ``grid``: the options of
    :func:`table_configs`)."""
    configs = table_configs(name, scale, seeds, **grid)
    return run_table(TABLES[name], configs, out, scale=scale, paper_numbers=PAPER_NUMBERS.get(name),
                     scheduler=scheduler, workers=workers, progress=progress, device=device)
