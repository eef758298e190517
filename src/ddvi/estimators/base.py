"""The base of the scikit-learn estimators: the common parameters, data preparation, fitting with
checkpoints and resume, transform/score/sample, save and load."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from ddvi import devices, saved_config
from ddvi.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ddvi.config import ModelConfig
from ddvi.estimators import _docs
from ddvi.estimators._support import (
    _FITTED,
    _MODEL_PARAMS,
    MODEL_FILE,
    POSTERIOR_FORMAT,
    _check_config_copy,
    _check_posterior_format,
    _check_resume,
    _fingerprint,
    _Options,
    _output_dtype,
    _param_types,
    _plain,
    _samples_prior,
    _standardization,
    _standardize,
    _stored_samples_prior,
    check_array,
    upgrade_config,
)
from ddvi.methods import PAPER_LR, Method
from ddvi.metrics import elbo as elbo_metric
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.priors import SamplesPrior
from ddvi.threads import configure_threads
from ddvi.train import Trainer


def _store(model: Any, params: dict[str, Any]) -> None:
    """Set an ``__init__``'s arguments (its ``locals()``) as the estimator's parameters."""
    for key, value in params.items():
        if key not in ("self", "__class__"):
            setattr(model, key, value)


class BaseDDVI(TransformerMixin, BaseEstimator):
    """What every estimator shares; use :class:`~ddvi.DDVI`,
    :class:`~ddvi.SemiSupervisedDDVI` or :class:`~ddvi.ClusteringDDVI`.

    Defaults follow the paper (appendices G, H): MLP encoder/decoder 2x1000, a 5-layer 128-unit
    denoiser with T = 20 steps, Adam with lr 1e-4 (AAEB 2e-4), batch 128. DDVI's posterior starts
    as AEVB's Gaussian (its chain's residuals start at zero) and can only add to it.

    Parameters
    ----------
    {params}"""

    __doc__ = __doc__.format(params=_docs.COMMON.lstrip())
    task: ClassVar[str] = ""
    """The task (``options.task`` of a saved model) the estimator fits."""

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
                 guidance: str = "auto"):
        _store(self, locals())

    # ---- data ---------------------------------------------------------------------------------
    def prepare(self, X: Any, binarize: bool | None = None) -> torch.Tensor:
        """Rows of ``X`` as a tensor, as the model sees them: checked (finite, 2-D, the fitted
        number of features), thresholded at 0.5 if ``binarize`` (default: as at fit time) and
        standardized with the training statistics if the model was fitted with
        ``standardize=True``.

        Example:
            >>> import numpy as np
            >>> from ddvi import DDVI
            >>> DDVI().prepare(np.array([[0.2, 0.9]])).tolist()
            [[0.0, 1.0]]
        """
        if binarize is None:
            opts = getattr(self, "options_", None)
            binarize = self.binarize if opts is None else opts.binarize
        X = check_array(X)
        if hasattr(self, "options_") and X.shape[1] != self.options_.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.options_.n_features} features as input")
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

    # ---- what each task defines -----------------------------------------------------------------
    def _task_options(self, data: torch.Tensor, y: Any
                      ) -> tuple[dict[str, Any], torch.Tensor | None]:
        """The task's options (stored with the model) and the fit's labels (None: none)."""
        raise NotImplementedError

    def _build(self, config: ModelConfig, n_features: int, task_options: dict[str, Any],
               prior: SamplesPrior | None = None) -> Method:
        """The task's model, seeded, untrained."""
        raise NotImplementedError

    def _uses_prior(self) -> bool:
        """Whether the task's model has the ``prior`` parameter's prior."""
        return True

    def _after_fit(self, data: torch.Tensor) -> None:
        """Set the task's fitted attributes after training."""

    # ---- fitting --------------------------------------------------------------------------------
    def _fit_with(self, X: Any, y: Any, resume: bool,
                  feature_names: Sequence[str] | None) -> BaseDDVI:
        """Fit (see the subclasses' ``fit``), with ``threads`` set; a failed fit leaves no
        half-fitted model behind."""
        before = torch.get_num_threads()
        configure_threads(self.threads)
        try:
            return self._fit(X, y, resume, feature_names)
        except BaseException:
            for attr in _FITTED:
                self.__dict__.pop(attr, None)
            raise
        finally:
            torch.set_num_threads(before)

    def _fit(self, X: Any, y: Any, resume: bool,
             feature_names: Sequence[str] | None) -> BaseDDVI:
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
        task_options, labels = self._task_options(data, y)
        prior = _samples_prior(self.prior) if self._uses_prior() else None
        config = self.model_config()
        torch.manual_seed(self.seed)
        self.method_ = self._build(config, data.shape[1], task_options, prior)
        self.method_.likelihood.check_data(data)
        self.method_.likelihood.init_from_data(data)
        if labels is not None and labels.max() >= self.method_.prior.n_partitions:
            raise ValueError(f"labels go up to {int(labels.max())} but the {self.prior!r} prior has "
                             f"{self.method_.prior.n_partitions} partitions (one per class)")
        self.config_ = config
        self.options_ = _Options(data.shape[1], self.binarize, self.task, task_options,
                                 POSTERIOR_FORMAT, names, mean, std,
                                 prior_samples=None if prior is None else prior.spec())
        lr = PAPER_LR.get(self.method, 1e-4) if self.lr is None else self.lr
        stored = self._config()
        if self.run_dir is not None:  # lets a resume check that the data are the same
            stored["data"] = _fingerprint(data, labels)
        trainer = Trainer(self.method_, epochs=self.epochs, batch_size=self.batch_size, lr=lr,
                          seed=self.seed, run_dir=self.run_dir, verbose=self.verbose,
                          checkpoint_every=self.checkpoint_every, config=stored,
                          labeled_batch_size=getattr(self, "labeled_batch_size", 0)
                          if labels is not None else 0,
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
        self._after_fit(data)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "method_"):
            name = type(self).__name__
            raise NotFittedError(f"this {name} model is not fitted yet: call fit first or "
                                 f"{name}.load(path)")

    def __sklearn_tags__(self):  # sklearn.utils.Tags: scikit-learn >= 1.6
        """scikit-learn tags: sparse input is densified, transform keeps float32/float64."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
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
    def load(cls, path: str | Path, device: str | None = None) -> BaseDDVI:
        """Load a model saved by :meth:`save` or a training checkpoint; never unpickles code.
        It is an instance of the estimator of its stored task (``options.task``: a
        :class:`~ddvi.DDVI`, :class:`~ddvi.SemiSupervisedDDVI` or
        :class:`~ddvi.ClusteringDDVI`), whichever class's ``load`` reads it, and goes to
        ``device`` (default: the device it was fitted for, or the CPU where this machine lacks
        it).

        The configuration is read from the weights file's header, which is authoritative and
        covered by the file's checksum; it is validated (known fields and names, types, ranges)
        and any problem is a :class:`~ddvi.checkpoint.CheckpointError` naming the file and the
        field. ``config.json`` beside the weights is a human-readable copy: if it disagrees with
        the header (e.g. it was edited), loading fails rather than ignoring the edit.
        """
        from ddvi.estimators.tasks import TASK_CLASSES

        path = Path(path)
        file = path / MODEL_FILE if path.is_dir() else path
        if path.is_dir() and not file.exists() and (path / "checkpoint.safetensors").exists():
            file = path / "checkpoint.safetensors"
        tensors, meta = load_checkpoint(file)
        config = upgrade_config(meta.get("config"), str(file))
        saved_config.validate(config, _param_types(), str(file))
        _check_config_copy(file, meta.get("config"))
        opts = config["options"]
        options = _Options(**opts)
        task_class = TASK_CLASSES[options.task]
        names = task_class._get_param_names()  # files of before the split hold every task's
        model = task_class(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in config.get("params", {}).items() if k in names})
        model.options_ = options
        model.config_ = ModelConfig.from_dict(config["model"])
        _check_posterior_format(model.config_.method, model.options_, file, "refit the model")
        prior = _stored_samples_prior(tensors, model.options_, file)
        if prior is not None and model.prior == SamplesPrior.name:  # it was given as an object
            model.prior = _samples_prior(prior)
        try:
            torch.manual_seed(model.seed)
            model.method_ = model._build(model.config_, opts["n_features"],
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
