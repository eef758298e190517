"""A scikit-learn style estimator around every method.

Example:
    >>> import numpy as np
    >>> X = (np.random.default_rng(0).random((64, 16)) > 0.5).astype("float32")
    >>> model = DDVI(method="aevb", prior="gaussian", hidden=(8,), epochs=1, verbose=False).fit(X)
    >>> model.transform(X).shape
    (64, 2)
"""

from __future__ import annotations

import functools
import hashlib
import json
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from ddvi import devices, saved_config
from ddvi.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ddvi.config import FLAT_KEYS, ModelConfig
from ddvi.methods import PAPER_LR, Method, build_method
from ddvi.metrics import elbo as elbo_metric
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.priors import PRIORS, Prior, SamplesPrior, get_prior, samples_path
from ddvi.threads import configure_threads
from ddvi.train import Trainer

MODEL_FILE = "model.safetensors"
POSTERIOR_FORMAT = 2
"""2: DDVI's chain in standardised coordinates (the same weight names as format 1, other maths)."""

_MODEL_PARAMS = tuple(k for k in FLAT_KEYS if k != "prior_options")
"""The estimator's parameters that make its :class:`~ddvi.config.ModelConfig`."""


def check_array(X: Any, name: str = "X") -> np.ndarray:
    """Validate data and return float32 (n, d): images are flattened, uint8 is scaled to [0, 1].

    Sparse matrices are densified and object arrays of numbers converted; complex, string and
    empty data are refused with scikit-learn's wording.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if scipy.sparse.issparse(X):
        X = X.toarray()
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if X.dtype == object:
        try:
            X = X.astype(np.float64)
        except TypeError as err:
            raise TypeError(f"{name} must be numeric: {err}") from err
        except ValueError as err:
            raise ValueError(f"{name} must be numeric: {err}") from err
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features) or (n, H, W[, C]); "
                         f"got shape {X.shape}. Reshape your data: X.reshape(-1, 1) if it has a "
                         "single feature, X.reshape(1, -1) if it is a single sample")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                         "is required.")
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    X = X.reshape(X.shape[0], -1).astype(np.float32) / scale
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                         "required.")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))
        raise ValueError(f"{name} contains NaN or inf in {len(rows)} rows (first: {rows[:5].tolist()})")
    return X


def _output_dtype(X: Any) -> type:
    """float64 for float64 input (numpy or torch), else float32: transform preserves the dtype."""
    return np.float64 if str(getattr(X, "dtype", "")) in ("float64", "torch.float64") else np.float32


def _plain(value: Any) -> Any:
    """A parameter as plain JSON: numpy scalars as Python numbers, sequences as lists, paths as
    strings."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, SamplesPrior):  # a prior given as an object: its samples are in the weights
        return SamplesPrior.name
    return str(value) if isinstance(value, Path) else value


RESUMABLE = ("epochs", "verbose", "run_dir", "checkpoint_every", "threads", "device", "compile")
"""The parameters that may differ from the stored ones when a fit resumes."""
_FITTED = ("options_", "config_", "method_", "labels_", "history_", "n_features_in_")


class ResumeMismatchError(ValueError):
    """A resumed fit asks for another model, objective or data than the checkpoint's run."""

    def __init__(self, message: str, option: str, stored: Any, new: Any):
        super().__init__(message)
        self.option, self.stored, self.new = option, stored, new


def _fingerprint(data: torch.Tensor, labels: torch.Tensor | None) -> dict[str, Any]:
    """Rows and sha256 of the training data (and labels) as the model sees them."""
    h = hashlib.sha256(data.contiguous().numpy().tobytes())
    if labels is not None:
        h.update(b"labels" + labels.contiguous().numpy().tobytes())
    return {"rows": int(data.shape[0]), "labelled": None if labels is None else
            int((labels >= 0).sum()), "sha256": h.hexdigest()}


