"""Training histories: one panel per numeric column versus epoch."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddvi.plot.base import _save, _subplots


def _history_columns(
    history: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return (epochs, {column: values}) with only numeric columns kept."""
    if isinstance(history, Mapping):
        cols = {k: list(v) for k, v in history.items()}
    else:
        rows = list(history)
        keys: list[str] = []
        for row in rows:
            keys.extend(k for k in row if k not in keys)
        cols = {k: [row.get(k, np.nan) for row in rows] for k in keys}
    n = max((len(v) for v in cols.values()), default=0)
    if n == 0:
        raise ValueError("history: no rows to plot")
    epochs = np.asarray(cols.pop("epoch", range(1, n + 1)), dtype=np.float64)
    numeric: dict[str, np.ndarray] = {}
    for k, v in cols.items():
        try:
            arr = np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if arr.ndim == 1 and arr.shape[0] == epochs.shape[0] and np.isfinite(arr).any():
            numeric[k] = arr
    return epochs, numeric


def plot_history(
    history: Mapping[str, Sequence[float]] | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
) -> Path:
    """One small panel per numeric column versus epoch.

    ``history`` is either a dict of columns (optionally with an ``'epoch'`` column) or a
    list of dict rows with an ``'epoch'`` key; non-numeric columns are skipped.
    """
    epochs, cols = _history_columns(history)
    if not cols:
        raise ValueError("history: no numeric columns to plot")
    k = len(cols)
    ncol = min(3, k)
    nrows = math.ceil(k / ncol)
    fig, axes = _subplots(nrows, ncol, figsize=(3.6 * ncol, 2.6 * nrows), squeeze=False)
    for ax, (name, vals) in zip(axes.flat, cols.items(), strict=False):
        ok = np.isfinite(vals)
        ax.plot(epochs[ok], vals[ok], marker="." if ok.sum() <= 50 else None, lw=1.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[k:]:
        ax.set_axis_off()
    fig.tight_layout()
    return _save(fig, path)
