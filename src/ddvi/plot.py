"""Figures: latent maps, image grids and training histories (PNG, headless).

Every function takes arrays and an output path, saves a PNG and returns the path. Figures are
built with matplotlib's object-oriented ``Figure`` (never pyplot), so importing or using this
module neither selects nor needs a backend or a display, and leaves pyplot's state alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_latents", "plot_image_grid", "plot_history", "DPI",
    "SUPER_POPULATION_CMAPS", "ancestry_colors", "ancestry_groups", "plot_ancestry_map",
    "plot_ancestry_comparison",
]

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


# --------------------------------------------------------------------------- ancestry maps

#: Hue family (a sequential matplotlib colormap) of each 1000 Genomes super-population; the
#: populations of one super-population get shades of its family.
SUPER_POPULATION_CMAPS: dict[str, str] = {
    "AFR": "YlOrBr", "AMR": "Reds", "EAS": "Greens", "EUR": "Blues", "SAS": "Purples",
}
# Further families for other super-population names (after the unclaimed ones above).
_EXTRA_CMAPS: tuple[str, ...] = ("Greys", "PuRd", "GnBu", "YlGn", "BuPu", "OrRd", "PuBuGn", "RdPu")
_LEGEND_ROW_PT = 9.6  # height of one legend entry (fontsize 7, labelspacing 0.25), in points


class _AncestryLayout:
    """Populations in legend order, each sample's index into them, groups and colours."""

    def __init__(self, populations: Any, super_populations: Any | None) -> None:
        pops = _np(populations)
        if pops.ndim == 2 and 1 in pops.shape:
            pops = pops.reshape(-1)
        if pops.ndim != 1 or pops.shape[0] == 0:
            raise ValueError(f"populations: expected a non-empty 1-D array of labels, got shape {pops.shape}")
        if np.issubdtype(pops.dtype, np.floating) and not np.all(np.isfinite(pops)):
            raise ValueError("populations: contains NaN or inf labels")
        uniq, codes = np.unique(pops, return_inverse=True)
        names = [str(u) for u in uniq]
        if len(set(names)) != len(names):
            raise ValueError("populations: distinct labels print the same; use string labels")
        self.n = int(pops.shape[0])
        if super_populations is None:
            self.groups: list[tuple[str | None, list[str]]] = [(None, names)]
        else:
            sup_of = _super_of(uniq, names, codes, super_populations, self.n)
            by_sup: dict[str, list[str]] = {}
            for name in names:  # names are sorted, so populations are sorted within a group
                by_sup.setdefault(sup_of[name], []).append(name)
            self.groups = [(s, by_sup[s]) for s in sorted(by_sup)]
        self.names = [p for _, pops_ in self.groups for p in pops_]
        position = {p: i for i, p in enumerate(self.names)}
        self.codes = np.asarray([position[p] for p in names], dtype=np.int64)[codes.reshape(-1)]
        self.colors = _group_colors(self.groups)

    def color_map(self) -> dict[str, tuple[float, float, float, float]]:
        return {p: tuple(float(v) for v in c) for p, c in zip(self.names, self.colors)}


