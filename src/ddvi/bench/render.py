"""Tabulation of a grid's records (``{"config", "result", "seconds"}`` from
:func:`ddvi.bench.runner.run_grid`) as Markdown and JSON: mean ± 95% t-interval over seeds beside
the paper's numbers, the protocol behind each metric, the latent-NLL floor, and the figure of the
latent maps. Used by ``ddvi bench`` and ``ddvi compare`` alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddvi.bench import paper
from ddvi.metrics import mean_ci

if TYPE_CHECKING:
    from ddvi.bench.tables import TableSpec

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
PAPER_NOTE = ("Paper numbers (in parentheses) come from the paper's own runs (its settings: "
              "`ddvi bench TABLE --scale paper`). The paper's ELBO averages the reconstruction "
              "over pixels (not a bound); compare it with the per-pixel row, not with the bound "
              "in nats.")
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
ELBO_SUFFIX = "-elbo"  # rows training on the plain ELBO (see ddvi.bench.tables)

Table = dict[str, Any]


def fmt(mean: float | None, ci: float | None, digits: int = 2) -> str:
    """``mean ± ci`` (``mean`` alone without an interval; N/A without a mean)."""
    if mean is None:
        return "N/A"
    if ci is None or np.isnan(ci):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def cell(values: Sequence[float]) -> dict[str, Any]:
    """``{"n", "mean", "ci"}`` over seeds (95% t-interval; None when undefined)."""
    if not values:
        return {"n": 0, "mean": None, "ci": None}
    mean, ci = mean_ci(list(values))
    return {"n": len(values), "mean": mean, "ci": None if np.isnan(ci) else ci}


def has_current_nll(result: Mapping[str, Any]) -> bool:
    """Whether a fit's latent NLL comes from the current protocol (recipe-only prior samples,
    floor beside it); fits cached before it scored prior samples with kernel noise."""
    return result.get("latent_nll_floor") is not None


def metric_protocol_lines(metrics: Sequence[str], results: Sequence[Mapping[str, Any]]) -> list[str]:
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


# --------------------------------------------------------------------------------- image tables


def image_cells(records: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> Table:
    """metric -> row -> prior -> cell over seeds; with ``latent_nll`` also ``latent_nll_floor`` ->
    prior -> cell (the prior scored against itself). Latent NLLs of fits cached before the
    recipe-only protocol (no floor) are left out."""
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    priors = list(dict.fromkeys(r["config"]["prior"] for r in records))
    table: Table = {}
    for metric in metrics:
        for row in rows:
            for prior in priors:
                vals = [r["result"][metric] for r in records if r["config"]["row"] == row
                        and r["config"]["prior"] == prior and r["result"].get(metric) is not None
                        and (metric != "latent_nll" or has_current_nll(r["result"]))]
                table.setdefault(metric, {}).setdefault(row, {})[prior] = cell(vals)
    if "latent_nll" in metrics:
        for prior in priors:
            by_seed = {r["config"]["seed"]: r["result"]["latent_nll_floor"] for r in records
                       if r["config"]["prior"] == prior and has_current_nll(r["result"])}
            table.setdefault("latent_nll_floor", {})[prior] = cell(list(by_seed.values()))
    return table


def image_blocks(table: Table, rows: Sequence[str], priors: Sequence[str], metrics: Sequence[str],
                 paper_numbers: Mapping[str, Any], stale: int = 0) -> list[str]:
    """One Markdown block per metric: rows x priors, the paper's number beside ours, and the
    latent-NLL floor row (``stale``: fits left out of the latent NLL, see :func:`image_cells`)."""
    lines: list[str] = []
    for metric in metrics:
        ref = paper_numbers.get(metric, {})
        lines += [f"### {TITLES[metric]}", "", "| method | " + " | ".join(priors) + " |",
                  "|---|" + "---|" * len(priors)]
        for row in rows:
            cells = []
            for prior in priors:
                c = table.get(metric, {}).get(row, {}).get(prior)
                text = "N/A" if c is None else fmt(c["mean"], c["ci"])
                p = ref.get(row, {}).get(prior, "absent")
                if p != "absent":
                    text += " (paper: " + ("N/A" if p is None else fmt(*p)) + ")"
                cells.append(text)
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        if metric == "latent_nll":
            lines.append(_floor_row(table.get("latent_nll_floor", {}), priors))
            if stale:
                lines += ["", f"{stale} cached fit(s) scored their latent NLL with the earlier "
                          "protocol (prior samples with kernel noise) and are left out of this "
                          "block: delete their folders under OUT/fits to recompute them."]
        lines.append("")
    return lines


def _floor_row(floor: Mapping[str, Any], priors: Sequence[str]) -> str:
    cells = []
    for prior in priors:
        c = floor.get(prior)
        text = "N/A" if c is None else fmt(c["mean"], c["ci"])
        ref = paper.LATENT_NLL_FLOOR.get(prior)
        if ref is not None:
            text += f" (reference floor, 10 000 latents: {ref:.2f})"
        cells.append(text)
    return "| floor: prior vs itself | " + " | ".join(cells) + " |"


def _image_table(spec: TableSpec, records: list[dict], paper_numbers: Mapping[str, Any]
                 ) -> tuple[list[str], Table]:
    table = image_cells(records, spec.metrics)
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    priors = list(dict.fromkeys(r["config"]["prior"] for r in records))
    stale = sum(1 for r in records if r["result"].get("latent_nll") is not None
                and not has_current_nll(r["result"]))
    return image_blocks(table, rows, priors, spec.metrics, paper_numbers, stale), table


# ----------------------------------------------------------------------------- genotype tables


def _genotype_table(records: list[dict]) -> tuple[list[str], Table]:
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
                c = cell([s[metric] for s in scored])
                table.setdefault(f"{protocol}/{target}", {}).setdefault(row, {})[metric] = c
                p = paper.TABLE3[metric].get(row) if (protocol, target) == ("gmm20", "population") else None
                cells.append(fmt(c["mean"], c["ci"]) + (f" (paper: {fmt(*p)})" if p else ""))
            secs = np.mean([r["result"]["train_seconds"] for r in recs])
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {secs:.1f} |")
        lines.append("")
    return lines, table


def _timing_table(records: list[dict]) -> tuple[list[str], Table]:
    rows = list(dict.fromkeys(r["config"]["row"] for r in records))
    marks = records[0]["config"]["time_marks"]
    lines = ["| method | " + " | ".join(f"NMI @ {m / 60:g} min" if m >= 60 else f"NMI @ {m:g} s"
                                       for m in marks) + " |",
             "|---|" + "---|" * len(marks)]
    table: Table = {}
    for row in rows:
        cells = []
        for i, mark in enumerate(marks):
            c = cell([t["nmi"] for r in records if r["config"]["row"] == row
                      for t in r["result"]["trace"] if t["mark_seconds"] == mark])
            table.setdefault(row, []).append(c)
            ref = paper.TABLE5.get(row, [None] * 6)
            p = ref[i] if i < len(ref) else None
            cells.append(fmt(c["mean"], c["ci"]) + (f" (paper: {p:.2f})" if p is not None else ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "A mark past the end of training (max epochs reached) is scored at the end."
              " The paper's marks are 10-60 minutes on a GPU; the `cpu` scale uses 0.5-3 minutes."]
    return lines, table


# ------------------------------------------------------------------------------- whole tables


def _scale_line(spec: TableSpec, scale: str | None, configs: Sequence[Mapping[str, Any]]) -> str:
    c = configs[0]
    seeds = sorted({cfg["seed"] for cfg in configs})
    if spec.kind == "image":
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
    where = "Settings" if scale is None else f"Scale `{scale}`"
    return f"{where}: {what}; seeds {seeds} (mean ± 95% t-interval over seeds)."


def _protocol_lines(spec: TableSpec, records: list[dict]) -> list[str]:
    """Which protocol computed each metric of the table (as the fits name them)."""
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


def table_markdown(spec: TableSpec, scale: str | None, configs: Sequence[Mapping[str, Any]],
                   records: list[dict], paper_numbers: Mapping[str, Any]) -> tuple[str, Table]:
    """The Markdown of a whole table (heading, scale, protocols, blocks, footer) and its cells."""
    header = [f"## {spec.name}: {spec.title}", "", _scale_line(spec, scale, configs), "",
              *_protocol_lines(spec, records), ""]
    if spec.kind == "image":
        body, table = _image_table(spec, records, paper_numbers)
        header.append(PAPER_NOTE)
    elif spec.kind == "genotype":
        body, table = _genotype_table(records)
    else:
        body, table = _timing_table(records)
    data = {r["result"].get("data") for r in records if r["result"].get("data")}
    if data:
        header.append("Data: " + "; ".join(sorted(data)))
    wall = sum(r["seconds"] for r in records)
    footer = [f"{len(records)} fits, {wall:.0f} s of fitting in all (sum over fits)."]
    return "\n".join(header + [""] + body + footer) + "\n", table


def latent_figure(name: str, records: list[dict], path: Path) -> Path | None:
    """The latent maps of the first seed's fits: method x prior for image tables (the paper's
    Figures 2-3), one strip for genotype tables; None when no fit kept points."""
    from ddvi.plot import plot_latent_grid

    first_seed = min(r["config"]["seed"] for r in records)
    panels = {}
    for r in records:
        pts = r["result"].get("points")
        if r["config"]["seed"] != first_seed or not pts:
            continue
        row, cfg = r["config"]["row"], r["config"]
        key = (row, cfg["prior"]) if "prior" in cfg else (cfg.get("cohort", ""), row)
        panels[key] = (np.asarray(pts["z"]), pts.get("labels"))
    if not panels:
        return None
    return plot_latent_grid(panels, path, title=f"{name}: latent maps (seed {first_seed})")
