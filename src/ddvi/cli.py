"""The ``ddvi`` command: fit, evaluate and plot models."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ddvi.cli_bench import bench, compare, device_words
from ddvi.cli_genotype import app as genotype_app
from ddvi.data import load_dataset
from ddvi.devices import DEVICE_HELP

if TYPE_CHECKING:
    from ddvi.estimators import ResumeMismatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Denoising Diffusion Variational Inference: fit latent variable models with "
                       "structured priors using diffusion posteriors.")
app.add_typer(genotype_app, name="genotype")
app.command()(compare)
app.command()(bench)  # both in ddvi.cli_bench


def _run_dir(out: Path | None, method: str, prior: str, dataset: str) -> Path:
    if out is not None:
        return out
    if prior.startswith("samples:"):  # a prior given by a file: its name, not its path
        prior = f"samples-{Path(prior[len('samples:'):]).stem}"
    return Path("runs") / f"{dataset}-{method}-{prior}-{time.strftime('%Y%m%d-%H%M%S')}"


@app.command()
def fit(
    ctx: typer.Context,
    method: str = typer.Option("ddvi", help="aevb | aevb-iaf | aaeb | h-aevb | pis | ddvi"),
    prior: str = typer.Option("pinwheel", help="gaussian | mixture | pinwheel | swiss_roll | square, "
                                               "or samples:FILE for a prior given by samples (.npy "
                                               "array (n, 2); .npz with samples and optional "
                                               "labels, one part per class)"),
    dataset: str = typer.Option("mnist", help="mnist | fashion-mnist"),
    data_dir: Path | None = typer.Option(None, help="folder with the dataset's IDX files"),
    data: Path | None = typer.Option(None, help="your own matrix instead of --dataset: rows x "
                                               "numeric features in .csv/.tsv/.txt (header row), "
                                               ".npy, .npz or .h5ad"),
    label_column: str | None = typer.Option(None, help="--data: the labels (CSV column, .h5ad obs "
                                                       "column, .npz array; default .npz: "
                                                       "'labels'), for colours and metrics"),
    id_column: str | None = typer.Option(None, help="--data: the row ids (default: a first "
                                                    "column named id, cell, sample, *_id or "
                                                    "nothing; "
                                                    ".h5ad: obs_names; else row numbers)"),
    array: str | None = typer.Option(None, help="--data .npz: the array holding the matrix"),
    test_fraction: float = typer.Option(0.1, help="--data: seeded fraction of the rows held out "
                                                  "for the metrics (0: metrics on the training "
                                                  "rows)"),
    likelihood: str = typer.Option("auto", help="auto | bernoulli | gaussian | gaussian-iso "
                                                "(auto: bernoulli for images and 0/1 data or "
                                                "with --binarize, else gaussian)"),
    standardize: bool = typer.Option(False, help="scale every feature to mean 0, std 1 (kept in "
                                                 "the model, applied again by `ddvi embed`)"),
    binarize: bool | None = typer.Option(None, "--binarize/--no-binarize",
                                         help="threshold values in [0, 1] at 0.5 for the "
                                              "bernoulli likelihood (default: images yes, "
                                              "--data no)"),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(128, min=1),
    lr: float | None = typer.Option(None, help="Adam learning rate (default: the paper's)"),
    sleep: str = typer.Option("none", help="DDVI sleep term: none | latent | full (see README)"),
    timesteps: int = typer.Option(20, min=1, help="DDVI diffusion steps T"),
    schedule: str = typer.Option("linear", help="noise schedule: linear | geometric | cosine"),
    beta_start: float | None = typer.Option(None, help="first noise level beta_1, in (0, beta_end] "
                                                        "(default 1e-3)"),
    beta_end: float | None = typer.Option(None, help="last noise level beta_T, in (0, 0.5] "
                                                      "(default min(0.5, 8/T); cosine: 0.5 cap)"),
    guidance: str = typer.Option("auto", help="DDVI: the score the denoiser sees at each step: "
                                              "prior (grad log p(z)) | joint (also the "
                                              "likelihood's; a decoder pass per step) | none "
                                              "(the paper's chain) | auto (prior unless the "
                                              "prior is Gaussian)"),
    beta_reg: float | None = typer.Option(None, help="weight of L_reg (default: the paper's)"),
    beta_diff: float = typer.Option(1.0, help="weight of the sleep term"),
    warmup_steps: int = typer.Option(0, help="DDVI: denoiser pre-training steps on prior samples"),
    n_train: int | None = typer.Option(None, help="use a random subset of the training set"),
    n_labels: int | None = typer.Option(None, help="semi-supervised: keep exactly this many labels"),
    balanced: bool = typer.Option(False, help="semi-supervised: the same number of labels per class"),
    alpha: float = typer.Option(1000.0, help="semi-supervised: weight of the classification loss "
                                             "(nats per labelled row)"),
    labeled_batch_size: int = typer.Option(32, min=0, help="semi-supervised: labelled rows added "
                                                           "to every batch"),
    n_clusters: int | None = typer.Option(None, help="clustering: number of clusters"),
    cluster_model: str = typer.Option("mixture", help="clustering: mixture (learned prior means) | "
                                                      "variable (Dirichlet cluster variable)"),
    seed: int = typer.Option(0),
    threads: str = typer.Option("auto", help="CPU threads: auto (the cores other processes leave "
                                             "free) or a number from 1 to the core count"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    compile_chain: bool = typer.Option(False, "--compile",
                                       help="DDVI: compile the reverse chain with torch.compile "
                                            "(~20% faster steps after a 1-2 min compilation; for "
                                            "long fits)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run folder (default runs/...)"),
    resume: bool = typer.Option(False, help="continue from the run folder's last checkpoint; give "
                                            "the options of the original fit again: only "
                                            "--epochs, --threads, --device, --compile, --quiet, "
                                            "--evaluate/--no-evaluate "
                                            "and --mmd-samples may differ (anything else is "
                                            "refused)"),
    evaluate_after: bool = typer.Option(True, "--evaluate/--no-evaluate",
                                        help="compute metrics and figures after training"),
    mmd_samples: int = typer.Option(2000, help="samples per side for MMD"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Fit a model and write a run folder (model, history, metrics.json, figures). With --data
    (your own matrix) it also writes latent.tsv (every row: row_id, z1, z2, label, split),
    map.png and map.html; `ddvi embed` places new rows on the map.

    Examples:

      ddvi fit --data cells.csv --label-column type --standardize --epochs 20 --out runs/cells

      ddvi fit --data pbmc.h5ad --label-column cell_type --prior gaussian --epochs 20 -o runs/pbmc

      ddvi fit --method ddvi --prior pinwheel --epochs 5 --out runs/ddvi-pinwheel

      ddvi fit --method aevb --prior square --n-train 10000 --epochs 2 -q

      ddvi fit --out runs/ddvi-pinwheel --epochs 20 --resume

      ddvi fit --method ddvi --prior square --n-labels 1000 --balanced   # semi-supervised

      ddvi fit --method ddvi --n-clusters 10 --epochs 5                  # clustering
    """
    from ddvi.estimators import ResumeMismatchError, estimator_for
    from ddvi.fitting import FitOutcome, ImageFitConfig, fit_and_evaluate, train
    from ddvi.report import evaluate as run_eval
    from ddvi.report import write_figures, write_json
    from ddvi.threads import resolve_threads

    try:
        n_threads = resolve_threads(threads)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--threads") from err
    where = device_words(device)

    if n_labels is not None and n_labels < 1:
        raise typer.BadParameter(f"--n-labels {n_labels} keeps no labels, and a semi-supervised fit "
                                 "needs at least one; leave --n-labels out for an unsupervised fit",
                                 param_hint="--n-labels")
    if data is not None:
        from ddvi.data.tables import load_table
        from ddvi.tasks.tabular import choose_likelihood, label_codes, split_rows

        _refuse_options(ctx, ("dataset", "data_dir", "n_train"), "do not apply with --data")
        table = load_table(data, label_column=label_column, id_column=id_column, array=array)
        binarize = bool(binarize)
        likelihood, why = choose_likelihood(table.X, likelihood, binarize, standardize)
        test = split_rows(len(table.X), test_fraction, seed)
        if n_labels is not None and table.labels is None:
            raise typer.BadParameter("--n-labels needs labels: name their column with "
                                     "--label-column", param_hint="--n-labels")
        codes, classes = (None, None) if table.labels is None else label_codes(table.labels)
        x_fit, y_fit = table.X[~test], None if codes is None else codes[~test]
        x_test, y_test = (table.X[test], None if codes is None else codes[test]) if test.any() \
            else (x_fit, y_fit)
        dataset = data.stem
        typer.echo(table.source)
    else:
        _refuse_options(ctx, ("label_column", "id_column", "array", "test_fraction"),
                        "apply only with --data")
        likelihood, why = _image_likelihood(likelihood, binarize, standardize)
        binarize = binarize is not False
    typer.echo(f"likelihood: {likelihood} ({why})")
    run = _run_dir(out, method, prior, dataset)
    options = dict(likelihood=likelihood, binarize=binarize, standardize=standardize,
                   batch_size=batch_size, lr=lr, sleep=sleep, timesteps=timesteps,
                   schedule=schedule, beta_start=beta_start, beta_end=beta_end, beta_reg=beta_reg,
                   beta_diff=beta_diff, warmup_steps=warmup_steps, alpha=alpha,
                   labeled_batch_size=labeled_batch_size, n_clusters=n_clusters,
                   cluster_model=cluster_model, compile=compile_chain, guidance=guidance)

    def report_speed(done: FitOutcome) -> None:
        history = done.model.history_
        steps = len(history) * math.ceil(len(done.x_fit) / batch_size)
        step_seconds = sum(row["seconds"] for row in history)
        typer.echo(f"trained {steps} steps at {steps / max(step_seconds, 1e-9):.1f} steps/s on "
                   f"{where} with {n_threads} CPU thread(s) (--device, --threads; a busy machine "
                   "trains slower)")

    try:
        if data is None:
            config = ImageFitConfig(method, prior, seed, epochs, dataset, n_train, None, n_labels,
                                    mmd_samples, options, data_dir, balanced_labels=balanced)
            done = fit_and_evaluate(config, run_dir=run, device=device, threads=n_threads,
                                    verbose=not quiet, resume=resume, evaluate=evaluate_after,
                                    on_fit=report_speed)
        else:
            model = estimator_for(n_labels is not None, method=method, prior=prior,
                                  epochs=epochs, seed=seed, verbose=not quiet, run_dir=str(run),
                                  threads=n_threads, device=device, **options)
            seconds = train(model, x_fit, y_fit, n_labels, seed, balanced=balanced, resume=resume,
                            feature_names=table.feature_names)
            done = FitOutcome(model, seconds, x_fit, y_fit, x_test, y_test)
            report_speed(done)
            model.save(run / "model")
    except ResumeMismatchError as err:
        raise ValueError(_resume_message(run, err)) from err
    model = done.model
    if data is not None:
        from ddvi.tasks.tabular import write_latent_tsv, write_map_figures

        z = model.transform(table.X)
        typer.echo(f"wrote {write_latent_tsv(run / 'latent.tsv', table.row_ids, z, table.labels, test)}")
    if evaluate_after:
        if data is None:
            m = done.metrics
        else:
            held_out = bool(test.any())
            m = run_eval(model, done.x_test, done.y_test, done.x_fit if held_out else None,
                         done.y_fit, mmd_samples=mmd_samples, seed=seed, dataset=dataset)
            m["train_seconds"] = done.train_seconds
        m["n_train"] = int(len(done.x_fit))
        m["n_labels"] = n_labels
        if data is not None:
            m.update(_table_metrics(table, test, test_fraction, likelihood, why, standardize,
                                    classes))
        write_json(m, run / "metrics.json")
        if data is None:
            write_figures(model, run, done.x_test, done.y_test, seed=seed)
        else:
            _, note = write_map_figures(run, z, table.labels, table.row_ids, test,
                                        model.history_, f"{method} / {prior} prior: {data.name}")
            if note:
                typer.echo(note)
        _print_metrics(m)
    typer.echo(f"run folder: {run}")


