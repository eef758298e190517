"""Checks of the configuration stored with a model: validation on load and comparison on resume.

The configuration is the JSON object ``{"params": ..., "model": ..., "options": ...}`` that
every estimator of :mod:`ddvi.estimators` writes into the weights file's header (``model`` is a
:class:`~ddvi.config.ModelConfig`'s ``to_dict()``) (and, as a human-readable copy,
into ``config.json``). Every problem is a :class:`~ddvi.checkpoint.CheckpointError` that names the
file and the field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from ddvi.checkpoint import CheckpointError
from ddvi.config import ModelConfig
from ddvi.convnets import ARCHS
from ddvi.diffusion import SCHEDULES
from ddvi.likelihoods import LIKELIHOODS
from ddvi.methods import GUIDANCE_CHOICES, METHODS
from ddvi.methods.ddvi import SLEEP_MODES
from ddvi.priors import PRIORS, SamplesPrior, samples_path

TASKS = ("unsupervised", "semi-supervised", "clustering")
NAMES: dict[str, tuple[str, ...]] = {
    "method": METHODS, "prior": PRIORS, "likelihood": LIKELIHOODS, "schedule": SCHEDULES,
    "sleep": SLEEP_MODES, "fantasy": ("sample", "mean"), "arch": ARCHS,
    "cluster_model": ("mixture", "variable"), "guidance": GUIDANCE_CHOICES,
}
"""The allowed values of the named options."""
_AT_LEAST = {"latent_dim": 1, "epochs": 1, "batch_size": 1, "timesteps": 1, "sleep_steps": 1,
             "denoiser_hidden": 1, "context_dim": 1, "checkpoint_every": 1, "n_clusters": 1,
             "warmup_steps": 0, "labeled_batch_size": 0, "n_features": 1, "n_data": 1,
             "posterior_format": 1}
_OPTION_TYPES: dict[str, Any] = {"n_features": int, "binarize": bool,
                                 "task": str, "task_options": dict, "posterior_format": int,
                                 "feature_names": tuple[str, ...] | None,
                                 "feature_mean": tuple[float, ...] | None,
                                 "feature_std": tuple[float, ...] | None,
                                 "prior_samples": dict | None}
_PRIOR_SAMPLES_TYPES: dict[str, Any] = {"rows": int, "dim": int, "parts": int,
                                        "bandwidths": tuple[float, ...], "sha256": str}
_TASK_OPTION_TYPES: dict[str, dict[str, Any]] = {
    "unsupervised": {},
    "semi-supervised": {"alpha": float, "classifier_hidden": tuple[int, ...]},
    "clustering": {"n_clusters": int, "cluster_model": str, "n_data": int},
}


def type_ok(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (lists stand for tuples; ints are floats too)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(type_ok(v, typing.get_args(hint)[0])
                                                        for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _check_value(name: str, value: Any, hint: Any, where: str) -> None:
    """Type, range and known-name checks of one field (``name`` is its last component)."""
    key = name.rsplit(".", 1)[-1]
    if not type_ok(value, hint):
        raise CheckpointError(f"{where}: config field {name} = {value!r} is not of type "
                              f"{getattr(hint, '__name__', hint)}")
    if key in NAMES and value is not None and value not in NAMES[key] and not (
            key == "prior" and _is_samples_prior(value)):
        raise CheckpointError(f"{where}: config field {name} = {value!r} is not one of "
                              f"{NAMES[key]}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CheckpointError(f"{where}: config field {name} = {value!r} is not finite")
    if key in _AT_LEAST and value is not None and value < _AT_LEAST[key]:
        raise CheckpointError(f"{where}: config field {name} = {value!r} must be >= "
                              f"{_AT_LEAST[key]}")
    if key in ("hidden", "classifier_hidden") and value is not None and \
            any(v < 1 for v in value):
        raise CheckpointError(f"{where}: config field {name} = {value!r} needs sizes >= 1")
    if key == "dropout" and not 0 <= value < 1:
        raise CheckpointError(f"{where}: config field {name} = {value!r} must be in [0, 1)")
    if key == "lr" and value is not None and value <= 0:
        raise CheckpointError(f"{where}: config field {name} = {value!r} must be > 0")


def _check_fields(obj: Any, types_: dict[str, Any], prefix: str, where: str,
                  required: bool) -> None:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{where}: config field {prefix} is not an object")
    unknown = sorted(set(obj) - set(types_))
    if unknown:
        raise CheckpointError(f"{where}: config field {prefix}.{unknown[0]} is not a known field")
    missing = sorted(set(types_) - set(obj)) if required else []
    if missing:
        raise CheckpointError(f"{where}: config field {prefix}.{missing[0]} is missing")
    for key, value in obj.items():
        _check_value(f"{prefix}.{key}", value, types_[key], where)


def _check_section(obj: Any, cls: type, prefix: str, where: str) -> None:
    """A dataclass section (e.g. the ``model``): known fields of the right types; nested
    sections recursively; absent fields take their defaults."""
    hints = typing.get_type_hints(cls)
    sections = {f.name: hints[f.name] for f in dataclasses.fields(cls)
                if dataclasses.is_dataclass(hints[f.name])}
    _check_fields({k: v for k, v in obj.items() if k not in sections} if isinstance(obj, dict)
                  else obj, {k: t for k, t in hints.items() if k not in sections}, prefix, where,
                  required=False)
    for name, sub in sections.items():
        if name in obj:
            _check_section(obj[name], sub, f"{prefix}.{name}", where)


def validate(config: Any, param_types: dict[str, Any], where: str) -> None:
    """Refuse a stored configuration with unknown or missing fields, wrong types, out-of-range
    values or unknown names, with a :class:`CheckpointError` naming ``where`` and the field."""
    if not isinstance(config, dict) or not config.get("options") or not isinstance(
            config["options"], dict):
        raise CheckpointError(f"{where} holds no fitted-model configuration")
    _check_fields(config.get("params"), param_types, "params", where, required=False)
    options = config["options"]
    optional = {"task", "task_options", "posterior_format", "feature_names", "feature_mean",
                "feature_std", "prior_samples"}  # absent from older files
    _check_fields({k: v for k, v in options.items() if k not in optional} if isinstance(
        options, dict) else options, {k: t for k, t in _OPTION_TYPES.items() if k not in optional},
        "options", where, required=True)
    _check_fields({k: v for k, v in options.items() if k in optional}, _OPTION_TYPES, "options",
                  where, required=False)
    if "model" not in config:
        raise CheckpointError(f"{where}: config field model is missing")
    _check_section(config["model"], ModelConfig, "model", where)
    task = options.get("task", "unsupervised")
    if task not in TASKS:
        raise CheckpointError(f"{where}: config field options.task = {task!r} is not one of {TASKS}")
    _check_fields(options.get("task_options", {}), _TASK_OPTION_TYPES[task], "options.task_options",
                  where, required=True)
    _check_features(config, where)
    _check_prior_samples(options, config["model"].get("prior"), where)


def _is_samples_prior(value: Any) -> bool:
    """A stored prior that is a SamplesPrior: ``"samples:PATH"`` (read from PATH when fitted) or
    ``"samples"`` (given as an object); either way its tensors are in the weights."""
    return value == SamplesPrior.name or samples_path(value) is not None


def _check_prior_samples(options: dict[str, Any], prior: Any, where: str) -> None:
    """options.prior_samples (a samples prior's rows, dim, parts, bandwidths and sha256): present
    exactly when the model has a samples prior (clustering models ignore the prior)."""
    spec = options.get("prior_samples")
    task = options.get("task", "unsupervised")
    if (spec is not None) != (task != "clustering" and _is_samples_prior(prior)):
        raise CheckpointError(f"{where}: config field options.prior_samples must be given exactly "
                              f"when the model has a samples prior (prior {prior!r}, task {task})")
    if spec is not None:
        _check_fields(spec, _PRIOR_SAMPLES_TYPES, "options.prior_samples", where, required=True)


def _check_features(config: dict[str, Any], where: str) -> None:
    """Feature names and standardization statistics: one per feature; means and stds finite,
    stds > 0, present exactly when the model standardizes."""
    options = config["options"]
    for key in ("feature_names", "feature_mean", "feature_std"):
        values = options.get(key)
        if values is not None and len(values) != options["n_features"]:
            raise CheckpointError(f"{where}: config field options.{key} has {len(values)} "
                                  f"entries, not one per feature ({options['n_features']})")
    mean, std = options.get("feature_mean"), options.get("feature_std")
    standardize = config["params"].get("standardize", False)
    if (mean is None) != (std is None) or (mean is not None) != standardize:
        raise CheckpointError(f"{where}: config fields options.feature_mean and feature_std must "
                              f"be given exactly when params.standardize is true (it is "
                              f"{standardize})")
    if mean is not None and not all(math.isfinite(v) for v in mean + std) or \
            std is not None and min(std) <= 0:
        raise CheckpointError(f"{where}: config fields options.feature_mean and feature_std must "
                              "be finite, with every std > 0")


def first_difference(stored: Any, new: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first field (dotted path) where two JSON values differ, with both values; or None."""
    if isinstance(stored, dict) and isinstance(new, dict):
        for key in sorted(set(stored) | set(new), key=str):
            diff = first_difference(stored.get(key), new.get(key), f"{prefix}.{key}" if prefix
                                    else str(key))
            if diff is not None:
                return diff
        return None
    return None if stored == new else (prefix, stored, new)
