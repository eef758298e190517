"""One fit of a benchmark grid as a pure function of a JSON config (run by :mod:`ddvi.bench.runner`,
in this process or on a Dask worker). Each returns JSON-able metrics plus a small sample of the
2-D latents for the table's figures."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_inputs", "embedding_fit", "genotype_fit", "image_fit", "run_task"]

FIGURE_POINTS = 2000  # latents kept per fit for the figures


def _threads() -> int | str:
    """Set and return the worker's thread count (``DDVI_BENCH_THREADS``, default 1; ``auto``: the
    estimator's choice); fits get it explicitly, so the estimator's ``threads="auto"`` never
    oversubscribes a worker's core."""
    import torch

    value = os.environ.get("DDVI_BENCH_THREADS", "1").strip().lower()
    if value == "auto":
        return value
    n = int(value)
    torch.set_num_threads(n)
    return n


def _device() -> str:
    """The device a worker's fits use: ``DDVI_BENCH_DEVICE`` (default ``auto``). With several
    GPUs and a plain ``auto``/``cuda``, Dask worker number i takes GPU i mod (number of GPUs), so
    each local worker gets its own GPU."""
    import torch

    spec = os.environ.get("DDVI_BENCH_DEVICE", "auto").strip().lower()
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec in ("auto", "cuda") and count > 1:
        try:
            from distributed import get_worker

            index = int(get_worker().name)
        except (ImportError, ValueError, TypeError):  # not on a worker, or a named remote worker
            index = 0
        return f"cuda:{index % count}"
    return spec


def _points(z: np.ndarray, labels: np.ndarray | None, seed: int) -> dict[str, list]:
    idx = np.random.default_rng(seed).permutation(len(z))[:FIGURE_POINTS]
    out = {"z": np.round(z[idx], 4).tolist()}
    if labels is not None:
        out["labels"] = [str(v) for v in np.asarray(labels)[idx]]
    return out


def image_fit(config: dict[str, Any]) -> dict[str, Any]:
    """Fit and evaluate one image fit (:class:`ddvi.fitting.ImageFitConfig` as a dict, plus the
    grid's labels) with :func:`ddvi.fitting.fit_and_evaluate`, on this worker's device and threads."""
    from ddvi.fitting import ImageFitConfig, fit_and_evaluate

    fit = ImageFitConfig.from_dict(config)
    done = fit_and_evaluate(fit, device=_device(), threads=_threads())
    return {**done.metrics, "points": _points(done.model.transform(done.x_test), done.y_test, fit.seed)}


@functools.lru_cache(maxsize=2)
def _cohort_features(cohort: str, n_snps: int | None, n_components: int, workdir: str):
    from ddvi.tasks.ancestry import cohort_source, prepare_genotypes

    source, labels, description = cohort_source(cohort, Path(workdir) / f"{cohort}-{n_snps}", 0,
                                                n_snps)  # n_snps None: all SNPs (paper scale)
    return prepare_genotypes(source, labels, n_components=n_components, description=description)


def _genotype_data(config: dict[str, Any]):
    workdir = config.get("workdir") or str(Path.home() / ".cache" / "ddvi" / "bench-cohorts")
    return _cohort_features(config["cohort"], config.get("n_snps"), config.get("n_components", 1000),
                            workdir)


def genotype_fit(config: dict[str, Any]) -> dict[str, Any]:
    """Fit a clustering model (K = ``n_clusters``) on a cohort's PCs/30 and score its map.

    With ``time_marks`` (seconds), training proceeds in chunks of ``chunk_epochs`` epochs and the
    map is scored each time the wall-clock passes a mark (the paper's Table 5: NMI against
    training time); otherwise it trains ``epochs`` epochs and is scored once."""
    import tempfile

    from ddvi.tasks.ancestry import genotype_model, score_map

    threads = _threads()
    data = _genotype_data(config)
    seed = int(config["seed"])
    pops, supers = data.populations, data.super_populations
    marks = list(config.get("time_marks") or [])
    with tempfile.TemporaryDirectory() as tmp:
        # the timed run continues from a checkpoint written once per chunk; the plain one keeps none
        model = genotype_model(config["method"], config.get("n_clusters", 20), config["epochs"], seed,
                               verbose=False, run_dir=tmp if marks else None,
                               checkpoint_every=10**9, threads=threads, device=_device(),
                               **config.get("options", {}))
        trace = []
        start, scoring = time.perf_counter(), 0.0
        if marks:
            chunk, epochs = int(config.get("chunk_epochs", 5)), 0
            while marks and epochs < config["epochs"]:
                epochs = min(epochs + chunk, config["epochs"])
                model.set_params(epochs=epochs)
                model.fit(data.features, resume=epochs > chunk)
                elapsed = time.perf_counter() - start - scoring  # training time only
                while marks and (elapsed >= marks[0] or epochs >= config["epochs"]):
                    t0 = time.perf_counter()
                    z = model.transform(data.features)
                    trace.append({"mark_seconds": marks.pop(0), "seconds": elapsed, "epochs": epochs,
                                  **score_map(z, pops, None)["gmm20"]["population"]})
                    scoring += time.perf_counter() - t0
        else:
            model.fit(data.features)
        seconds = time.perf_counter() - start - scoring
        z = model.transform(data.features)
        scores = score_map(z, pops, supers, model.predict(data.features))
    return {"train_seconds": seconds, "scores": scores, "trace": trace, "data": data.description,
            "elbo": _elbo(model, data.features, seed), "points": _points(z, pops, seed)}


def _elbo(model, features: np.ndarray, seed: int) -> float | None:
    """Mean ELBO (nats per sample), None for a method without one (AAEB)."""
    return model.score(features, seed=seed) if model.method_.has_elbo else None


def embedding_fit(config: dict[str, Any]) -> dict[str, Any]:
    """PCA / t-SNE / UMAP map of a cohort's PCs/30, scored like the models' maps."""
    from ddvi.embeddings import embed_timed
    from ddvi.tasks.ancestry import score_map

    data = _genotype_data(config)
    z, seconds = embed_timed(config["method"], data.features, seed=int(config["seed"]))
    return {"train_seconds": seconds, "data": data.description,
            "scores": score_map(z, data.populations, data.super_populations),
            "points": _points(z, data.populations, int(config["seed"]))}


TASKS = {"image": image_fit, "genotype": genotype_fit, "embedding": embedding_fit}


def run_task(config: dict[str, Any]) -> dict[str, Any]:
    """Run the fit a config describes (its ``task``: image, genotype or embedding)."""
    if config.get("task") not in TASKS:
        raise ValueError(f"unknown task {config.get('task')!r}; choose one of {sorted(TASKS)}")
    return TASKS[config["task"]](config)


def check_inputs(configs: list[dict[str, Any]]) -> None:
    """Fail before any fit when an image set the grid needs is absent (e.g. CIFAR-10 is never
    downloaded by a bench: the message says where to put it)."""
    from ddvi.fitting import load_images

    for dataset, data_dir in {(c["dataset"], c.get("data_dir")) for c in configs
                              if c.get("task") == "image"}:
        load_images(dataset, data_dir)
