"""One estimator per task: :class:`DDVI` (unsupervised), :class:`SemiSupervisedDDVI` (section
4.1) and :class:`ClusteringDDVI` (section 4.2).

Example:
    >>> import numpy as np
    >>> X = (np.random.default_rng(0).random((64, 16)) > 0.5).astype("float32")
    >>> model = DDVI(method="aevb", prior="gaussian", hidden=(8,), epochs=1, verbose=False).fit(X)
    >>> model.transform(X).shape
    (64, 2)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ddvi.config import ModelConfig
from ddvi.estimators import _docs
from ddvi.estimators.base import BaseDDVI, _store
from ddvi.methods import Method, build_method
from ddvi.priors import SamplesPrior

_FIT_DOC = """

        ``resume`` continues from ``run_dir``'s checkpoint (if there is one). The run must go on
        as it started: every parameter except those in ``RESUMABLE`` (e.g. ``epochs``), the task
        and the data must be the stored ones, else :class:`ResumeMismatchError` names the first
        difference; a DDVI checkpoint of an older posterior format is refused.

        ``feature_names`` (one per column of X) are stored with the model
        (``options_.feature_names``) so that new data can be checked against them."""


def _labels(y: Any, n: int) -> torch.Tensor:
    """Integer class labels (-1 = unlabeled) with at least one labelled row."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    if y.dtype == object:
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if y.dtype.kind not in "biuf":
        example = y.flat[0] if y.size else None
        raise ValueError(f"Unknown label type: y must hold integer class labels (-1 = "
                         f"unlabeled), got dtype {y.dtype} (e.g. {example!r}); map the "
                         "classes to 0..K-1 first")
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
        raise ValueError("y must hold integer class labels (-1 = unlabeled)")
    y = y.astype(np.int64)
    if (y < -1).any():
        raise ValueError("labels must be >= 0, or -1 for unlabeled rows")
    if not (y >= 0).any():
        raise ValueError("y has no labelled rows (every entry is -1): a semi-supervised fit "
                         "needs at least one label; call DDVI().fit(X) for an "
                         "unsupervised model")
    return torch.from_numpy(y)


class DDVI(BaseDDVI):
    """Fit an unsupervised latent variable model with a structured prior by DDVI or a baseline.

    Defaults follow the paper (appendices G, H): MLP encoder/decoder 2x1000, a 5-layer 128-unit
    denoiser with T = 20 steps, Adam with lr 1e-4 (AAEB 2e-4), batch 128. DDVI's posterior starts
    as AEVB's Gaussian (its chain's residuals start at zero) and can only add to it. For labels
    use :class:`SemiSupervisedDDVI`, for clusters :class:`ClusteringDDVI`.

    Parameters
    ----------
    {params}
    Example
    -------
    >>> import numpy as np
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(np.float32)
    >>> DDVI(epochs=1, hidden=(16,), verbose=False).fit_transform(X).shape
    (64, 2)
    """

    __doc__ = __doc__.format(params=_docs.COMMON.lstrip())
    task = "unsupervised"

    def fit(self, X: Any, y: Any = None, resume: bool = False,
            feature_names: Sequence[str] | None = None) -> DDVI:
        """Fit on X (n, d) or images (n, H, W[, C]). ``y`` is ignored with a warning (as
        scikit-learn's transformers ignore it, e.g. in a pipeline); labels with -1 for unlabeled
        rows are refused: that is :class:`SemiSupervisedDDVI`'s fit."""
        if y is not None:
            if np.any(np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y) == -1):
                raise ValueError("DDVI is unsupervised and takes no labels: for a semi-supervised "
                                 "fit (y = -1 for unlabeled rows) use "
                                 "ddvi.SemiSupervisedDDVI(...).fit(X, y)")
            warnings.warn("y is ignored: DDVI is unsupervised (for a semi-supervised fit use "
                          "ddvi.SemiSupervisedDDVI)", UserWarning, stacklevel=2)
        return self._fit_with(X, None, resume, feature_names)

    fit.__doc__ += _FIT_DOC

    def _task_options(self, data: torch.Tensor, y: Any
                      ) -> tuple[dict[str, Any], torch.Tensor | None]:
        return {}, None

    def _build(self, config: ModelConfig, n_features: int, task_options: dict[str, Any],
               prior: SamplesPrior | None = None) -> Method:
        return build_method(config, n_features, prior=prior)


