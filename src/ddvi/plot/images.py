"""Image grids: tiles of images (e.g. model samples) in one figure."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ddvi.plot.base import _np, _save, _subplots


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
    fig, ax = _subplots(figsize=(max(2.0, ncol * scale), max(2.0, nrows * scale) + 0.3))
    if canvas.ndim == 2:
        ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return _save(fig, path)