def _refuse_options(ctx: typer.Context, names: tuple[str, ...], why: str) -> None:
    """Refuse options given on the command line that have no meaning in this fit."""
    given = [f"--{n.replace('_', '-')}" for n in names  # typer may vendor its own click
             if getattr(ctx.get_parameter_source(n), "name", None) == "COMMANDLINE"]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} {why}", param_hint=given[0])


def _image_likelihood(likelihood: str, binarize: bool | None, standardize: bool) -> tuple[str, str]:
    """The likelihood of an image fit and why: auto is bernoulli (gaussian with --standardize)."""
    from ddvi.tasks.tabular import LIKELIHOOD_CHOICES

    if likelihood not in LIKELIHOOD_CHOICES:
        raise typer.BadParameter(f"unknown likelihood {likelihood!r}; choose one of "
                                 f"{LIKELIHOOD_CHOICES}", param_hint="--likelihood")
    if likelihood != "auto":
        return likelihood, "as requested"
    if standardize:
        return "gaussian", "--standardize makes the pixels real-valued"
    return "bernoulli", "images: pixels scaled to [0, 1]" + (", binarized at 0.5"
                                                            if binarize is not False else "")


def _table_metrics(table, test, test_fraction: float, likelihood: str, why: str,
                   standardize: bool, classes: list[str] | None) -> dict:
    """What metrics.json says about a --data fit: the data, the split, the likelihood, the
    label codes the label-based metrics use."""
    out = {"data": table.source, "n_held_out": int(test.sum()), "test_fraction": test_fraction,
           "evaluated_on": "the held-out test rows" if test.any() else
           "the training rows (--test-fraction 0: no held-out rows)",
           "likelihood": likelihood, "likelihood_reason": why, "standardize": standardize}
    if not test.any():
        out["knn_accuracy"] = None
        out["knn_protocol"] = "N/A: no held-out rows (--test-fraction 0)"
    if classes is not None:
        out["label_codes"] = {c: i for i, c in enumerate(classes)}
    return out


