"""What the estimators share besides their base class: input checks, the stored options of a fit,
the upgrade and checks of a saved configuration, and resume checks."""

from __future__ import annotations

import functools
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch

from ddvi import saved_config
from ddvi.checkpoint import CheckpointError
from ddvi.config import FLAT_KEYS, ModelConfig
from ddvi.priors import PRIORS, Prior, SamplesPrior, get_prior, samples_path

MODEL_FILE = "model.safetensors"
POSTERIOR_FORMAT = 3
"""2: DDVI's chain in standardised coordinates (the same weight names as format 1, other maths);
3: the chain may be guided by the model's score (format 2 files load as ``guidance="none"``)."""
OLDEST_POSTERIOR_FORMAT = 2
"""DDVI models of older formats are refused (format 1's weights mean another chain)."""

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
    pairs = [("task", options.get("task", "unsupervised"), new["options"]["task"])]
    pairs += [(k, stored["params"].get(k), new["params"].get(k)) for k in new["params"]
              if k not in RESUMABLE]
    diff = saved_config.first_difference(stored["model"], new["model"])
    if diff is not None:
        pairs.append((f"model.{diff[0]}", diff[1], diff[2]))
    pairs += [(k, options.get(k), new["options"][k])
              for k in ("n_features", "task_options", "prior_samples")]
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
    """The type hints of every estimator's parameters (what a stored ``params`` field may hold:
    files saved before the estimators were split hold the parameters of every task)."""
    from ddvi.estimators.tasks import TASK_CLASSES

    hints: dict[str, Any] = {}
    for cls in TASK_CLASSES.values():
        hints.update(typing.get_type_hints(cls.__init__))
    hints.pop("return", None)
    hints["n_clusters"] = int | None  # None in the files of other tasks saved before the split
    return hints


def upgrade_config(config: Any, where: str = "") -> Any:
    """A stored configuration in the current layout: files written before the model's settings
    were a :class:`~ddvi.config.ModelConfig` hold them as a flat ``options.build`` (with
    ``options.method``); they become ``model`` (as :meth:`ModelConfig.to_dict` writes it), with
    the old defaults of settings those files lack (``arch`` mlp, ``sleep`` None = full) and the
    parameters they lack (e.g. ``denoiser_layers``) set to the values the model was built with.
    Files of posterior format 2 or older have an unguided chain: their ``guidance`` is "none".
    Other values (and anything malformed, for :func:`ddvi.saved_config.validate` to refuse) are
    returned as they are."""
    return _unguided(_model_section(config, where))


def _unguided(config: Any) -> Any:
    """``guidance="none"`` where a configuration of posterior format <= 2 does not say."""
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or \
            not isinstance(config.get("options"), dict):
        return config
    fmt = config["options"].get("posterior_format", 1)
    diffusion = config["model"].get("diffusion", {})
    if not isinstance(fmt, int) or fmt >= 3 or not isinstance(diffusion, dict) or \
            "guidance" in diffusion:
        return config
    model = {**config["model"], "diffusion": {**diffusion, "guidance": "none"}}
    params = config.get("params")
    if isinstance(params, dict) and "guidance" not in params:
        params = {**params, "guidance": "none"}
    return {**config, "model": model, "params": params}


def _model_section(config: Any, where: str) -> Any:
    """Files written before the ModelConfig layout: ``options.build`` becomes ``model``."""
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
    if method == "ddvi" and options.posterior_format < OLDEST_POSTERIOR_FORMAT:
        raise CheckpointError(f"{file} holds a DDVI model of posterior format "
                              f"{options.posterior_format} (ddvi before the standardised chain); "
                              f"this ddvi reads formats {OLDEST_POSTERIOR_FORMAT}-"
                              f"{POSTERIOR_FORMAT}: {fix}")


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

