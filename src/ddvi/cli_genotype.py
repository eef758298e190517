"""``ddvi genotype``: ancestry maps from VCF/PLINK genotypes (the paper's 1000 Genomes application)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Ancestry maps and clusters from genotypes (VCF/BCF, PLINK, offline cohorts).")


def _source(vcf: Path | None, bfile: Path | None):
    from ddvi.data.genotypes import open_genotypes

    return open_genotypes(vcf=vcf, bfile=bfile)


def _echo_lines(lines: list[str], quiet: bool) -> None:
    if not quiet:
        for line in lines:
            typer.echo(line)


@app.command("fit")
def fit(
    vcf: Path | None = typer.Option(None, help="VCF/VCF.gz/BCF file"),
    bfile: Path | None = typer.Option(None, help="PLINK prefix (PREFIX.bed/.bim/.fam)"),
    cohort: str | None = typer.Option(None, help="offline cohort: synthetic-1kg | msprime-1kg "
                                                 "(synthetic data; says so in every output)"),
    labels: Path | None = typer.Option(None, help="sample -> population file (1000 Genomes panel "
                                                  "format: sample pop super_pop)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    method: str = typer.Option("ddvi", help="ddvi | aevb | aevb-iaf | aaeb"),
    clusters: int = typer.Option(20, min=1, help="number of clusters (paper: 20)"),
    epochs: int = typer.Option(60, min=1),
    n_components: int = typer.Option(1000, min=2, help="PCs kept before the model (paper: 1000)"),
    maf: float = typer.Option(0.01, help="minor-allele-frequency filter"),
    max_missing: float = typer.Option(0.1, help="drop SNPs with a larger missing-call rate"),
    drop_unlabelled: bool = typer.Option(False, help="leave out samples absent from --labels "
                                                     "(default: stop with an error naming them)"),
    baselines: str = typer.Option("pca,tsne,umap", help="comparison maps ('' for none)"),
    n_snps: int | None = typer.Option(None, help="cohorts only: number of SNPs (default 20 000 "
                                                 "synthetic-1kg / 5 000 msprime-1kg; 0 = all)"),
    held_out: float = typer.Option(0.0, min=0.0, max=0.9,
                                   help="seeded fraction of the samples left out of QC, PCA and "
                                        "the fit, projected and scored separately (e.g. 0.2; "
                                        "default 0: the paper's protocol, fit and score the same "
                                        "samples)"),
    seed: int = typer.Option(0),
    threads: str = typer.Option("auto", help="CPU threads: auto (the cores other processes leave "
                                             "free) or a number from 1 to the core count"),
    device: str = typer.Option("auto", help="auto (CUDA when available, else the CPU) | cpu | cuda "
                                            "| cuda:N | mps"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar or report"),
) -> None:
    """Fit an ancestry map: QC, PCA/30, a 2-D clustering model; write latent.tsv, clusters.tsv,
    metrics.json, history.csv, model/, map.png and comparison.png (beside PCA, t-SNE, UMAP).

    Examples:

      ddvi genotype fit --cohort synthetic-1kg --out runs/g1k --epochs 50

      ddvi genotype fit --vcf chr22.vcf.gz --labels panel.tsv --out runs/chr22

      ddvi genotype fit --bfile data/cohort --labels pops.tsv --clusters 10 --baselines pca -o runs/c

      ddvi genotype fit --cohort msprime-1kg --out runs/m1k --device cuda   # on a GPU

      ddvi genotype fit --cohort synthetic-1kg --held-out 0.2 --out runs/g1k-held  # score unseen
    """
    from ddvi.devices import resolve_device
    from ddvi.threads import resolve_threads

    try:
        resolve_device(device)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--device") from err
    try:
        n_threads = resolve_threads(threads)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--threads") from err
    from ddvi.data.genotypes import QCConfig
    from ddvi.tasks.ancestry import cohort_source, fit_ancestry, prepare_genotypes

    if sum(x is not None for x in (vcf, bfile, cohort)) != 1:
        raise typer.BadParameter("give exactly one of --vcf, --bfile, --cohort")
    description = ""
    if cohort is not None:
        snps = "default" if n_snps is None else (n_snps or None)
        source, cohort_labels, description = cohort_source(cohort, out / "cohort", seed, snps)
        labels = labels or cohort_labels
    else:
        source = _source(vcf, bfile)
        description = f"genotypes from {vcf or bfile}"
    data = prepare_genotypes(source, labels, n_components=n_components,
                             qc=QCConfig(maf=maf, max_missing=max_missing),
                             drop_unlabelled=drop_unlabelled, description=description,
                             held_out=held_out, seed=seed)
    _echo_lines([data.description, *data.notes], quiet)
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    metrics = fit_ancestry(data, out, method=method, n_clusters=clusters, epochs=epochs, seed=seed,
                           baselines=names, verbose=not quiet, device=device,
                           threads=n_threads)
    held = metrics.get("held_out", {}).get("scores", {})
    for name, s in [*metrics["scores"].items(), *((f"{k}, held out", v) for k, v in held.items())]:
        if "gmm20" in s:
            p = s["gmm20"]["population"]
            typer.echo(f"{name}: GMM-20 vs populations purity={p['purity']:.3f} "
                       f"completeness={p['completeness']:.3f} NMI={p['nmi']:.3f}"
                       + (f" ({s['seconds']:.1f} s)" if "seconds" in s else ""))
    typer.echo(f"output folder: {out}")


@app.command("embed")
def embed(
    model: Path = typer.Option(..., help="model folder written by `ddvi genotype fit` (OUT/model)"),
    vcf: Path | None = typer.Option(None, help="VCF/VCF.gz/BCF with the new samples"),
    bfile: Path | None = typer.Option(None, help="PLINK prefix with the new samples"),
    labels: Path | None = typer.Option(None, help="optional population labels of the new samples"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
) -> None:
    """Place new samples on a fitted map (same SNPs matched by ID, same PCA); writes latent.tsv.

    Examples:

      ddvi genotype embed --model runs/g1k/model --vcf new_samples.vcf.gz --out runs/new

      ddvi genotype embed --model runs/c/model --bfile data/new --labels new_pops.tsv -o runs/new
    """
    from ddvi.data.genotypes import read_labels
    from ddvi.tasks.ancestry import embed_samples, write_latent_tsv

    if (vcf is None) == (bfile is None):
        raise typer.BadParameter("give exactly one of --vcf, --bfile")
    source = _source(vcf, bfile)
    z, clusters = embed_samples(model, source)
    pops = supers = None
    if labels is not None:
        lab = read_labels(labels, source.sample_ids, missing="error")
        pops, supers = lab.population, lab.super_population
    out.mkdir(parents=True, exist_ok=True)
    path = write_latent_tsv(out / "latent.tsv", source.sample_ids, z, clusters, pops, supers)
    typer.echo(f"placed {len(source.sample_ids)} samples; wrote {path}")
