"""Ancestry maps from genotypes: the paper's 1000 Genomes application (section 5.3, appendix I).

Pipeline: genotypes (VCF/BCF, PLINK or an offline cohort) -> QC -> PCA to at most 1000
components divided by 30 (a saved :class:`~ddvi.data.genotype_pca.GenotypePCA`, so new samples
can be projected) -> a clustering model with a 2-D latent (DDVI or a baseline, K = 20 learned
mixture centres) -> the map, the clusters, their scores against the population labels, and the
same scores for PCA, t-SNE and UMAP maps of the same samples.

Every map is scored two ways, each named in ``metrics.json``: ``model_clusters`` (the model's
own cluster assignment, argmax of the mixture's component posterior) and ``gmm20`` (the paper's
protocol: a post-hoc 20-component full-covariance GMM on the 2-D map, reference notes 5.5),
against populations and against super-populations.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ddvi.cluster_metrics import cluster_scores, gmm_clusters
from ddvi.data.genotype_pca import GenotypePCA
from ddvi.data.genotypes import (
    ArraySource,
    GenotypeSource,
    QCConfig,
    SampleSubset,
    VCFSource,
    read_labels,
)

__all__ = ["COHORTS", "GenotypeData", "HeldOutSamples", "cohort_source", "embed_samples",
           "fit_ancestry", "genotype_model", "prepare_genotypes", "score_map", "split_samples",
           "write_latent_tsv"]

COHORTS = ("synthetic-1kg", "msprime-1kg")
COHORT_SNPS = {"synthetic-1kg": 20000, "msprime-1kg": 5000}  # defaults: a map in minutes
PCA_FILE = "pca.safetensors"
UNLABELLED = "NA"


@dataclass
class HeldOutSamples:
    """Samples left out of the PCA and the model's fit, projected as ``ddvi genotype embed`` does."""

    features: np.ndarray  # (m, k) float32: the fit's PCA applied to them
    sample_ids: list[str]
    populations: np.ndarray | None
    super_populations: np.ndarray | None


@dataclass
class GenotypeData:
    """Model-ready features of genotyped samples, with their labels and provenance."""

    features: np.ndarray  # (n, k) float32: PCs / scale
    sample_ids: list[str]
    populations: np.ndarray | None
    super_populations: np.ndarray | None
    description: str
    pca: GenotypePCA
    notes: list[str] = field(default_factory=list)
    held_out: HeldOutSamples | None = None


def split_samples(n: int, fraction: float, seed: int = 0,
                  strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (fit, held-out) positions of ``n`` samples, a seeded ``fraction`` held out,
    stratified by ``strata`` (e.g. populations) when every group has at least two samples.

    Example:
        >>> fit, held = split_samples(10, 0.2, seed=0)
        >>> len(fit), len(held), sorted([*fit, *held]) == list(range(10))
        (8, 2, True)
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction}")
    n_held = int(np.ceil(fraction * n))
    if n_held < 1 or n - n_held < 2:
        raise ValueError(f"holding out {fraction:g} of {n} samples leaves {n - n_held} to fit "
                         f"and {n_held} to score; need at least 2 and 1")
    if strata is not None:
        _, counts = np.unique(strata, return_counts=True)
        if counts.min() < 2 or n_held < len(counts) or n - n_held < len(counts):
            strata = None
    fit, held = train_test_split(np.arange(n), test_size=n_held, random_state=seed,
                                 stratify=strata)
    return np.sort(fit), np.sort(held)


