"""The trainer: one loop for every method, with history, safe checkpoints and resume."""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ddvi import devices
from ddvi.checkpoint import (
    flatten_optimizer,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    unflatten_optimizer,
)
from ddvi.methods.base import Method, StepContext

CHECKPOINT = "checkpoint.safetensors"


class NonFiniteLossError(FloatingPointError):
    """Training produced NaN or inf."""


class Trainer:
    """Adam over mini-batches for ``epochs`` epochs.

    ``run_dir`` (optional) receives ``history.csv``/``history.json`` every epoch and an atomic
    ``checkpoint.safetensors`` every ``checkpoint_every`` epochs and at the end; ``fit(...,
    resume=True)`` continues from it, after ``check_resume(meta)`` (if given) has accepted the
    checkpoint's meta (it raises to refuse). NaN/inf is checked every ``check_every`` steps (one host
    sync) and stops training with :class:`NonFiniteLossError`.

    ``device`` (a name for :func:`ddvi.devices.resolve_device`; default: where the method's
    parameters are) receives the method, the data (once, at the start of :meth:`fit`) and the
    random generator, so a step never copies between host and device.
    """

    def __init__(self, method: Method, *, epochs: int, batch_size: int = 128, lr: float = 1e-4,
                 seed: int = 0, run_dir: str | Path | None = None, checkpoint_every: int = 1,
                 verbose: bool = True, config: dict[str, Any] | None = None,
                 check_every: int = 50, labeled_batch_size: int = 0,
                 check_resume: Callable[[dict[str, Any]], None] | None = None,
                 device: str | torch.device | None = None):
        if epochs < 1 or batch_size < 1 or lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if labeled_batch_size < 0:
            raise ValueError(f"labeled_batch_size must be >= 0, got {labeled_batch_size}")
        self.labeled_batch_size, self.check_resume = labeled_batch_size, check_resume
        self.method, self.epochs, self.batch_size, self.lr = method, epochs, batch_size, lr
        self.seed, self.verbose, self.config = seed, verbose, config or {}
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every, self.check_every = checkpoint_every, check_every
        self.device = devices.module_device(method) if device is None else \
            devices.resolve_device(device)
        method.to(self.device)
        self.optimizer = method.configure_optimizer(lr)
        self.generator = devices.generator(seed, self.device)
        self.history: list[dict[str, float]] = []
        self.epoch = 0  # epochs completed

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The method's optimizer(s) by name (methods like AAEB use several)."""
        opt = self.optimizer
        return dict(opt) if isinstance(opt, dict) else {"main": opt}

    # ---- checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT if self.run_dir else None

    def save(self, path: str | Path | None = None) -> None:
        path = path or self.checkpoint_path
        if path is None:
            return
        tensors = {f"model.{k}": v for k, v in self.method.state_dict().items()}
        opt_info = {}
        for name, opt in self._optimizers().items():
            opt_tensors, opt_info[name] = flatten_optimizer(opt)
            tensors |= {f"optim.{name}.{k}": v for k, v in opt_tensors.items()}
        tensors["rng.generator"] = self.generator.get_state()
        meta = {"config": self.config, "epoch": self.epoch, "history": self.history,
                "rng_device": self.device.type,
                "optimizer": opt_info, "trainer": {"epochs": self.epochs, "lr": self.lr,
                                                   "batch_size": self.batch_size, "seed": self.seed}}
        save_checkpoint(path, tensors, meta)

    def restore(self, path: str | Path) -> None:
        tensors, meta = load_checkpoint(path)
        if self.check_resume is not None:
            self.check_resume(meta)
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.method.load_state_dict(model)
        for name, opt in self._optimizers().items():
            prefix = f"optim.{name}."
            optim = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            unflatten_optimizer(opt, optim, meta["optimizer"][name])
        self.epoch, self.history = meta["epoch"], meta["history"]
        if meta.get("rng_device", "cpu") == self.device.type:
            self.generator.set_state(tensors["rng.generator"])
        else:  # another device type has another generator: a new stream, still seeded
            self.generator = devices.generator(self.seed * 100_003 + self.epoch, self.device)
            warnings.warn(f"resuming on {self.device.type}, not {meta['rng_device']} as the run "
                          "started: the random stream from here differs from an uninterrupted run",
                          UserWarning, stacklevel=3)

    # ---- loop -----------------------------------------------------------------------------
    def fit(self, x: Tensor, resume: bool = False, y: Tensor | None = None) -> list[dict[str, float]]:
        """Train on the rows of ``x`` (and their labels ``y``, -1 = unlabeled, passed to the method
        as ``ctx.labels``); returns the per-epoch history."""
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"training data must be a non-empty 2-D tensor, got {tuple(x.shape)}")
        if y is not None and y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
        if self.run_dir is not None:
            remove_stale_temporaries(self.run_dir)  # left by a run killed while saving
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.restore(self.checkpoint_path)
        x = x.to(self.device)
        y = None if y is None else y.to(self.device)
        n = x.shape[0]
        per_epoch = math.ceil(n / self.batch_size)
        self.method.train()
        bar = tqdm(total=self.epochs * per_epoch, initial=self.epoch * per_epoch,
                   disable=not self.verbose, unit="step", dynamic_ncols=True)
        try:
            while self.epoch < self.epochs:
                self._run_epoch(x, y, per_epoch, bar)
                self.epoch += 1
                self._write_history()
                if self.epoch % self.checkpoint_every == 0 or self.epoch == self.epochs:
                    self.save()
        finally:
            bar.close()
            self.method.eval()
        return self.history

    def _run_epoch(self, x: Tensor, y: Tensor | None, per_epoch: int, bar: tqdm) -> None:
        start = time.perf_counter()
        ctx = StepContext(self.epoch, self.epochs, self.generator)
        perm = torch.randperm(x.shape[0], generator=self.generator, device=self.device)
        extra, lb = self._labeled_stream(y, per_epoch), self.labeled_batch_size
        sums: dict[str, Tensor] = {}
        bar.set_description(f"epoch {self.epoch + 1}/{self.epochs}")
        for i in range(per_epoch):
            idx = perm[i * self.batch_size:(i + 1) * self.batch_size]
            if extra is not None:
                idx = torch.cat([idx, extra[i * lb:(i + 1) * lb]])
            ctx.labels = None if y is None else y[idx]
            terms = self.method.training_step(x[idx], self.optimizer, ctx)
            for k, v in terms.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            if (i + 1) % self.check_every == 0 or i + 1 == per_epoch:
                self._check_finite(sums, i)
                bar.set_postfix({k: f"{float(v) / (i + 1):.4g}" for k, v in sums.items()})
            bar.update(1)
        row = {"epoch": self.epoch + 1, "seconds": time.perf_counter() - start}
        row |= {k: float(v) / per_epoch for k, v in sums.items()}
        self.history.append(row)

    def _labeled_stream(self, y: Tensor | None, per_epoch: int) -> Tensor | None:
        """Indices of labelled rows for this epoch, ``labeled_batch_size`` per step, cycling through
        reshuffled copies of the labelled set (None when there is nothing to add): with few labels
        every step still sees some, as in Kingma et al. (2014)'s separate labelled mini-batches."""
        if y is None or not self.labeled_batch_size:
            return None
        labeled = torch.nonzero(y >= 0)[:, 0]
        if labeled.numel() == 0:
            return None
        need = per_epoch * self.labeled_batch_size
        copies = [labeled[torch.randperm(labeled.numel(), generator=self.generator,
                                         device=self.device)]
                  for _ in range(math.ceil(need / labeled.numel()))]
        return torch.cat(copies)[:need]

    def _check_finite(self, sums: dict[str, Tensor], step: int) -> None:
        values = torch.stack(list(sums.values()))
        if not bool(torch.isfinite(values).all()):
            bad = [k for k, v in sums.items() if not torch.isfinite(v)]
            where = f"epoch {self.epoch + 1}, by step {step + 1}"
            last = (f"; the last good checkpoint is {self.checkpoint_path}"
                    if self.checkpoint_path and self.checkpoint_path.exists() else "")
            raise NonFiniteLossError(f"non-finite training loss terms {bad} in {where}{last}. "
                                     "Try a lower learning rate or check the data.")

    def _write_history(self) -> None:
        if self.run_dir is None or not self.history:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        keys = list(dict.fromkeys(k for row in self.history for k in row))
        with open(self.run_dir / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)
