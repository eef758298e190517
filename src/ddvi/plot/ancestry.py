"""Ancestry maps: colours grouped by super-population, grouped legends, side-by-side maps."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ddvi.plot.base import _np, _points_2d, _save, _subplots

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