def _resume_message(run: Path, err: ResumeMismatchError) -> str:
    """A refused --resume in the command's own words (its option names)."""
    import inspect

    flags = inspect.signature(fit).parameters
    if err.option == "data":
        what = ("the training data differ from the run's: give the same --dataset, --data-dir, "
                "--n-train (or --data, --test-fraction), --n-labels, --balanced and --seed")
    elif err.option == "task":
        what = (f"the run's task is {err.stored}, not {err.new}: give the same --n-labels / "
                "--n-clusters")
    elif err.option in flags:
        def shown(value: object) -> str:
            return "(the default)" if value is None else str(value)

        what = (f"the run was fitted with --{err.option.replace('_', '-')} {shown(err.stored)}, "
                f"not {shown(err.new)}: give the same value")
    else:
        what = f"the run was fitted with {err.option}={err.stored!r}, not {err.new!r}"
    return (f"cannot resume {run}: {what}, or start a new run with another --out (only --epochs, "
            "--quiet and the evaluation options may change on --resume)")


def _print_metrics(m: dict) -> None:
    keys = ["elbo", "elbo_per_pixel_rec", "mmd", "latent_nll", "knn_accuracy", "accuracy"]
    parts = [f"{k}={m[k]:.4g}" for k in keys if isinstance(m.get(k), float)]
    typer.echo(f"{m['method']} / {m['prior']}: " + "  ".join(parts))


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="run folder written by `ddvi fit`"),
    dataset: str = typer.Option("mnist"),
    data_dir: Path | None = typer.Option(None),
    mmd_samples: int = typer.Option(10_000, help="samples per side for MMD (paper: 10 000)"),
    elbo_samples: int = typer.Option(1, help="posterior samples per example for the ELBO"),
    knn: bool = typer.Option(True, help="also compute kNN-20 accuracy (encodes the training set)"),
    seed: int = typer.Option(0),
) -> None:
    """Compute the paper's metrics for a fitted run; writes RUN/metrics.json.

    Examples:

      ddvi evaluate runs/ddvi-pinwheel

      ddvi evaluate runs/ddvi-pinwheel --mmd-samples 2000 --no-knn
    """
    from ddvi.report import evaluate as run_eval
    from ddvi.report import write_json

    model = _load(run)
    (x_train, y_train), (x_test, y_test) = load_dataset(dataset, data_dir)
    m = run_eval(model, x_test, y_test, x_train if knn else None, y_train if knn else None,
                 mmd_samples=mmd_samples, elbo_samples=elbo_samples, seed=seed, dataset=dataset)
    write_json(m, run / "metrics.json")
    _print_metrics(m)
    typer.echo(f"wrote {run / 'metrics.json'}")


