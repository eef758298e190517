"""Shared figure helpers: array conversion, pyplot-free figures, saving PNGs, axis limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

#: Resolution of every saved figure.
DPI = 120


def _np(x: Any) -> np.ndarray:
    """Convert a numpy array, torch tensor or sequence to a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """A pyplot-free ``plt.subplots``: the figure is garbage-collected like any object."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png", bbox_inches="tight")
    return out


def _points_2d(x: Any, name: str) -> np.ndarray:
    arr = _np(x).astype(np.float64, copy=False)
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, 2) array, got shape {arr.shape}")
    return arr[:, :2]


def _limits(*arrays: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Common square-ish axis limits covering all finite points (with a 5% margin)."""
    pts = np.concatenate([a[np.all(np.isfinite(a), axis=1)] for a in arrays])
    if pts.size == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1e-12)
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _point_size(n: int) -> float:
    return float(np.clip(2000.0 / max(n, 1), 0.5, 12.0))