def cohort_source(name: str, workdir: str | Path, seed: int = 0,
                  n_snps: int | None | Literal["default"] = "default") -> tuple[GenotypeSource, Path, str]:
    """An offline cohort as (genotype source, label file, description); files go to ``workdir``.

    ``synthetic-1kg``: 2 504 synthetic individuals drawn from the real 1000 Genomes
    per-population allele frequencies. ``msprime-1kg``: a coalescent simulation written as VCF and
    read back through the VCF reader. ``n_snps``: ``"default"`` (:data:`COHORT_SNPS`), a number,
    or None for all (128 097 frequencies; every segregating site of the simulation).
    """
    from ddvi.data import cohorts

    if name not in COHORTS:
        raise ValueError(f"unknown cohort {name!r}; choose one of {COHORTS}")
    n_snps = COHORT_SNPS[name] if n_snps == "default" else n_snps
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "synthetic-1kg":
        cohort = cohorts.synthetic_1kg(n_snps=n_snps, seed=seed)
        source: GenotypeSource = ArraySource(cohort.genotypes, cohort.sample_ids, cohort.snp_ids)
    else:
        cohort = cohorts.msprime_1kg(n_snps=n_snps, seed=seed)
        source = VCFSource(cohorts.write_vcf(cohort, workdir / "msprime-1kg.vcf.gz"))
    labels = cohorts.write_labels(cohort, workdir / f"{name}.labels.tsv")
    return source, Path(labels), cohort.description


def prepare_genotypes(source: GenotypeSource, labels: str | Path | None = None, *,
                      n_components: int = 1000, scale: float = 30.0, qc: QCConfig | None = None,
                      drop_unlabelled: bool = False, description: str = "",
                      held_out: float = 0.0, seed: int = 0) -> GenotypeData:
    """QC and PCA (appendix I: at most 1000 PCs, divided by ``scale``); align the labels.

    Samples absent from the label file stop with an error naming them, unless
    ``drop_unlabelled`` (then they are left out of the map and counted in ``notes``).
    ``held_out`` > 0 leaves a seeded fraction of the samples (stratified by population) out of
    the QC, the PCA and the model's fit, and projects them with the fitted PCA, as
    ``ddvi genotype embed`` would, so that :func:`fit_ancestry` also scores unseen samples.
    """
    notes: list[str] = []
    pops = supers = None
    keep = np.arange(source.n_samples)
    if labels is not None:
        lab = read_labels(labels, source.sample_ids, missing="drop" if drop_unlabelled else "error")
        notes += lab.lines()
        keep, pops, supers = lab.index, lab.population, lab.super_population
    pca = GenotypePCA(n_components=n_components, scale=scale)
    held = None
    if not held_out:
        features = pca.fit_transform(source, qc=qc)[keep]
    else:
        fit_pos, held_pos = split_samples(len(keep), held_out, seed, pops)
        notes.append(f"held out: {len(held_pos)} of {len(keep)} samples ({held_out:g}, seed {seed}"
                     f"{', stratified by population where possible' if pops is not None else ''}), "
                     f"left out of QC, PCA and the fit, projected with the fitted PCA and "
                     f"scored separately")
        features = pca.fit_transform(SampleSubset(source, keep[fit_pos]), qc=qc)
        held_source = SampleSubset(source, keep[held_pos])
        held = HeldOutSamples(pca.transform(held_source).astype(np.float32), held_source.sample_ids,
                              _take(pops, held_pos), _take(supers, held_pos))
        keep, pops, supers = keep[fit_pos], _take(pops, fit_pos), _take(supers, fit_pos)
    notes += pca.qc_report_.lines()
    notes.append(f"PCA: {pca.n_components_} components (explained variance "
                 f"{float(np.sum(pca.explained_variance_ratio_)):.3f}), divided by {scale:g}")
    ids = [source.sample_ids[i] for i in keep]
    return GenotypeData(features.astype(np.float32), ids, pops, supers, description or "user data",
                        pca, notes, held)


