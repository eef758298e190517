"""Figures: latent maps, image grids and training histories (PNG, headless).

Every function takes arrays and an output path, saves a PNG, closes its figure and
returns the path.  The Agg backend is selected unless a backend was forced by the user
(``MPLBACKEND`` or an earlier ``matplotlib.use``); ``plt.show()`` is never called.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib


def _backend_forced() -> bool:
    """True if the user chose a backend (env var, matplotlibrc or ``matplotlib.use``)."""
    if os.environ.get("MPLBACKEND"):
        return True
    get = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    if get is not None:
        return get() is not None
    return "matplotlib.pyplot" in sys.modules


if not _backend_forced():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_latents", "plot_image_grid", "plot_history", "DPI"]

#: Resolution of every saved figure.
DPI = 120


def _np(x: Any) -> np.ndarray:
    """Convert a numpy array, torch tensor or sequence to a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _save(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=DPI, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
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


def plot_latents(
    latents: Any,
    labels: Any | None = None,
    prior_samples: Any | None = None,
    path: str | os.PathLike[str] = "latents.png",
    title: str | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Scatter the 2-D latent map (coloured by class) and, if given, the prior samples.

    Left panel: latents, tab10 (<= 10 classes), tab20 (<= 20) or a continuous colormap,
    with a legend for discrete classes.  Right panel: prior samples.  Both panels share
    axis limits and have equal aspect.  Scatters are rasterized, so ~70 000 points are fast.
    """
    lat = _points_2d(latents, "latents")
    prior = None if prior_samples is None else _points_2d(prior_samples, "prior_samples")
    ncols = 1 if prior is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 5.0), squeeze=False)
    ax = axes[0, 0]
    size = _point_size(lat.shape[0])
    common = dict(s=size, alpha=0.6, linewidths=0, rasterized=True)
    if labels is None:
        ax.scatter(lat[:, 0], lat[:, 1], color="tab:blue", **common)
    else:
        lab = _np(labels).reshape(-1)
        if lab.shape[0] != lat.shape[0]:
            raise ValueError(f"labels: has {lab.shape[0]} entries but latents has "
                             f"{lat.shape[0]} points")
        classes, codes = np.unique(lab, return_inverse=True)
        k = len(classes)
        if k <= 20:
            cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
            for c in range(k):
                mask = codes == c
                name = (
                    str(class_names[int(classes[c])])
                    if class_names is not None and _is_index(classes[c], len(class_names))
                    else str(classes[c])
                )
                ax.scatter(lat[mask, 0], lat[mask, 1], color=cmap(c % cmap.N), label=name,
                           **common)
            ax.legend(markerscale=max(4.0, 6.0 / math.sqrt(size)), fontsize=7, loc="best",
                      frameon=True, framealpha=0.8, ncol=1 if k <= 10 else 2)
        else:
            numeric = np.issubdtype(lab.dtype, np.number)
            cvals = lab.astype(np.float64) if numeric else codes
            sc = ax.scatter(lat[:, 0], lat[:, 1], c=cvals, cmap="viridis", **common)
            fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04)
    xlim, ylim = _limits(lat) if prior is None else _limits(lat, prior)
    ax.set_title("latents" if title is None else title)
    panels = [ax]
    if prior is not None:
        ax2 = axes[0, 1]
        ax2.scatter(prior[:, 0], prior[:, 1], color="tab:gray",
                    s=_point_size(prior.shape[0]), alpha=0.6, linewidths=0, rasterized=True)
        ax2.set_title("prior samples")
        panels.append(ax2)
    for a in panels:
        a.set_xlim(*xlim)
        a.set_ylim(*ylim)
        a.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return _save(fig, path)


def _is_index(value: Any, n: int) -> bool:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return v.is_integer() and 0 <= v < n


def _as_images(images: Any) -> np.ndarray:
    """Return images as (n, H, W) or (n, H, W, 3) float array in [0, 1]."""
    arr = _np(images).astype(np.float64, copy=False)
    if arr.ndim == 2:
        side = int(round(math.sqrt(arr.shape[1])))
        if side * side != arr.shape[1]:
            raise ValueError(f"images: flattened images of size {arr.shape[1]} are not square")
        arr = arr.reshape(arr.shape[0], side, side)
    elif arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 1, -1)  # (n, C, H, W) -> (n, H, W, C)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise ValueError(f"images: expected (n, H, W), (n, H, W, 3) or (n, H*W), got shape "
                         f"{_np(images).shape}")
    if arr.shape[0] == 0:
        raise ValueError("images: no images to plot")
    return np.clip(np.nan_to_num(arr, nan=0.0), 0.0, 1.0)


def plot_image_grid(
    images: Any,
    path: str | os.PathLike[str],
    nrow: int = 10,
    title: str | None = None,
) -> Path:
    """Tile images into a grid of ``nrow`` images per row (no axes) and save it.

    ``images``: (n, H, W), (n, H, W, 3) or flattened (n, H*W) (e.g. 784 -> 28x28), values
    in [0, 1] (clipped).
    """
    imgs = _as_images(images)
    n, h, w = imgs.shape[:3]
    ncol = max(1, min(int(nrow), n))
    nrows = math.ceil(n / ncol)
    pad = 1
    shape = (nrows * (h + pad) + pad, ncol * (w + pad) + pad) + imgs.shape[3:]
    canvas = np.ones(shape)
    for idx in range(n):
        r, c = divmod(idx, ncol)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y0 : y0 + h, x0 : x0 + w] = imgs[idx]
    scale = 0.6 if h <= 32 else 0.02 * h
    fig, ax = plt.subplots(figsize=(max(2.0, ncol * scale), max(2.0, nrows * scale) + 0.3))
    if canvas.ndim == 2:
        ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return _save(fig, path)


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
    fig, axes = plt.subplots(nrows, ncol, figsize=(3.6 * ncol, 2.6 * nrows), squeeze=False)
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