def _standardization(X: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and standard deviation (ddof 0) of the training rows as float32 values
    (exact in JSON); a constant feature gets std 1, so it becomes 0 everywhere."""
    mean = X.mean(0, dtype=np.float64).astype(np.float32)
    std = X.std(0, dtype=np.float64).astype(np.float32)
    std[(X == X[0]).all(0) | (std == 0)] = 1.0
    return mean.tolist(), std.tolist()


def _standardize(X: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    return (X - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def _check_resume(meta: dict[str, Any], new: dict[str, Any], file: Path | None) -> None:
    """Refuse to resume from a checkpoint whose run differs from the new fit (or is of an older
    DDVI posterior format): raise ResumeMismatchError naming the first differing option."""
    stored = upgrade_config(meta.get("config"), f"checkpoint {file}")
    saved_config.validate(stored, _param_types(), f"checkpoint {file}")
    options = stored["options"]
    _check_posterior_format(stored["model"]["method"], _Options(**options), file,
                            "it cannot be resumed; start a new run in another folder")
    pairs = [(k, stored["params"].get(k), new["params"].get(k)) for k in new["params"]
             if k not in RESUMABLE]
    diff = saved_config.first_difference(stored["model"], new["model"])
    if diff is not None:
        pairs.append((f"model.{diff[0]}", diff[1], diff[2]))
    pairs += [(k, options.get(k), new["options"][k])
              for k in ("n_features", "task", "task_options", "prior_samples")]
    for option, old, value in pairs:
        if old != value:
            raise ResumeMismatchError(
                f"cannot resume from {file}: the run was fitted with {option}={old!r}, not "
                f"{value!r}. Everything that defines the model or the objective must stay as it "
                f"was (only {', '.join(RESUMABLE)} may change): use the stored value, or start "
                "a new run in another folder", option, old, value)
    if "data" in stored and stored["data"] != new.get("data"):
        old, value = stored["data"], new.get("data") or {}
        raise ResumeMismatchError(
            f"cannot resume from {file}: the training data differ from the run's ({old['rows']} "
            f"rows, {old.get('labelled')} labelled, sha256 {old['sha256'][:12]}; now "
            f"{value.get('rows')} rows, {value.get('labelled')} labelled, sha256 "
            f"{str(value.get('sha256'))[:12]}): resume with the same data and labels, or start a "
            "new run in another folder", "data", old, value)


def _samples_prior(prior: Any) -> SamplesPrior | None:
    """The SamplesPrior a ``prior`` parameter asks for: read from PATH for ``"samples:PATH"``, a
    fresh copy of a SamplesPrior object (the caller's stays as it is); None for a named prior."""
    if isinstance(prior, SamplesPrior):
        if prior.part is not None:
            raise ValueError(f"prior is part {prior.part} of a SamplesPrior: give a whole prior "
                             "(Prior.from_samples of that part's samples)")
        return SamplesPrior(prior.samples, prior.labels, prior.bandwidths, source=prior.source)
    if isinstance(prior, Prior):
        raise ValueError(f"prior must be a name ({', '.join(PRIORS)}), 'samples:FILE.npy' or a "
                         f"SamplesPrior; a {type(prior).__name__} object cannot be saved with "
                         "the model")
    return None if samples_path(prior) is None else get_prior(prior)


def _stored_samples_prior(tensors: dict[str, torch.Tensor], options: _Options,
                          file: Path) -> SamplesPrior | None:
    """The samples prior saved in a model's weights (never read from its original file), checked
    against the header's ``options.prior_samples``; None for a model without one."""
    spec = options.prior_samples
    if spec is None:
        return None
    keys = [f"model.prior.{k}" for k in ("samples", "labels", "widths")]
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise CheckpointError(f"{file}: the weights lack the tensors of the samples prior in its "
                              f"header ({', '.join(missing)})")
    try:
        prior = SamplesPrior(*(tensors[k] for k in keys), source=str(file))
    except ValueError as err:
        raise CheckpointError(f"the samples prior stored in {err}") from err
    if prior.spec() != spec:
        raise CheckpointError(f"{file}: the samples prior in the weights ({prior.spec()}) is not "
                              f"the one in its header's options.prior_samples ({spec})")
    return prior


@functools.cache
def _param_types() -> dict[str, Any]:
    """The type hints of DDVI's parameters (what a stored ``params`` field must hold)."""
    hints = typing.get_type_hints(DDVI.__init__, globals())
    hints.pop("return", None)
    return hints


def upgrade_config(config: Any, where: str = "") -> Any:
    """A stored configuration in the current layout: files written before the model's settings
    were a :class:`~ddvi.config.ModelConfig` hold them as a flat ``options.build`` (with
    ``options.method``); they become ``model`` (as :meth:`ModelConfig.to_dict` writes it), with
    the old defaults of settings those files lack (``arch`` mlp, ``sleep`` None = full) and the
    parameters they lack (e.g. ``denoiser_layers``) set to the values the model was built with.
    Other values (and anything malformed, for :func:`ddvi.saved_config.validate` to refuse) are
    returned as they are."""
    if not isinstance(config, dict) or "model" in config:
        return config
    options = config.get("options")
    if not isinstance(options, dict) or not isinstance(options.get("build"), dict):
        return config
    options = dict(options)
    build = dict(options.pop("build"))
    build.setdefault("arch", "mlp")  # models saved before the conv networks existed
    if build.get("sleep") is None:  # absent or None: the full sleep, as it was then
        build["sleep"] = "full"
    try:
        model = ModelConfig.from_flat(method=options.pop("method", None), **build)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: config field options.build: {err}") from err
    params = dict(config.get("params") or {})
    if isinstance(config.get("params"), dict):
        for key, value in model.flat().items():
            if key in _MODEL_PARAMS and key not in params and key != "prior":
                params[key] = _plain(value)
    return {**config, "params": params, "model": model.to_dict(), "options": options}


def _check_posterior_format(method: str, options: _Options, file: Path, fix: str) -> None:
    if method == "ddvi" and options.posterior_format < POSTERIOR_FORMAT:
        raise CheckpointError(f"{file} holds a DDVI model of posterior format "
                              f"{options.posterior_format} (ddvi before the standardised chain); "
                              f"this ddvi reads format {POSTERIOR_FORMAT}: {fix}")


def _check_config_copy(file: Path, config: dict[str, Any]) -> None:
    """Refuse a ``config.json`` beside ``file`` that disagrees with the header's configuration."""
    copy = file.parent / "config.json"
    if not copy.is_file():
        return
    try:
        text = json.loads(copy.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{copy} is not readable JSON ({err}); it is a copy of the "
                              f"configuration in {file}'s header: delete it or restore it") from err
    diff = saved_config.first_difference(config, text)
    if diff is not None:
        field, stored, edited = diff
        raise CheckpointError(f"{copy} disagrees with the header of {file} at {field}: "
                              f"{edited!r} vs {stored!r} in the header. The header is what a "
                              "model is rebuilt from (config.json is a human-readable copy); "
                              "to change a model, refit it")


class _OnlyIf:
    """A method that exists only where ``why(model)`` is None (``hasattr`` is False elsewhere, as
    with scikit-learn's ``available_if``); using it elsewhere raises AttributeError saying why."""

    def __init__(self, fn: Callable[..., Any], why: Callable[[Any], str | None]):
        self.fn, self.why = fn, why
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.fn
        reason = self.why(obj)
        if reason is not None:
            raise AttributeError(reason)
        return types.MethodType(self.fn, obj)


def _only_if(why: Callable[[Any], str | None]) -> Callable[[Callable[..., Any]], _OnlyIf]:
    return lambda fn: _OnlyIf(fn, why)


def _task(model: Any) -> str | None:
    """The task of a fitted model (None before fit)."""
    opts = getattr(model, "options_", None)
    return None if opts is None else opts.task


@dataclass
class _Options:
    """What a fit learned about its data and task, needed with the model's
    :class:`~ddvi.config.ModelConfig` to rebuild it (stored as JSON with the weights)."""

    n_features: int
    binarize: bool
    task: str = "unsupervised"
    task_options: dict[str, Any] = field(default_factory=dict)
    posterior_format: int = 1  # files written before the format was recorded hold format 1
    feature_names: list[str] | None = None  # fit(X, feature_names=...)
    feature_mean: list[float] | None = None  # standardize=True: the training rows' statistics
    feature_std: list[float] | None = None
    prior_samples: dict[str, Any] | None = None  # a samples prior's spec(), checked on load


class DDVI(TransformerMixin, BaseEstimator):
    """Fit a latent variable model with a structured prior by DDVI or a baseline.

    Defaults follow the paper (appendices G, H): MLP encoder/decoder 2x1000, a 5-layer 128-unit
    denoiser with T = 20 steps, Adam with lr 1e-4 (AAEB 2e-4), batch 128. DDVI's posterior starts
    as AEVB's Gaussian (its chain's residuals start at zero) and can only add to it.

    Tasks: ``fit(X)`` is unsupervised; ``fit(X, y)`` with ``y = -1`` for unlabeled rows is
    semi-supervised (section 4.1: the prior's partitions are the classes, a classifier q(l|x) is
    trained with weight ``alpha``; ``predict`` gives classes); with ``n_clusters`` the task is
    clustering (section 4.2; ``fit_predict``/``predict`` give cluster ids).

    Parameters
    ----------
    method : str, default "ddvi"
        ddvi | aevb | aevb-iaf | aaeb | h-aevb | pis.
    prior : str or SamplesPrior, default "pinwheel"
        gaussian | mixture | pinwheel | swiss_roll | square; ``"samples:FILE.npy"`` (or ``.npz``)
        for a :class:`~ddvi.priors.SamplesPrior`, a kernel density around the file's samples
        (read at fit time; a saved model holds the samples); or a SamplesPrior object, e.g.
        ``Prior.from_samples(array, labels)``.
    likelihood : str, default "bernoulli"
        bernoulli (data in [0, 1]) | gaussian (a learned variance per feature) | gaussian-iso.
    latent_dim : int, default 2
        Dimension of z (the prior's).
    epochs : int, default 10
        Passes over the training rows.
    batch_size : int, default 128
        Rows per step.
    lr : float or None, default None
        Adam learning rate; None: the paper's (1e-4, AAEB 2e-4).
    hidden : tuple of int or None, default None
        Hidden widths of the encoder and decoder MLPs; None: (1000, 1000).
    sleep : str, default "none"
        DDVI's sleep term: none (the Markovian ELBO alone) | latent (the unconditional chain
        learns the prior's shape, appendix B) | full (wake-sleep, section 3.4).
    timesteps : int, default 20
        T, the number of steps of DDVI's (and PIS's) chain.
    schedule : str, default "linear"
        Noise schedule of the chain: linear | geometric | cosine.
    beta_reg : float or None, default None
        Weight of the KL-like term of the wake loss; None: the paper's (DDVI 0.003, AEVB
        family 0.01, with warm-up) times the number of features, i.e. per example. 1.0 is the
        plain ELBO.
    beta_diff : float, default 1.0
        Weight of the sleep term (``sleep`` latent or full).
    sleep_steps : int, default 1
        Fantasy batches per step for ``sleep="full"``.
    fantasy : str, default "sample"
        Fantasy x for the full sleep: sample (x ~ p(x|z)) | mean (the decoder's mean).
    context_dim : int or None, default None
        Width of the encoder's context c(x) that conditions the chain (or flow); None: 10
        (0 for ``sleep="latent"``, whose chain is unconditional).
    denoiser_hidden : int, default 128
        Width of the denoiser's layers.
    denoiser_layers : int, default 5
        Number of layers of DDVI's denoiser.
    learn_variance : bool, default True
        Learn the variances of the steps of DDVI's reverse chain (False: fixed at the
        schedule's).
    prior_weight : float or None, default None
        Weight of log p(z) in the AEVB family's loss; None: the paper's 5. DDVI uses 1.
    warmup_steps : int, default 0
        Optional pre-training of DDVI's denoiser on prior samples (algorithm 1, line 1).
    dropout : float, default 0.0
        Dropout in the encoder and decoder MLPs.
    binarize : bool, default True
        Threshold [0, 1] data at 0.5 for the Bernoulli likelihood (so the ELBO bounds a proper
        likelihood of the data).
    standardize : bool, default False
        Scale each feature to mean 0, std 1 over the training rows (stored with the model and
        applied again by ``transform`` and every other method); needs a Gaussian likelihood.
    seed : int, default 0
        Seeds initialisation, batches and every sample: the same seed gives the same model.
    verbose : bool, default True
        Progress bar during fit.
    run_dir : str or None, default None
        Folder for checkpoints (written atomically) and ``history.csv``; ``fit(resume=True)``
        continues from its checkpoint.
    checkpoint_every : int, default 1
        Epochs between checkpoints.
    alpha : float, default 1000.0
        Semi-supervised: weight of the classifier q(l|x)'s loss on labelled rows.
    labeled_batch_size : int, default 32
        Semi-supervised: labelled rows added to every batch, so a few labels still steer
        every step.
    classifier_hidden : tuple of int, default (1000,)
        Semi-supervised: hidden widths of the classifier q(l|x).
    n_clusters : int or None, default None
        Clustering: the number of clusters (None: not a clustering task).
    cluster_model : str, default "mixture"
        Clustering: mixture (learned means of a Gaussian-mixture prior) | variable (a latent
        cluster variable with a Dirichlet prior).
    arch : str, default "mlp"
        mlp | conv (the paper's CIFAR-10 convolutional encoder and decoder).
    beta_start, beta_end : float or None, default None
        The schedule's first and last beta_t; None: the defaults of
        :func:`ddvi.diffusion.make_betas` (every beta_t <= 0.5).
    threads : int or "auto", default "auto"
        CPU threads a fit computes with: auto uses the cores other processes leave free (a
        busy neighbour does not stall training); torch's own setting is restored after fit.
    device : str, default "auto"
        Where a fit computes: auto (CUDA if available, else MPS, else the CPU) | cpu | cuda |
        cuda:N | mps. The data go there once per fit; ``transform`` and the other methods take
        and return host arrays; :meth:`load` puts a saved model on any device.
    compile : bool, default False
        Train DDVI's reverse chain compiled by ``torch.compile`` (see
        :meth:`~ddvi.posteriors.DiffusionPosterior.compile_chain`): 15-25 % faster steps after a
        compilation of a minute or two, so worth it for long fits; the model is the same.

    Example
    -------
    >>> import numpy as np
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(np.float32)
    >>> DDVI(epochs=1, hidden=(16,), verbose=False).fit_transform(X).shape
    (64, 2)
    """

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
                 run_dir: str | None = None, checkpoint_every: int = 1,
                 alpha: float = 1000.0, labeled_batch_size: int = 32,
                 classifier_hidden: tuple[int, ...] = (1000,),
                 n_clusters: int | None = None, cluster_model: str = "mixture", arch: str = "mlp",
                 beta_start: float | None = None, beta_end: float | None = None,
                 threads: int | str = "auto", device: str = "auto", compile: bool = False):
        self.method, self.prior, self.likelihood, self.latent_dim = method, prior, likelihood, latent_dim
        self.epochs, self.batch_size, self.lr, self.hidden = epochs, batch_size, lr, hidden
        self.sleep, self.timesteps, self.schedule = sleep, timesteps, schedule
        self.beta_reg, self.beta_diff, self.sleep_steps = beta_reg, beta_diff, sleep_steps
        self.fantasy, self.context_dim, self.denoiser_hidden = fantasy, context_dim, denoiser_hidden
        self.denoiser_layers, self.learn_variance = denoiser_layers, learn_variance
        self.prior_weight, self.warmup_steps, self.dropout = prior_weight, warmup_steps, dropout
        self.binarize, self.standardize, self.seed, self.verbose = binarize, standardize, seed, verbose
        self.run_dir, self.checkpoint_every = run_dir, checkpoint_every
        self.alpha, self.classifier_hidden = alpha, classifier_hidden
        self.labeled_batch_size = labeled_batch_size
        self.n_clusters, self.cluster_model, self.arch = n_clusters, cluster_model, arch
        self.beta_start, self.beta_end = beta_start, beta_end
        self.threads, self.device, self.compile = threads, device, compile

    # ---- data ---------------------------------------------------------------------------------
    def prepare(self, X: Any, binarize: bool | None = None) -> torch.Tensor:
        """Rows of ``X`` as a tensor, as the model sees them: checked (finite, 2-D, the fitted
        number of features), thresholded at 0.5 if ``binarize`` (default: as at fit time) and
        standardized with the training statistics if the model was fitted with
        ``standardize=True``.

        Example:
            >>> import numpy as np
            >>> DDVI().prepare(np.array([[0.2, 0.9]])).tolist()
            [[0.0, 1.0]]
        """
        if binarize is None:
            opts = getattr(self, "options_", None)
            binarize = self.binarize if opts is None else opts.binarize
        X = check_array(X)
        if hasattr(self, "options_") and X.shape[1] != self.options_.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but DDVI is expecting "
                             f"{self.options_.n_features} features as input")
        if self.likelihood == "bernoulli":
            if X.min() < 0 or X.max() > 1:
                raise ValueError("the bernoulli likelihood needs data in [0, 1] "
                                 f"(got range [{X.min():.3g}, {X.max():.3g}])")
            if binarize:
                X = (X > 0.5).astype(np.float32)
        opts = getattr(self, "options_", None)
        if opts is not None and opts.feature_mean is not None:
            X = _standardize(X, opts.feature_mean, opts.feature_std)
        return torch.from_numpy(X)

    def model_config(self) -> ModelConfig:
        """The :class:`~ddvi.config.ModelConfig` this estimator's parameters describe (a fitted
        model keeps the one it was built from as ``config_``)."""
        return ModelConfig.from_flat(**{k: _plain(getattr(self, k)) for k in _MODEL_PARAMS})

    def _build(self, config: ModelConfig, n_features: int, task: str,
               task_options: dict[str, Any], prior: SamplesPrior | None = None) -> Method:
        torch.manual_seed(self.seed)
        if task == "semi-supervised":
            from ddvi.tasks import build_semi_supervised

            build = {k: v for k, v in config.flat().items() if k != "method"}
            if prior is not None:
                build["prior"] = prior
            return build_semi_supervised(config.method, n_features, alpha=task_options["alpha"],
                                         classifier_hidden=tuple(task_options["classifier_hidden"]),
                                         **build)
        if task == "clustering":
            from ddvi.tasks import build_cluster_variable, build_mixture_clustering

            build = {k: v for k, v in config.flat().items()
                     if k not in ("method", "prior", "prior_options")}
            k, model = task_options["n_clusters"], task_options["cluster_model"]
            if model == "mixture":
                return build_mixture_clustering(config.method, n_features, k, seed=self.seed,
                                                **build)
            if model == "variable":
                return build_cluster_variable(config.method, n_features, k, mode="prior",
                                              seed=self.seed, n_data=task_options["n_data"], **build)
            raise ValueError(f"unknown cluster_model {model!r}; choose 'mixture' or 'variable'")
        return build_method(config, n_features, prior=prior)

    def _labels(self, y: Any, n: int) -> torch.Tensor:
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
                             "needs at least one label; call fit(X) without y for an "
                             "unsupervised model")
        return torch.from_numpy(y)

    # ---- fitting --------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, resume: bool = False,
            feature_names: Sequence[str] | None = None) -> DDVI:
        """Fit on X (n, d) or images (n, H, W[, C]). With ``y`` (class labels, -1 = unlabeled)
        the task is semi-supervised (with ``n_clusters`` set, ``y`` is ignored with a warning, as
        scikit-learn clusterers ignore it).

        ``resume`` continues from ``run_dir``'s checkpoint (if there is one). The run must go on
        as it started: every parameter except those in ``RESUMABLE`` (e.g. ``epochs``), the task
        and the data must be the stored ones, else :class:`ResumeMismatchError` names the first
        difference; a DDVI checkpoint of an older posterior format is refused.

        ``feature_names`` (one per column of X) are stored with the model
        (``options_.feature_names``) so that new data can be checked against them."""
        before = torch.get_num_threads()
        configure_threads(self.threads)
        try:
            return self._fit(X, y, resume, feature_names)
        except BaseException:
            for attr in _FITTED:  # a failed fit leaves no half-fitted model behind
                self.__dict__.pop(attr, None)
            raise
        finally:
            torch.set_num_threads(before)

    def _fit(self, X: Any, y: Any, resume: bool, feature_names: Sequence[str] | None) -> DDVI:
        for attr in _FITTED:
            self.__dict__.pop(attr, None)
        device = devices.resolve_device(self.device)
        if self.standardize and self.likelihood == "bernoulli":
            raise ValueError("standardize=True makes the features real-valued (mean 0, std 1), "
                             "which the bernoulli likelihood cannot model: use "
                             "likelihood='gaussian' or 'gaussian-iso', or standardize=False")
        data = self.prepare(X, self.binarize)
        names = None if feature_names is None else [str(n) for n in feature_names]
        if names is not None and len(names) != data.shape[1]:
            raise ValueError(f"feature_names has {len(names)} names, but X has {data.shape[1]} "
                             "features")
        mean = std = None
        if self.standardize:
            mean, std = _standardization(data.numpy())
            data = torch.from_numpy(_standardize(data.numpy(), mean, std))
        if y is not None and self.n_clusters is not None:
            warnings.warn("y is ignored: n_clusters is set, so the task is clustering "
                          "(semi-supervised fits need n_clusters=None)", UserWarning, stacklevel=2)
            y = None
        labels = None if y is None else self._labels(y, data.shape[0])
        if labels is not None:
            task = "semi-supervised"
            task_options = {"alpha": self.alpha, "classifier_hidden": list(self.classifier_hidden)}
        elif self.n_clusters is not None:
            if self.n_clusters < 1:
                raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters}")
            task = "clustering"
            task_options = {"n_clusters": self.n_clusters, "cluster_model": self.cluster_model,
                            "n_data": int(data.shape[0])}
        else:
            task, task_options = "unsupervised", {}
        prior = None if task == "clustering" else _samples_prior(self.prior)
        config = self.model_config()
        self.method_ = self._build(config, data.shape[1], task, task_options, prior)
        self.method_.likelihood.check_data(data)
        self.method_.likelihood.init_from_data(data)
        if labels is not None and labels.max() >= self.method_.prior.n_partitions:
            raise ValueError(f"labels go up to {int(labels.max())} but the {self.prior!r} prior has "
                             f"{self.method_.prior.n_partitions} partitions (one per class)")
        self.config_ = config
        self.options_ = _Options(data.shape[1], self.binarize, task, task_options,
                                 POSTERIOR_FORMAT, names, mean, std,
                                 prior_samples=None if prior is None else prior.spec())
        lr = PAPER_LR.get(self.method, 1e-4) if self.lr is None else self.lr
        stored = self._config()
        if self.run_dir is not None:  # lets a resume check that the data are the same
            stored["data"] = _fingerprint(data, labels)
        trainer = Trainer(self.method_, epochs=self.epochs, batch_size=self.batch_size, lr=lr,
                          seed=self.seed, run_dir=self.run_dir, verbose=self.verbose,
                          checkpoint_every=self.checkpoint_every, config=stored,
                          labeled_batch_size=self.labeled_batch_size if labels is not None else 0,
                          device=device,
                          check_resume=lambda meta: _check_resume(meta, stored,
                                                                  trainer.checkpoint_path))
        resuming = resume and trainer.checkpoint_path is not None and trainer.checkpoint_path.exists()
        has_denoiser = isinstance(getattr(self.method_, "posterior", None), DiffusionPosterior)
        if self.compile:
            for module in self.method_.modules():
                if isinstance(module, DiffusionPosterior):
                    module.compile_chain()
        if self.warmup_steps and has_denoiser and not resuming:
            self.method_.pretrain_denoiser(self.warmup_steps, self.batch_size, 1e-3,
                                           trainer.generator)
        self.history_ = trainer.fit(data, resume=resume, y=labels)
        self.n_features_in_ = data.shape[1]
        if task == "clustering":
            from ddvi.tasks import predict_clusters

            self.labels_ = predict_clusters(self.method_, data)
        return self

    @_only_if(lambda self: None if _task(self) in (None, "semi-supervised") else
              "predict_proba needs a semi-supervised model: fit(X, y) with labels "
              f"(this model's task is {_task(self)})")
    @torch.no_grad()
    def predict_proba(self, X: Any, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities q(l|x) of a semi-supervised model (absent on other fitted models)."""
        self._check_fitted()
        data = self.prepare(X)
        self.method_.eval()
        return self._batched(self.method_.predict_proba, data, batch_size)

    @_only_if(lambda self: None if _task(self) in (None, "semi-supervised", "clustering") else
              "predict needs a semi-supervised model (fit(X, y)) or a clustering model "
              f"(n_clusters=K); this model's task is {_task(self)}")
    def predict(self, X: Any) -> np.ndarray:
        """Classes (semi-supervised models) or cluster ids (clustering models) of the rows of X
        (absent on unsupervised models)."""
        self._check_fitted()
        data = self.prepare(X)
        if self.options_.task == "clustering":
            from ddvi.tasks import predict_clusters

            return predict_clusters(self.method_, data)
        return self.predict_proba(X).argmax(1)

    @_only_if(lambda self: None if self.n_clusters is not None else
              "fit_predict clusters the data: set n_clusters")
    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit a clustering model and return the cluster of each row (only with ``n_clusters``;
        ``y`` is ignored, as by scikit-learn's clusterers)."""
        return self.fit(X).labels_

    def _check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            raise NotFittedError("this DDVI model is not fitted yet: call fit(X) or "
                                 "DDVI.load(path) first")

    def __sklearn_tags__(self):  # sklearn.utils.Tags: scikit-learn >= 1.6
        """scikit-learn tags: sparse input is densified, transform keeps float32/float64,
        with ``n_clusters`` the estimator is a clusterer."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        if self.n_clusters is not None:
            tags.estimator_type = "clusterer"
        return tags

    # ---- using a fitted model ------------------------------------------------------------------
    @torch.no_grad()
    def transform(self, X: Any, batch_size: int = 1024) -> np.ndarray:
        """Deterministic latents (posterior mean for AEVB; mean y_T plus the DDIM map for DDVI),
        float64 for float64 input, else float32."""
        self._check_fitted()
        data = self.prepare(X)
        self.method_.eval()
        z = self._batched(self.method_.transform, data, batch_size)
        return z.astype(_output_dtype(X), copy=False)

    def _batched(self, fn: Callable[[torch.Tensor], torch.Tensor], data: torch.Tensor,
                 batch_size: int) -> np.ndarray:
        """``fn`` over batches of host ``data`` moved to the model's device; a host array."""
        device = devices.module_device(self.method_)
        return torch.cat([fn(b.to(device)).cpu() for b in data.split(batch_size)]).numpy()

    def score(self, X: Any, y: Any = None, n_samples: int = 1, seed: int = 0) -> float:
        """Mean ELBO on X in nats per example (a lower bound on log p(x); seeded, deterministic)."""
        self._check_fitted()
        data = self.prepare(X)
        return elbo_metric(self.method_, data, n_samples=n_samples, seed=seed)["elbo"]

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw z ~ p(z) and return (mean of p(x|z), z)."""
        self._check_fitted()
        prior = self.method_.prior
        z, _ = prior.sample(n, devices.generator(self.seed if seed is None else seed, prior.device))
        return self.method_.decode(z).cpu().numpy(), z.cpu().numpy()

    # ---- persistence -----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        """What a fitted model is saved with: the scikit-learn ``params``, the ``model``
        (:meth:`ModelConfig.to_dict`, what it is built from) and the fit's ``options``."""
        params = {k: _plain(v) for k, v in self.get_params().items()}
        return {"params": params, "model": self.config_.to_dict(),
                "options": asdict(self.options_)}

    def save(self, path: str | Path) -> Path:
        """Write ``path/model.safetensors`` (the weights, with the configuration of
        :meth:`_config` in its header: ``params``, ``model`` and ``options``) and
        ``path/config.json`` (a human-readable copy of that configuration)."""
        self._check_fitted()
        path = Path(path)
        tensors = {f"model.{k}": v for k, v in self.method_.state_dict().items()}
        config = self._config()
        save_checkpoint(path / MODEL_FILE, tensors, {"config": config, "history": self.history_})
        (path / "config.json").write_text(json.dumps(config, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> DDVI:
        """Load a model saved by :meth:`save` or a training checkpoint; never unpickles code.
        It goes to ``device`` (default: the device it was fitted for, or the CPU where this
        machine lacks it).

        The configuration is read from the weights file's header, which is authoritative and
        covered by the file's checksum; it is validated (known fields and names, types, ranges)
        and any problem is a :class:`~ddvi.checkpoint.CheckpointError` naming the file and the
        field. ``config.json`` beside the weights is a human-readable copy: if it disagrees with
        the header (e.g. it was edited), loading fails rather than ignoring the edit.
        """
        path = Path(path)
        file = path / MODEL_FILE if path.is_dir() else path
        if path.is_dir() and not file.exists() and (path / "checkpoint.safetensors").exists():
            file = path / "checkpoint.safetensors"
        tensors, meta = load_checkpoint(file)
        config = upgrade_config(meta.get("config"), str(file))
        saved_config.validate(config, _param_types(), str(file))
        _check_config_copy(file, meta.get("config"))
        model = cls(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in config.get("params", {}).items()})
        opts = config["options"]
        model.options_ = _Options(**opts)
        model.config_ = ModelConfig.from_dict(config["model"])
        _check_posterior_format(model.config_.method, model.options_, file, "refit the model")
        prior = _stored_samples_prior(tensors, model.options_, file)
        if prior is not None and model.prior == SamplesPrior.name:  # it was given as an object
            model.prior = _samples_prior(prior)
        try:
            model.method_ = model._build(model.config_, opts["n_features"], model.options_.task,
                                         model.options_.task_options, prior)
            state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
            model.method_.load_state_dict(state)
        except (RuntimeError, ValueError, TypeError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{file}: the weights do not fit the configuration in its "
                                  f"header ({first})") from err
        model.method_.to(model._load_device(device, file)).eval()
        model.history_ = meta.get("history", [])
        model.n_features_in_ = opts["n_features"]
        return model

    def _load_device(self, device: str | None, file: Path) -> torch.device:
        """Where a loaded model goes: ``device`` if given, else the stored one; a stored device
        this machine lacks (a GPU model on a CPU-only machine) falls back to the CPU with a
        warning."""
        if device is not None:
            self.device = device
            return devices.resolve_device(device)
        try:
            return devices.resolve_device(self.device)
        except ValueError as err:
            warnings.warn(f"{file}: {err}; the model is loaded on the CPU", UserWarning,
                          stacklevel=3)
            self.device = "cpu"
            return torch.device("cpu")
