"""The ``ddvi compare`` and ``ddvi bench`` commands (registered on :data:`ddvi.cli.app`): grids of
fits run by the bench engine (:mod:`ddvi.bench`), and the option parsing they share with
``ddvi fit``."""

from __future__ import annotations

from pathlib import Path

import typer

from ddvi.devices import DEVICE_HELP

__all__ = ["bench", "compare", "csv_items", "device_words"]


def csv_items(value: str, cast=str) -> list:
    """The items of a comma-separated option (BadParameter when there are none)."""
    items = [cast(v.strip()) for v in value.split(",") if v.strip()]
    if not items:
        raise typer.BadParameter(f"empty list {value!r}")
    return items


def compare(
    methods: str = typer.Option("aevb,ddvi", help="comma-separated methods"),
    priors: str = typer.Option("pinwheel,swiss_roll,square", help="comma-separated priors"),
    seeds: str = typer.Option("0,1,2", help="comma-separated seeds"),
    epochs: int = typer.Option(5, min=1),
    n_train: int | None = typer.Option(None, help="random subset of the training set per fit"),
    dataset: str = typer.Option("mnist"),
    data_dir: Path | None = typer.Option(None),
    mmd_samples: int = typer.Option(2000, help="samples per side for MMD (paper: 10 000)"),
    n_labels: int | None = typer.Option(None, help="semi-supervised with this many class-balanced "
                                              "labels: the Table 2 layout (paper: 1000)"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    out: Path = typer.Option(Path("runs/compare"), "--out", "-o"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Fit methods x priors x seeds and write the paper's Table 1 layout (table1.md/json) to OUT,
    or with --n-labels the semi-supervised Table 2 layout (table2.md/json).

    Finished fits are cached in OUT/fits, so an interrupted comparison resumes where it stopped.

    Examples:

      ddvi compare --methods aevb,ddvi --priors pinwheel --seeds 0,1 --epochs 2 --n-train 10000

      ddvi compare --out runs/table1 --epochs 20

      ddvi compare --methods aevb,aevb-iaf,aaeb,ddvi --n-labels 1000 --out runs/table2
    """
    from ddvi.bench.compare import compare as run_compare
    from ddvi.methods import METHODS

    method_list = csv_items(methods)
    unknown = [m for m in method_list if m not in METHODS]
    if unknown:
        raise typer.BadParameter(f"unknown methods {unknown}; choose from {METHODS}")
    device_words(device)
    result = run_compare(method_list, csv_items(priors), csv_items(seeds, int), epochs, out,
                         device=device, n_train=n_train, dataset=dataset, data_dir=data_dir,
                         mmd_samples=mmd_samples, verbose=not quiet, n_labels=n_labels)
    typer.echo(result["markdown"])
    typer.echo(f"wrote {out / (result['layout'] + '.md')} and {out / (result['layout'] + '.json')}")


def bench(
    table: str = typer.Argument(..., help="table1 | table2 | table3 | table5 | table7 | table8 | table9"),
    scale: str = typer.Option("smoke", help="smoke (minutes) | cpu (this machine, < 1 h, near "
                                            "posterior collapse) | mid (all images, 10 epochs) | "
                                            "paper (the paper's settings)"),
    seeds: str | None = typer.Option(None, help="comma-separated seeds (default: by scale)"),
    rows: str | None = typer.Option(None, help="comma-separated subset of the table's methods"),
    priors: str = typer.Option("pinwheel,swiss_roll,square", help="image tables: priors"),
    dataset: str | None = typer.Option(None, help="image tables: another image set, e.g. "
                                                  "fashion-mnist"),
    data_dir: Path | None = typer.Option(None, help="folder of the image set (CIFAR-10: the "
                                                    "cifar-10-batches-py folder)"),
    cohort: str = typer.Option("synthetic-1kg", help="genotype tables: synthetic-1kg | msprime-1kg"),
    workers: int = typer.Option(1, min=1, help="parallel fits on a local Dask cluster (1: in this "
                                               "process, one fit after another)"),
    scheduler: str | None = typer.Option(None, help="address of a running dask.distributed "
                                                    "scheduler, e.g. tcp://10.0.0.5:8786"),
    device: str | None = typer.Option(None, help=f"{DEVICE_HELP} (default: $DDVI_BENCH_DEVICE, "
                                                 "else auto; local workers get one GPU each)"),
    out: Path = typer.Option(Path("runs/bench"), "--out", "-o"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Reproduce one of the paper's tables: every fit of methods x priors x seeds, cached in
    OUT/fits (an interrupted bench resumes), then OUT/TABLE.md, .json and .png with mean ± 95%
    t-interval over seeds beside the paper's numbers.

    Examples:

      ddvi bench table1 --scale smoke

      ddvi bench table3 --scale cpu --workers 2 --out runs/bench

      ddvi bench table2 --scale cpu --rows aevb,ddvi --priors pinwheel --seeds 0,1

      ddvi bench table7 --scale cpu --data-dir ~/data/cifar-10-batches-py

      ddvi bench table1 --scale paper --scheduler tcp://scheduler:8786

      ddvi bench table1 --scale paper --device cuda --priors pinwheel --seeds 0
    """
    from ddvi.bench.tables import run_bench

    if device is not None:
        device_words(device)
    result = run_bench(table, scale, out, None if seeds is None else csv_items(seeds, int),
                       scheduler=scheduler, workers=workers, progress=not quiet,
                       rows=None if rows is None else csv_items(rows), priors=csv_items(priors),
                       dataset=dataset, data_dir=None if data_dir is None else str(data_dir),
                       cohort=cohort, device=device)
    typer.echo(result["markdown"])
    typer.echo(f"wrote {out / (table + '.md')}, {out / (table + '.json')}"
               + (f" and {result['figure']}" if result["figure"] else ""))


def device_words(spec: str) -> str:
    """Where ``--device`` computes, in words (e.g. ``cpu (auto: no GPU found)``); BadParameter
    naming the devices there are when the machine lacks it."""
    from ddvi.devices import resolve_device

    try:
        device = resolve_device(spec)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--device") from err
    auto = spec.strip().lower() == "auto"
    return f"{device} (auto: no GPU found)" if auto and device.type == "cpu" else str(device)
