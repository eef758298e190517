"""The model's settings as frozen, typed dataclasses: what :func:`ddvi.methods.build_method` reads.

:class:`ModelConfig` groups the method, prior, likelihood and latent dimension with three parts:
:class:`NetworkConfig` (the encoder/decoder and denoiser networks), :class:`DiffusionConfig`
(DDVI's and PIS's chain) and :class:`ObjectiveConfig` (the loss's weights and DDVI's sleep).
The estimator builds one from its flat scikit-learn parameters (:meth:`ModelConfig.from_flat`)
and saves :meth:`ModelConfig.to_dict` once, in the weights file's header.

Example:
    >>> config = ModelConfig.from_flat(method="ddvi", hidden=(16,), timesteps=4)
    >>> config.network.hidden, config.diffusion.timesteps
    ((16,), 4)
    >>> ModelConfig.from_dict(config.to_dict()) == config
    True
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


def _plain(value: Any) -> Any:
    """JSON form of a field: tuples as lists (recursively)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Section:
    """to_dict/from_dict for a frozen dataclass of JSON-able fields (nested sections allowed)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: nested sections as objects, tuples as lists."""
        return {f.name: (getattr(self, f.name).to_dict() if isinstance(getattr(self, f.name), _Section)
                         else _plain(getattr(self, f.name)))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> Any:
        """The inverse of :meth:`to_dict`; lists become tuples where the field is a tuple, absent
        fields take their defaults, unknown fields raise ValueError naming them."""
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(names))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            hint = hints[key]
            if isinstance(hint, type) and issubclass(hint, _Section):
                kwargs[key] = hint.from_dict(value, f"{where}.{key}")
            elif isinstance(value, list):
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class NetworkConfig(_Section):
    """The networks: ``arch`` mlp | conv, the encoders' and decoder's ``hidden`` widths (None: the
    architecture's default), ``dropout``, the width of the encoder's context c(x) (None: the
    posterior family's default) and DDVI's denoiser (``denoiser_layers`` x ``denoiser_hidden``;
    ``denoiser_hidden`` is also the width of PIS's drift)."""

    arch: str = "mlp"
    hidden: tuple[int, ...] | None = None
    dropout: float = 0.0
    context_dim: int | None = None
    denoiser_hidden: int = 128
    denoiser_layers: int = 5


@dataclass(frozen=True)
class DiffusionConfig(_Section):
    """DDVI's (and PIS's) chain: ``timesteps`` T, the noise ``schedule`` (linear | geometric |
    cosine) and its end points (None: :func:`ddvi.diffusion.make_betas`' defaults), whether
    the step variances are learned, and DDVI's ``guidance`` (auto | none | prior | joint: the
    score the denoiser sees at each step, see :mod:`ddvi.posteriors.diffusion`; auto is prior
    unless the prior is Gaussian)."""

    timesteps: int = 20
    schedule: str = "linear"
    beta_start: float | None = None
    beta_end: float | None = None
    learn_variance: bool = True
    guidance: str = "auto"


@dataclass(frozen=True)
class ObjectiveConfig(_Section):
    """The loss: the KL-like term's weight ``beta_reg`` and ``prior_weight`` (None: the method's
    paper defaults), DDVI's ``sleep`` (none | latent | full) with its weight ``beta_diff``,
    ``sleep_steps`` fantasy batches per step and the ``fantasy`` x (sample | mean)."""

    beta_reg: float | None = None
    prior_weight: float | None = None
    sleep: str = "none"
    beta_diff: float = 1.0
    sleep_steps: int = 1
    fantasy: str = "sample"


@dataclass(frozen=True)
class ModelConfig(_Section):
    """Everything :func:`ddvi.methods.build_method` builds a model from. ``prior``: a name for
    :func:`ddvi.priors.get_prior` (with ``prior_options``), ``"samples:FILE"`` or ``"samples"``
    (a :class:`~ddvi.priors.SamplesPrior` given as an object, passed to ``build_method`` beside
    the config)."""

    method: str = "ddvi"
    prior: str = "pinwheel"
    likelihood: str = "bernoulli"
    latent_dim: int = 2
    prior_options: dict[str, Any] | None = None
    network: NetworkConfig = field(default_factory=NetworkConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    @classmethod
    def from_flat(cls, **flat: Any) -> ModelConfig:
        """A config from flat settings (the names of the estimator's parameters and of
        ``build_method``'s keywords); absent ones take their defaults, unknown ones raise
        TypeError naming them."""
        return cls().replace(**flat)

    def replace(self, **flat: Any) -> ModelConfig:
        """A copy with the given flat settings changed (see :data:`FLAT_KEYS`)."""
        unknown = sorted(set(flat) - set(FLAT_KEYS))
        if unknown:
            raise TypeError(f"unknown model setting(s) {', '.join(unknown)}; known: "
                            f"{', '.join(FLAT_KEYS)}")
        flat = {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}
        if flat.get("hidden") is not None:
            flat["hidden"] = tuple(flat["hidden"])
        top = {k: flat.pop(k) for k in list(flat) if k in _TOP}
        parts = {name: dataclasses.replace(getattr(self, name),
                                           **{k: flat[k] for k in _PART_KEYS[name] if k in flat})
                 for name in _PART_KEYS}
        return dataclasses.replace(self, **top, **parts)

    def flat(self) -> dict[str, Any]:
        """The settings as flat keywords (the inverse of :meth:`from_flat`)."""
        out = {k: getattr(self, k) for k in _TOP}
        for name in _PART_KEYS:
            out.update({f.name: getattr(getattr(self, name), f.name)
                        for f in dataclasses.fields(getattr(self, name))})
        return out


_TOP = ("method", "prior", "likelihood", "latent_dim", "prior_options")
_PART_KEYS = {"network": tuple(f.name for f in dataclasses.fields(NetworkConfig)),
              "diffusion": tuple(f.name for f in dataclasses.fields(DiffusionConfig)),
              "objective": tuple(f.name for f in dataclasses.fields(ObjectiveConfig))}
FLAT_KEYS: tuple[str, ...] = _TOP + tuple(k for keys in _PART_KEYS.values() for k in keys)
"""The flat names of every model setting (estimator parameters and ``build_method`` keywords)."""

__all__ = ["FLAT_KEYS", "DiffusionConfig", "ModelConfig", "NetworkConfig", "ObjectiveConfig"]
