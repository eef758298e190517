"""Latent maps: one 2-D map with its prior samples, or a grid of maps (e.g. method x prior)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from ddvi.plot.base import _limits, _np, _point_size, _points_2d, _save, _subplots


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
    fig, axes = _subplots(1, ncols, figsize=(5.5 * ncols, 5.0), squeeze=False)
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


def plot_latent_grid(panels: dict[tuple[str, str], tuple[Any, Any]],
                     path: str | os.PathLike[str] = "latent_grid.png", title: str | None = None) -> Path:
    """One latent map per (row, column) -- e.g. method x prior, as the paper's Figures 2-4 --
    coloured by label (digits, populations); ``panels[(row, col)] = (z (n, 2), labels or None)``."""
    if not panels:
        raise ValueError("plot_latent_grid needs at least one panel")
    rows = list(dict.fromkeys(r for r, _ in panels))
    cols = list(dict.fromkeys(c for _, c in panels))
    fig, axes = _subplots(len(rows), len(cols), figsize=(3.0 * len(cols), 3.0 * len(rows)),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(str(col), fontsize=9)
            if j == 0:
                ax.set_ylabel(str(row), fontsize=9)
            if (row, col) not in panels:
                ax.set_axis_off()
                continue
            z, labels = panels[(row, col)]
            z = _points_2d(z, f"panel {row}/{col}")
            colors = None
            if labels is not None:
                _, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
                colors = matplotlib.colormaps["tab20"](codes % 20)
            ax.scatter(z[:, 0], z[:, 1], s=_point_size(len(z)), c=colors, linewidths=0,
                       rasterized=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