@app.command()
def plot(
    run: Path = typer.Argument(..., help="run folder written by `ddvi fit`"),
    dataset: str = typer.Option("mnist"),
    data_dir: Path | None = typer.Option(None),
    seed: int = typer.Option(0),
) -> None:
    """Draw latents.png (test latents by class beside prior samples), samples.png, history.png.

    Example:

      ddvi plot runs/ddvi-pinwheel
    """
    from ddvi.report import write_figures

    model = _load(run)
    _, (x_test, y_test) = load_dataset(dataset, data_dir)
    for p in write_figures(model, run, x_test, y_test, seed=seed):
        typer.echo(f"wrote {p}")


@app.command()
def embed(
    model: Path = typer.Option(..., help="model folder written by `ddvi fit --data` (RUN/model)"),
    data: Path = typer.Option(..., help="the new rows: the fit's features in the same order "
                                        "(.csv/.tsv/.txt, .npy, .npz, .h5ad)"),
    label_column: str | None = typer.Option(None, help="labels of the new rows (CSV column, "
                                                       ".h5ad obs column, .npz array)"),
    id_column: str | None = typer.Option(None, help="row ids (default as for `ddvi fit --data`)"),
    array: str | None = typer.Option(None, help=".npz: the array holding the matrix"),
    out: Path = typer.Option(..., "--out", "-o", help="the latent.tsv to write"),
) -> None:
    """Place new rows on a fitted map (the model's standardization included) and write their
    latents as a TSV: row_id, z1, z2 and label. Column names (CSV, .h5ad genes) must match
    the fit's.

    Examples:

      ddvi embed --model runs/cells/model --data new_cells.csv --label-column type --out new.tsv

      ddvi embed --model runs/pbmc/model --data pbmc_new.h5ad --label-column cell_type -o new.tsv
    """
    from ddvi.data.tables import check_feature_names, load_table
    from ddvi.tasks.tabular import write_latent_tsv

    fitted = _load(model)
    table = load_table(data, label_column=label_column, id_column=id_column, array=array)
    check_feature_names(table, fitted.options_.feature_names, fitted.options_.n_features)
    try:
        z = fitted.transform(table.X)
    except ValueError as err:
        raise ValueError(f"{data}: {err}") from err
    out.parent.mkdir(parents=True, exist_ok=True)
    path = write_latent_tsv(out, table.row_ids, z, table.labels)
    typer.echo(f"placed {len(z)} rows of {data}; wrote {path}")


def _load(run: Path):
    """The model of a run folder: RUN/model, else the weights or last checkpoint in RUN itself."""
    from ddvi.estimators import DDVI, MODEL_FILE
    from ddvi.train import CHECKPOINT

    if not run.is_dir():
        raise FileNotFoundError(f"run folder {run} does not exist" if not run.exists() else
                                f"{run} is not a run folder (a run folder is a directory written "
                                "by `ddvi fit`)")
    if (run / "model").is_dir():
        return DDVI.load(run / "model")
    if not ((run / MODEL_FILE).is_file() or (run / CHECKPOINT).is_file()):
        raise FileNotFoundError(f"{run} is not a run folder (no model/ folder with {MODEL_FILE}, "
                                f"no {CHECKPOINT}); write one with `ddvi fit --out {run}`")
    return DDVI.load(run)


def main() -> None:
    try:
        app()
    except (ValueError, FileNotFoundError, RuntimeError, NotImplementedError, ImportError) as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
