"""``ddvi compare``: fit methods x priors x seeds on one dataset and tabulate them in the layout of
the paper's Table 1 (unsupervised) or Table 2 (semi-supervised, with ``n_labels``).

An ad-hoc table of ``ddvi bench``: the same fits (:func:`ddvi.fitting.fit_and_evaluate`), grid
runner and cache (``OUT/fits/<key>/``, so an interrupted comparison resumes and a rerun only
computes what is missing) and formatting (:mod:`ddvi.bench.render`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ddvi.bench.paper import TABLE1, TABLE2
from ddvi.bench.render import TITLES, image_blocks, image_cells, metric_protocol_lines
from ddvi.bench.tables import TableSpec, run_table
from ddvi.fitting import ImageFitConfig

__all__ = ["LAYOUTS", "TITLES", "aggregate", "compare", "metric_protocol_lines", "to_markdown"]

LAYOUTS = {  # table -> (metrics, paper numbers)
    "table1": (("elbo", "elbo_per_pixel_rec", "mmd", "latent_nll"), TABLE1),
    "table2": (("elbo", "elbo_per_pixel_rec", "knn_accuracy", "latent_nll", "accuracy"), TABLE2),
}


def _records(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat fit results (as ``tableN.json`` lists them) as grid records, one row per method."""
    return [{"config": {"row": r["method"], "prior": r["prior"], "seed": r.get("seed")},
             "result": r} for r in results]


def aggregate(results: Sequence[Mapping[str, Any]],
              metrics: Sequence[str] = tuple(TITLES)) -> dict[str, Any]:
    """metric -> method -> prior -> {mean, ci, n} over seeds of flat fit results, as
    :func:`ddvi.bench.render.image_cells` (with the latent-NLL floor)."""
    return image_cells(_records(results), metrics)


def to_markdown(table: dict, methods: Sequence[str], priors: Sequence[str], header: str,
                layout: str = "table1") -> str:
    """``header`` then one block per metric of ``layout`` (see :func:`ddvi.bench.render.image_blocks`)."""
    metrics, paper_numbers = LAYOUTS[layout]
    return "\n".join([header, "", *image_blocks(table, methods, priors, metrics, paper_numbers)])


def _flat_fits(records: list[dict]) -> list[dict[str, Any]]:
    """The fits as ``tableN.json`` of ``ddvi compare`` lists them: each fit's metrics with its
    seed, training seconds and configuration (``spec``)."""
    return [{**{k: v for k, v in r["result"].items() if k != "points"},
             "seed": r["config"]["seed"], "spec": r["config"]} for r in records]


def compare(methods: Sequence[str], priors: Sequence[str], seeds: Sequence[int], epochs: int,
            out: str | Path, n_train: int | None = None, dataset: str = "mnist",
            data_dir: str | Path | None = None, mmd_samples: int = 2000, verbose: bool = True,
            options: dict[str, dict[str, Any]] | None = None,
            n_labels: int | None = None, device: str = "auto", workers: int = 1,
            scheduler: str | None = None) -> dict[str, Any]:
    """Run (or reuse) every fit of the grid on ``device``; write ``tableN.md`` and ``tableN.json``
    into ``out`` (Table 2, semi-supervised with ``n_labels`` class-balanced labels, when n_labels
    is given). ``workers`` / ``scheduler`` as for :func:`ddvi.bench.runner.run_grid`; fits run in
    this process use the estimator's thread choice (``threads="auto"``)."""
    layout = "table1" if n_labels is None else "table2"
    metrics, paper_numbers = LAYOUTS[layout]
    semi = "unsupervised" if n_labels is None else "semi-supervised"
    spec = TableSpec(layout, f"{dataset}, {semi} (Table {layout[-1]} layout, ddvi compare)",
                     "image", tuple(methods), metrics, dataset, semi=n_labels is not None)
    configs = [{"task": "image", "row": m,
                **ImageFitConfig(m, p, s, epochs, dataset, n_train, None, n_labels, mmd_samples,
                                 (options or {}).get(m, {}), data_dir).to_dict()}
               for p in priors for m in methods for s in seeds]
    in_process = workers == 1 and scheduler is None
    done = run_table(spec, configs, out, paper_numbers=paper_numbers, scheduler=scheduler,
                     workers=workers, progress=verbose, device=device,
                     threads="auto" if in_process else None, figure=False, fits=_flat_fits)
    return {"table": done["table"], "markdown": done["markdown"],
            "fits": _flat_fits(done["records"]), "layout": layout}