class SemiSupervisedDDVI(BaseDDVI):
    """Fit a semi-supervised model (section 4.1): the prior's partitions are the classes, a
    classifier q(l|x) is trained with weight ``alpha`` on the labelled rows; ``predict`` gives
    classes, ``predict_proba`` one column per partition of the prior.

    Parameters
    ----------
    {params}
    Example
    -------
    >>> import numpy as np
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(np.float32)
    >>> y = np.full(64, -1); y[:10] = np.arange(10)
    >>> model = SemiSupervisedDDVI(epochs=1, hidden=(16,), classifier_hidden=(16,),
    ...                            verbose=False).fit(X, y)
    >>> model.predict(X).shape
    (64,)
    """

    __doc__ = __doc__.format(params=(_docs.COMMON + _docs.SEMI_SUPERVISED).lstrip())
    task = "semi-supervised"

    def __init__(self, method: str = "ddvi", prior: str | SamplesPrior = "pinwheel",
                 likelihood: str = "bernoulli",
                 latent_dim: int = 2, epochs: int = 10, batch_size: int = 128, lr: float | None = None,
                 hidden: tuple[int, ...] | None = None, sleep: str = "none", timesteps: int = 20,
                 schedule: str = "linear", beta_reg: float | None = None, beta_diff: float = 1.0,
                 sleep_steps: int = 1, fantasy: str = "sample", context_dim: int | None = None,
                 denoiser_hidden: int = 128, denoiser_layers: int = 5,
                 learn_variance: bool = True, prior_weight: float | None = None,
                 warmup_steps: int = 0, dropout: float = 0.0, binarize: bool = True,
                 standardize: bool = False, seed: int = 0, verbose: bool = True,
                 run_dir: str | None = None, checkpoint_every: int = 1, arch: str = "mlp",
                 beta_start: float | None = None, beta_end: float | None = None,
                 threads: int | str = "auto", device: str = "auto", compile: bool = False,
                 guidance: str = "auto",
                 alpha: float = 1000.0, labeled_batch_size: int = 32,
                 classifier_hidden: tuple[int, ...] = (1000,)):
        _store(self, locals())

    def fit(self, X: Any, y: Any, resume: bool = False,
            feature_names: Sequence[str] | None = None) -> SemiSupervisedDDVI:
        """Fit on X (n, d) or images (n, H, W[, C]) and class labels ``y`` (-1 = unlabeled; at
        least one labelled row)."""
        return self._fit_with(X, y, resume, feature_names)

    fit.__doc__ += _FIT_DOC

    def _task_options(self, data: torch.Tensor, y: Any
                      ) -> tuple[dict[str, Any], torch.Tensor | None]:
        if y is None:
            raise ValueError("SemiSupervisedDDVI.fit needs labels y (-1 = unlabeled); call "
                             "DDVI().fit(X) for an unsupervised model")
        return ({"alpha": self.alpha, "classifier_hidden": list(self.classifier_hidden)},
                _labels(y, data.shape[0]))

    def _build(self, config: ModelConfig, n_features: int, task_options: dict[str, Any],
               prior: SamplesPrior | None = None) -> Method:
        from ddvi.tasks import build_semi_supervised

        build = {k: v for k, v in config.flat().items() if k != "method"}
        if prior is not None:
            build["prior"] = prior
        return build_semi_supervised(config.method, n_features, alpha=task_options["alpha"],
                                     classifier_hidden=tuple(task_options["classifier_hidden"]),
                                     **build)

    @torch.no_grad()
    def predict_proba(self, X: Any, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities q(l|x), one column per partition of the prior."""
        self._check_fitted()
        data = self.prepare(X)
        self.method_.eval()
        return self._batched(self.method_.predict_proba, data, batch_size)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row of X."""
        return self.predict_proba(X).argmax(1)

    def __sklearn_tags__(self):
        """scikit-learn tags: ``fit`` needs ``y``."""
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


class ClusteringDDVI(BaseDDVI):
    """Cluster the data (section 4.2) with a latent variable model: ``fit_predict`` and
    ``predict`` give cluster ids, ``labels_`` those of the training rows. The prior is the
    clustering model's (``prior`` is not used).

    Parameters
    ----------
    {params}
    Example
    -------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> ClusteringDDVI(method="aevb", likelihood="gaussian", n_clusters=3, epochs=1,
    ...                hidden=(16,), verbose=False).fit_predict(X).shape
    (64,)
    """

    __doc__ = __doc__.format(params=(_docs.COMMON + _docs.CLUSTERING).lstrip())
    task = "clustering"

    def __init__(self, method: str = "ddvi", prior: str | SamplesPrior = "pinwheel",
                 likelihood: str = "bernoulli",
                 latent_dim: int = 2, epochs: int = 10, batch_size: int = 128, lr: float | None = None,
                 hidden: tuple[int, ...] | None = None, sleep: str = "none", timesteps: int = 20,
                 schedule: str = "linear", beta_reg: float | None = None, beta_diff: float = 1.0,
                 sleep_steps: int = 1, fantasy: str = "sample", context_dim: int | None = None,
                 denoiser_hidden: int = 128, denoiser_layers: int = 5,
                 learn_variance: bool = True, prior_weight: float | None = None,
                 warmup_steps: int = 0, dropout: float = 0.0, binarize: bool = True,
                 standardize: bool = False, seed: int = 0, verbose: bool = True,
                 run_dir: str | None = None, checkpoint_every: int = 1, arch: str = "mlp",
                 beta_start: float | None = None, beta_end: float | None = None,
                 threads: int | str = "auto", device: str = "auto", compile: bool = False,
                 guidance: str = "auto",
                 n_clusters: int = 8, cluster_model: str = "mixture"):
        _store(self, locals())

    def fit(self, X: Any, y: Any = None, resume: bool = False,
            feature_names: Sequence[str] | None = None) -> ClusteringDDVI:
        """Fit on X (n, d) or images (n, H, W[, C]) and set ``labels_``; ``y`` is ignored with a
        warning, as by scikit-learn's clusterers."""
        if y is not None:
            warnings.warn("y is ignored: ClusteringDDVI clusters the data (for a "
                          "semi-supervised fit use ddvi.SemiSupervisedDDVI)", UserWarning,
                          stacklevel=2)
        return self._fit_with(X, None, resume, feature_names)

    fit.__doc__ += _FIT_DOC

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return the cluster of each row (``y`` is ignored)."""
        return self.fit(X, y).labels_

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of each row of X."""
        from ddvi.tasks import predict_clusters

        self._check_fitted()
        return predict_clusters(self.method_, self.prepare(X))

    def _uses_prior(self) -> bool:
        return False

    def _task_options(self, data: torch.Tensor, y: Any
                      ) -> tuple[dict[str, Any], torch.Tensor | None]:
        if self.n_clusters is None or self.n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters}")
        return {"n_clusters": self.n_clusters, "cluster_model": self.cluster_model,
                "n_data": int(data.shape[0])}, None

    def _build(self, config: ModelConfig, n_features: int, task_options: dict[str, Any],
               prior: SamplesPrior | None = None) -> Method:
        from ddvi.tasks import build_cluster_variable, build_mixture_clustering

        build = {k: v for k, v in config.flat().items()
                 if k not in ("method", "prior", "prior_options")}
        k, model = task_options["n_clusters"], task_options["cluster_model"]
        if model == "mixture":
            return build_mixture_clustering(config.method, n_features, k, seed=self.seed, **build)
        if model == "variable":
            return build_cluster_variable(config.method, n_features, k, mode="prior",
                                          seed=self.seed, n_data=task_options["n_data"], **build)
        raise ValueError(f"unknown cluster_model {model!r}; choose 'mixture' or 'variable'")

    def _after_fit(self, data: torch.Tensor) -> None:
        from ddvi.tasks import predict_clusters

        self.labels_ = predict_clusters(self.method_, data)

    def __sklearn_tags__(self):
        """scikit-learn tags: a clusterer."""
        tags = super().__sklearn_tags__()
        tags.estimator_type = "clusterer"
        return tags


TASK_CLASSES: dict[str, type[BaseDDVI]] = {
    "unsupervised": DDVI, "semi-supervised": SemiSupervisedDDVI, "clustering": ClusteringDDVI}
"""The estimator of each task (``options.task`` of a saved model)."""


def estimator_for(labels: bool = False, **params: Any) -> BaseDDVI:
    """The estimator of the task ``params`` and ``labels`` ask for, as ``ddvi fit`` picks it:
    :class:`ClusteringDDVI` when ``n_clusters`` is set, else :class:`SemiSupervisedDDVI` with
    ``labels``, else :class:`DDVI`; the parameters of the other tasks are dropped (any other
    unknown one is a TypeError)."""
    if params.get("n_clusters") is not None:
        cls: type[BaseDDVI] = ClusteringDDVI
    else:
        cls = SemiSupervisedDDVI if labels else DDVI
    other = {k for c in TASK_CLASSES.values() for k in c._get_param_names()}
    other -= set(cls._get_param_names())
    return cls(**{k: v for k, v in params.items() if k not in other})