def _take(values: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[index]


def genotype_model(method: str = "ddvi", n_clusters: int = 20, epochs: int = 60, seed: int = 0,
                   verbose: bool = True, run_dir: str | Path | None = None, **params: Any):
    """The clustering model of the paper's genomics runs as a :class:`~ddvi.ClusteringDDVI`:
    an isotropic Gaussian likelihood on the PCs (a shared learned scale: squared error, as
    the authors' MSE), 4×1000 hidden layers, a 2-D latent with ``n_clusters``
    learned mixture centres (N(mu_k, 0.125² I), the authors' ``tiny_gauss``), trained on the
    true ELBO (``beta_reg = prior_weight = 1``; the MNIST weights are per-pixel conventions).

    With a per-feature scale or 1000 PCs of mostly noise the latent went unused (posterior
    collapse, NMI 0 on synthetic-1kg); with the shared scale DDVI reached GMM-20 NMI 0.69 in
    40 epochs."""
    from ddvi.estimators import estimator_for

    settings: dict[str, Any] = {"likelihood": "gaussian-iso", "hidden": (1000, 1000, 1000, 1000),
                                "binarize": False, "n_clusters": n_clusters,
                                "cluster_model": "mixture", "batch_size": 128, "beta_reg": 1.0,
                                "prior_weight": 1.0}
    settings |= params
    return estimator_for(method=method, epochs=epochs, seed=seed, verbose=verbose,
                         run_dir=None if run_dir is None else str(run_dir), **settings)


def score_map(z: np.ndarray, populations: np.ndarray | None, super_populations: np.ndarray | None,
              clusters: np.ndarray | None = None, n_components: int = 20) -> dict[str, Any]:
    """Purity / completeness / NMI of a 2-D map against populations and super-populations:
    ``gmm20`` (the paper's post-hoc GMM) and, when given, ``model_clusters``."""
    if populations is None:
        return {}
    out: dict[str, Any] = {}
    assignments = {"gmm20": gmm_clusters(z, n_components=n_components)}
    if clusters is not None:
        assignments["model_clusters"] = np.asarray(clusters)
    for name, pred in assignments.items():
        out[name] = {"population": cluster_scores(populations, pred)}
        if super_populations is not None:
            out[name]["super_population"] = cluster_scores(super_populations, pred)
    return out


def write_latent_tsv(path: str | Path, sample_ids: Sequence[str], z: np.ndarray,
                     clusters: np.ndarray | None, populations: np.ndarray | None,
                     super_populations: np.ndarray | None) -> Path:
    """``sample_id z1 z2 cluster population super_population`` (tab-separated, one row a sample)."""
    path = Path(path)
    n = len(sample_ids)
    cols = [list(sample_ids), [f"{v:.6g}" for v in z[:, 0]], [f"{v:.6g}" for v in z[:, 1]],
            [str(int(c)) for c in clusters] if clusters is not None else [UNLABELLED] * n,
            list(populations) if populations is not None else [UNLABELLED] * n,
            list(super_populations) if super_populations is not None else [UNLABELLED] * n]
    lines = ["sample_id\tz1\tz2\tcluster\tpopulation\tsuper_population"]
    lines += ["\t".join(row) for row in zip(*cols)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_clusters_tsv(path: Path, clusters: np.ndarray, populations: np.ndarray | None) -> None:
    lines = ["cluster\tsize\ttop_population\ttop_fraction\tcomposition"]
    for c in np.unique(clusters):
        members = clusters == c
        if populations is None:
            lines.append(f"{int(c)}\t{int(members.sum())}\t{UNLABELLED}\t\t")
            continue
        names, counts = np.unique(populations[members], return_counts=True)
        order = np.argsort(-counts)
        comp = ",".join(f"{names[i]}:{counts[i]}" for i in order)
        lines.append(f"{int(c)}\t{int(members.sum())}\t{names[order[0]]}\t"
                     f"{counts[order[0]] / members.sum():.3f}\t{comp}")
    path.write_text("\n".join(lines) + "\n")


def fit_ancestry(data: GenotypeData, out: str | Path, *, method: str = "ddvi", n_clusters: int = 20,
                 epochs: int = 60, seed: int = 0, baselines: Sequence[str] = ("pca", "tsne", "umap"),
                 verbose: bool = True, **params: Any) -> dict[str, Any]:
    """Fit the map and write ``latent.tsv``, ``clusters.tsv``, ``metrics.json``, ``history.csv``,
    ``model/`` (the model and the PCA), the figures ``map.png`` and ``comparison.png``, and
    ``map.html`` (interactive: sample id, population, super-population and cluster on hover;
    skipped with a note when the ``maps`` extra is absent). With held-out samples (see
    :func:`prepare_genotypes`) also ``held_out_latent.tsv`` and their scores under
    ``metrics["held_out"]``."""
    from ddvi.embeddings import embed_timed
    from ddvi.interactive import try_write_map_html
    from ddvi.plot import plot_ancestry_comparison, plot_ancestry_map

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params.setdefault("checkpoint_every", 10)  # the 4x1000 networks make a checkpoint ~100 MB
    model = genotype_model(method, n_clusters, epochs, seed, verbose, run_dir=out / "train", **params)
    start = time.perf_counter()
    model.fit(data.features)
    seconds = time.perf_counter() - start
    z = model.transform(data.features)
    clusters = model.predict(data.features)
    model.save(out / "model")
    data.pca.save(out / "model" / PCA_FILE)
    shutil.copyfile(out / "train" / "history.csv", out / "history.csv")
    write_latent_tsv(out / "latent.tsv", data.sample_ids, z, clusters, data.populations,
                     data.super_populations)
    _write_clusters_tsv(out / "clusters.tsv", clusters, data.populations)

    label = method.upper()
    maps = {label: z}
    scores = {label: {"seconds": seconds, **score_map(z, data.populations, data.super_populations,
                                                      clusters)}}
    for name in baselines:
        zb, secs = embed_timed(name, data.features, seed=seed)
        maps[{"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}.get(name, name)] = zb
        scores[name] = {"seconds": secs, **score_map(zb, data.populations, data.super_populations)}
    metrics = {
        "data": data.description, "n_samples": len(data.sample_ids),
        "n_features": int(data.features.shape[1]), "notes": data.notes,
        "model": {"method": method, "n_clusters": n_clusters, "epochs": epochs, "seed": seed,
                  "train_seconds": seconds,
                  "elbo": model.score(data.features, seed=seed) if model.method_.has_elbo else None},
        "protocols": {
            "gmm20": "GaussianMixture(20, full covariance, reg_covar=1e-2, n_init=10, random_state=2) "
                     "fitted to the 2-D map, scored against the labels (reference notes 5.5)",
            "model_clusters": "argmax_k p(k | z) of the model's learned mixture prior",
            "elbo": "lower bound on log p(x) of the PCA features, nats per sample"},
        "scores": scores,
    }
    if data.held_out is not None:
        metrics["held_out"] = _score_held_out(model, data.held_out, out, label, seed)
        metrics["protocols"]["held_out"] = (
            "samples left out of QC, PCA and the fit, projected with the fitted PCA and model "
            "(as `ddvi genotype embed`); GMM-20 fitted to their map alone (fewer components "
            "when fewer than 20 samples); ELBO in nats per held-out sample")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    note = data.description
    if data.populations is not None:
        plot_ancestry_map(z, data.populations, data.super_populations,
                          title=f"{label} ancestry map", path=out / "map.png")
        plot_ancestry_comparison(maps, data.populations, data.super_populations,
                                 path=out / "comparison.png", note=note)
    groups = {name: values for name, values in [("population", data.populations),
                                                ("super_population", data.super_populations),
                                                ("cluster", clusters)] if values is not None}
    try_write_map_html(out / "map.html", z, row_ids=data.sample_ids, groups=groups,
                       title=f"{label} ancestry map: {note}")
    return metrics


def _score_held_out(model: Any, held: HeldOutSamples, out: Path, label: str, seed: int
                    ) -> dict[str, Any]:
    """Place the held-out samples on the map, write ``held_out_latent.tsv`` and score them."""
    z = model.transform(held.features)
    clusters = model.predict(held.features)
    write_latent_tsv(out / "held_out_latent.tsv", held.sample_ids, z, clusters, held.populations,
                     held.super_populations)
    scores = score_map(z, held.populations, held.super_populations, clusters,
                       n_components=min(20, len(held.sample_ids)))
    elbo = model.score(held.features, seed=seed) if model.method_.has_elbo else None
    return {"n_samples": len(held.sample_ids), "elbo": elbo, "scores": {label: scores}}


def embed_samples(model_dir: str | Path, source: GenotypeSource) -> tuple[np.ndarray, np.ndarray]:
    """Project new samples with a fitted model folder: (2-D map positions, cluster ids)."""
    from ddvi.estimators import DDVI

    model_dir = Path(model_dir)
    pca = GenotypePCA.load(model_dir / PCA_FILE)
    model = DDVI.load(model_dir)
    features = pca.transform(source)
    return model.transform(features), model.predict(features)