def _super_of(uniq: np.ndarray, names: list[str], codes: np.ndarray, super_populations: Any,
              n: int) -> dict[str, str]:
    """Map each population name to its super-population (a Mapping or one label per sample)."""
    if isinstance(super_populations, Mapping):
        lookup = {str(k): str(v) for k, v in super_populations.items()}
        missing = [p for p in names if p not in lookup]
        if missing:
            raise ValueError(f"super_populations: no super-population given for population(s) {missing[:10]}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        return {p: lookup[p] for p in names}
    sup = _np(super_populations)
    if sup.ndim == 2 and 1 in sup.shape:
        sup = sup.reshape(-1)
    if sup.ndim != 1 or sup.shape[0] != n:
        raise ValueError(f"super_populations: expected a mapping population -> super-population or one "
                         f"label per sample ({n}), got shape {sup.shape}")
    sup_str = np.asarray([str(s) for s in sup])
    out: dict[str, str] = {}
    codes = codes.reshape(-1)
    for i, name in enumerate(names):
        found = np.unique(sup_str[codes == i])
        if len(found) != 1:
            raise ValueError(f"super_populations: population {name!r} is listed under several "
                             f"super-populations {list(found)}")
        out[name] = str(found[0])
    return out


def _shades(cmap_name: str, m: int, cycle: int = 0) -> np.ndarray:
    cmap = matplotlib.colormaps[cmap_name]
    lo, hi = (0.35, 0.95) if m > 6 else (0.45, 0.95)
    lo, hi = lo + 0.04 * (cycle % 3), hi - 0.03 * (cycle % 3)
    t = np.array([0.5 * (lo + hi) + 0.1]) if m == 1 else np.linspace(lo, hi, m)
    return np.asarray(cmap(t))


def _group_colors(groups: list[tuple[str | None, list[str]]]) -> np.ndarray:
    """One RGBA row per population, in the order of ``groups``."""
    if len(groups) == 1 and groups[0][0] is None:
        m = len(groups[0][1])
        if m <= 10:
            return np.asarray(matplotlib.colormaps["tab10"](np.arange(m)))
        if m <= 20:
            return np.asarray(matplotlib.colormaps["tab20"](np.arange(m)))
        if m <= 40:
            both = np.vstack([matplotlib.colormaps["tab20"](np.arange(20)),
                              matplotlib.colormaps["tab20b"](np.arange(20))])
            return both[:m]
        return np.asarray(matplotlib.colormaps["turbo"](np.linspace(0.05, 0.95, m)))
    present = {s for s, _ in groups}
    claimed = {SUPER_POPULATION_CMAPS[s] for s in present if s in SUPER_POPULATION_CMAPS}
    pool = [c for c in SUPER_POPULATION_CMAPS.values() if c not in claimed] + list(_EXTRA_CMAPS)
    rows, k = [], 0
    for sup, pops in groups:
        if sup in SUPER_POPULATION_CMAPS:
            rows.append(_shades(SUPER_POPULATION_CMAPS[sup], len(pops)))
        else:
            rows.append(_shades(pool[k % len(pool)], len(pops), cycle=k // len(pool)))
            k += 1
    return np.vstack(rows)


def ancestry_colors(populations: Any, super_populations: Any | None = None
                    ) -> dict[str, tuple[float, float, float, float]]:
    """The RGBA colour of each population, as used by :func:`plot_ancestry_map`.

    With ``super_populations`` (a mapping population -> super-population, or one label per
    sample) each super-population gets a hue family (:data:`SUPER_POPULATION_CMAPS` for the 1000
    Genomes codes AFR, AMR, EAS, EUR, SAS; further families for other names) and its populations,
    sorted, get shades of it.  Without, one qualitative palette (tab10/tab20/tab20+tab20b).
    Keys are the population labels as strings, in legend order.
    """
    return _AncestryLayout(populations, super_populations).color_map()


def ancestry_groups(populations: Any, super_populations: Any) -> dict[str, list[str]]:
    """``{super-population: [its populations, sorted]}`` with super-populations sorted (legend order)."""
    if super_populations is None:
        raise ValueError("ancestry_groups: super_populations is required")
    return {str(s): list(p) for s, p in _AncestryLayout(populations, super_populations).groups}


def _ancestry_size(n: int) -> float:
    return float(np.clip(4000.0 / max(n, 1), 1.0, 16.0))


def _map_points(z: Any, name: str, n: int) -> np.ndarray:
    pts = _points_2d(z, name)
    if pts.shape[0] != n:
        raise ValueError(f"{name}: has {pts.shape[0]} points but populations has {n} labels")
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"{name}: contains NaN or inf coordinates")
    return pts


def _draw_ancestry(ax: Axes, pts: np.ndarray, layout: _AncestryLayout) -> None:
    order = np.random.default_rng(0).permutation(pts.shape[0])  # no population hides the others
    ax.scatter(pts[order, 0], pts[order, 1], c=layout.colors[layout.codes[order]],
               s=_ancestry_size(pts.shape[0]), alpha=0.8, linewidths=0, rasterized=True)
    ax.set_aspect("equal", adjustable="datalim")
    ax.tick_params(labelsize=7)


def _ancestry_legend(owner: Axes | Figure, layout: _AncestryLayout, height_in: float,
                     **kwargs: Any) -> Any:
    """Legend grouped by super-population: a bold header, then its populations.

    As many columns as needed for the legend to fit in ``height_in`` inches; a group starts a
    new column rather than being split (unless it alone is taller than a column).
    """
    from matplotlib.lines import Line2D

    def blank() -> tuple[Any, str, bool]:
        return Line2D([], [], linestyle="none", marker=""), "", False

    rows = max(8, int(0.9 * height_in * 72.0 / _LEGEND_ROW_PT))
    columns: list[list[tuple[Any, str, bool]]] = [[]]
    for sup, pops in layout.groups:
        entries = [] if sup is None else [(Line2D([], [], linestyle="none", marker=""), sup, True)]
        for p in pops:
            color = layout.colors[layout.names.index(p)]
            entries.append((Line2D([], [], linestyle="none", marker="o", markersize=5,
                                   markerfacecolor=color, markeredgewidth=0), p, False))
        if columns[-1] and len(columns[-1]) + len(entries) > rows:
            columns.append([])
        for entry in entries:
            if len(columns[-1]) >= rows:
                columns.append([])
            columns[-1].append(entry)
    height = max(len(c) for c in columns)
    flat = [e for c in columns for e in c + [blank() for _ in range(height - len(c))]]
    leg = owner.legend([e[0] for e in flat], [e[1] for e in flat], loc="upper left", frameon=False,
                       fontsize=7, ncol=len(columns), handletextpad=0.2, labelspacing=0.25,
                       columnspacing=0.8, borderaxespad=0.0, **kwargs)
    for text, entry in zip(leg.get_texts(), flat):
        if entry[2]:
            text.set_fontweight("bold")
    return leg


def plot_ancestry_map(
    z: Any,
    populations: Any,
    super_populations: Any | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    note: str | None = None,
) -> Path | Axes:
    """Scatter a 2-D ancestry map coloured by population, legend grouped by super-population.

    ``z``: (n, 2) map; ``populations``: n labels; ``super_populations``: a mapping
    population -> super-population or n labels (see :func:`ancestry_colors` for the colours).
    The legend (super-population headers in bold, then their populations) sits right of the
    axes.  ``note`` is a small line under the axes (e.g. "synthetic cohort: ...").
    Draws into ``ax`` if given (else into a new pyplot-free ``Figure``).  Returns the saved path
    if ``path`` is given, otherwise the Axes.
    """
    layout = _AncestryLayout(populations, super_populations)
    pts = _map_points(z, "z", layout.n)
    if ax is None:
        _, ax = _subplots(figsize=(5.5, 5.0))
    _draw_ancestry(ax, pts, layout)
    _ancestry_legend(ax, layout, ax.figure.get_figheight(), bbox_to_anchor=(1.03, 1.0))
    if title is not None:
        ax.set_title(title)
    if note:
        ax.text(0.0, -0.08, note, transform=ax.transAxes, ha="left", va="top", fontsize=7,
                style="italic")
    if path is None:
        return ax
    return _save(ax.figure, path)


def plot_ancestry_comparison(
    maps: Mapping[str, Any],
    populations: Any,
    super_populations: Any | None = None,
    path: str | os.PathLike[str] = "ancestry_comparison.png",
    title: str | None = None,
    note: str | None = None,
) -> Path:
    """One ancestry map per method (e.g. DDVI, PCA, t-SNE, UMAP) side by side, one shared legend.

    ``maps``: {method name: (n, 2) map}, in panel order (at most 4 panels a row); every map
    has the n rows of ``populations``.  ``note`` is a figure-level line at the bottom (say which
    cohort is synthetic).  Returns the saved PNG's path.
    """
    if not isinstance(maps, Mapping) or len(maps) == 0:
        raise ValueError("maps: expected a non-empty mapping {method name: (n, 2) map}")
    layout = _AncestryLayout(populations, super_populations)
    panels = {str(k): _map_points(v, f"maps[{k!r}]", layout.n) for k, v in maps.items()}
    k = len(panels)
    ncol = min(k, 4)
    nrows = math.ceil(k / ncol)
    fig, axes = _subplots(nrows, ncol, figsize=(3.6 * ncol, 3.6 * nrows), squeeze=False)
    for ax, (name, pts) in zip(axes.flat, panels.items()):
        _draw_ancestry(ax, pts, layout)
        ax.set_title(name, fontsize=10)
    for ax in list(axes.flat)[k:]:
        ax.set_axis_off()
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    top = 0.95 if title is not None else 0.98
    _ancestry_legend(fig, layout, fig.get_figheight(), bbox_to_anchor=(1.0, top))
    if note:
        fig.text(0.01, 0.0, note, ha="left", va="top", fontsize=8, style="italic", wrap=True)
    return _save(fig, path)


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
