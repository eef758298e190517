"""One image fit, configured by a typed :class:`ImageFitConfig`: load the split, train, evaluate
with the paper's metrics. The single fit-then-evaluate sequence behind ``ddvi fit`` (image data
sets), ``ddvi compare`` and ``ddvi bench``; a config round-trips through a JSON-able dict
(:meth:`ImageFitConfig.to_dict` / :meth:`ImageFitConfig.from_dict`), which is what the bench
runner hashes into its cache keys and ships to Dask workers."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ddvi.estimators import BaseDDVI

__all__ = ["FitOutcome", "ImageFitConfig", "fit_and_evaluate", "load_images", "train"]

#: keys a bench grid adds to a fit's dict to label it (not part of the fit itself)
LABEL_KEYS = ("task", "scale", "row")


@dataclass(frozen=True)
class ImageFitConfig:
    """What one image fit is: the model (method, prior, estimator ``options``), its seed and
    epochs, the data (``n_train`` / ``n_test`` seeded subsets, all rows when None; ``n_labels``
    labels kept for a semi-supervised fit, class-balanced unless ``balanced_labels`` is False)
    and the evaluation (``mmd_samples``). Runtime choices (device, threads, run folder) are not
    part of it, so they never change a cache key."""

    method: str
    prior: str
    seed: int = 0
    epochs: int = 10
    dataset: str = "mnist"
    n_train: int | None = None
    n_test: int | None = None
    n_labels: int | None = None
    mmd_samples: int = 2000
    options: Mapping[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    balanced_labels: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))  # a private copy
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))
        if self.n_labels is not None and self.n_labels < 1:
            raise ValueError(f"n_labels={self.n_labels} keeps no labels; a semi-supervised fit "
                             "needs at least one (None: unsupervised)")

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-able dict (``balanced_labels`` only when False, so the keys of
        caches written before it existed still match)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["options"] = dict(self.options)
        if self.balanced_labels:
            del out["balanced_labels"]
        return out

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ImageFitConfig:
        """The config of a dict from :meth:`to_dict`, ignoring a grid's labels (task, scale,
        row); unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - names - set(LABEL_KEYS))
        if unknown:
            raise ValueError(f"unknown image fit settings {unknown}; known: {sorted(names)}")
        return cls(**{k: v for k, v in config.items() if k in names})


@dataclass
class FitOutcome:
    """A fitted model, its training time, the data it saw and (unless skipped) its metrics."""

    model: BaseDDVI
    train_seconds: float
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    metrics: dict[str, Any] | None = None


@functools.lru_cache(maxsize=2)
def load_images(dataset: str, data_dir: str | None):
    """``((x_train, y_train), (x_test, y_test))`` of an image set, loaded once per process."""
    from ddvi.data import load_dataset

    return load_dataset(dataset, data_dir)


def train(model: BaseDDVI, x_fit: Any, y_fit: Any, n_labels: int | None, seed: int, *,
          balanced: bool = True, resume: bool = False, **fit_kw: Any) -> float:
    """Fit ``model`` (semi-supervised on ``n_labels`` seeded labels of ``y_fit`` when given);
    return the training seconds."""
    y_semi = None
    if n_labels is not None:
        from ddvi.tasks import select_labels

        y_semi = select_labels(y_fit, n_labels, seed=seed, balanced=balanced)
    start = time.perf_counter()
    model.fit(x_fit, y_semi, resume=resume, **fit_kw)
    return time.perf_counter() - start


def fit_and_evaluate(config: ImageFitConfig, *, run_dir: str | Path | None = None,
                     device: str = "auto", threads: int | str = "auto", verbose: bool = False,
                     resume: bool = False, evaluate: bool = True,
                     on_fit: Callable[[FitOutcome], None] | None = None) -> FitOutcome:
    """Fit ``config`` on ``device`` and evaluate it on its test rows (:func:`ddvi.report.evaluate`,
    kNN fitted on the training rows; metrics plus ``train_seconds``).

    With ``run_dir`` the fit keeps its checkpoints and history there (``resume`` continues from
    them) and the model is saved to ``run_dir/model`` before the evaluation. ``on_fit`` is called
    between training and evaluation (e.g. to report the training speed)."""
    from ddvi.data import subset
    from ddvi.estimators import estimator_for
    from ddvi.report import evaluate as evaluate_model

    (x_train, y_train), (x_test, y_test) = load_images(config.dataset, config.data_dir)
    x_fit, y_fit = subset(x_train, y_train, config.n_train, config.seed)
    x_test, y_test = subset(x_test, y_test, config.n_test or None, config.seed)
    model = estimator_for(config.n_labels is not None, method=config.method, prior=config.prior,
                          epochs=config.epochs, seed=config.seed, verbose=verbose,
                          run_dir=None if run_dir is None else str(run_dir), threads=threads,
                          device=device, **config.options)
    seconds = train(model, x_fit, y_fit, config.n_labels, config.seed,
                    balanced=config.balanced_labels, resume=resume)
    if run_dir is not None:
        model.save(Path(run_dir) / "model")
    outcome = FitOutcome(model, seconds, x_fit, y_fit, x_test, y_test)
    if on_fit is not None:
        on_fit(outcome)
    if evaluate:
        outcome.metrics = evaluate_model(model, x_test, y_test, x_fit, y_fit,
                                         mmd_samples=config.mmd_samples, seed=config.seed,
                                         dataset=config.dataset)
        outcome.metrics["train_seconds"] = seconds
    return outcome
