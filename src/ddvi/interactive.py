"""A self-contained interactive latent map (``map.html``): hover, legend toggles, zoom, WebGL.

Built with bokeh (the optional ``maps`` extra): one WebGL scatter per legend group, every
column shown on hover, bokeh's JavaScript inlined so the page opens from disk with no network.

Example:
    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(100, 2))
    >>> write_map_html("map.html", z, groups={"label": np.arange(100) % 3})  # doctest: +SKIP
    PosixPath('map.html')
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INSTALL_HINT", "MAX_LEGEND_ENTRIES", "MapsExtraMissing", "try_write_map_html",
           "write_map_html"]

INSTALL_HINT = "pip install 'ddvi[maps]'"
#: A ``color_by`` column with more distinct values than this is refused (one scatter per entry).
MAX_LEGEND_ENTRIES = 100


class MapsExtraMissing(ImportError):
    """bokeh, which draws ``map.html``, is not installed (the ``maps`` extra)."""


def _column(name: str, values: Any, n: int) -> list[str]:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name}: expected {n} values (one per row of z), got shape {arr.shape}")
    return [str(v) for v in arr]


def _legend_order(values: Any) -> tuple[list[str], np.ndarray]:
    """Distinct values, sorted (numbers numerically), as labels; and each row's entry index."""
    arr = np.asarray(values)
    try:
        uniq, codes = np.unique(arr, return_inverse=True)
    except TypeError:  # mixed types: sort their text
        uniq, codes = np.unique(arr.astype(str), return_inverse=True)
    return [str(u) for u in uniq], codes.reshape(-1)


def _palette(k: int) -> list[str]:
    """matplotlib's tab10 / tab20 / tab20+tab20b (as the PNG maps), then turbo for more."""
    from bokeh.palettes import Category10, Category20, Category20b, turbo

    if k <= 10:
        return list(Category10[10][:k])
    if k <= 20:
        return list(Category20[20][:k])
    if k <= 40:
        return list(Category20[20] + Category20b[20])[:k]
    return list(turbo(k))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_map_html(path: str | os.PathLike[str], z: Any, *, row_ids: Sequence[Any] | None = None,
                   groups: Mapping[str, Any] | None = None, color_by: str | None = None,
                   title: str = "") -> Path:
    """Write an interactive 2-D map of ``z`` (n, 2) to ``path`` (one self-contained HTML file).

    Hover shows the row id (``row_ids``, default 0..n-1) and every ``groups`` column (name ->
    one value per row); the legend has one entry per distinct value of ``color_by`` (default:
    the first column of ``groups``; no legend without groups), and clicking an entry hides or
    shows that group (at most 5 points per group in one tooltip). Wheel zoom, box zoom and pan;
    WebGL scatter, for maps of tens of thousands of points.
    The file is written to a temporary name and then renamed. Raises :class:`MapsExtraMissing`
    when bokeh is absent and ``ValueError`` naming the problem for bad input.
    """
    pts = np.asarray(z.detach().cpu() if hasattr(z, "detach") else z)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
        raise ValueError(f"z: expected a non-empty (n, 2) array of latents, got shape {pts.shape}")
    if not np.issubdtype(pts.dtype, np.number):
        raise ValueError(f"z: expected numbers, got dtype {pts.dtype}")
    bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
    if len(bad):
        raise ValueError(f"z: {len(bad)} rows contain NaN or inf (first: row {bad[0]})")
    n = pts.shape[0]
    ids = [str(i) for i in range(n)] if row_ids is None else _column("row_ids", row_ids, n)
    groups = dict(groups or {})
    columns = {name: _column(f"groups[{name!r}]", values, n) for name, values in groups.items()}
    if color_by is None and groups:
        color_by = next(iter(groups))
    if color_by is not None and color_by not in groups:
        raise ValueError(f"color_by={color_by!r} is not a column of groups {list(groups)}")
    if color_by is None:
        labels, codes = [""], np.zeros(n, dtype=np.intp)
    else:
        labels, codes = _legend_order(groups[color_by])
        if len(labels) > MAX_LEGEND_ENTRIES:
            raise ValueError(f"color_by={color_by!r} has {len(labels)} distinct values; a legend holds "
                             f"at most {MAX_LEGEND_ENTRIES}: colour by a column with fewer groups")
    try:
        from bokeh.embed import file_html
        from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem
        from bokeh.plotting import figure
        from bokeh.resources import INLINE
    except ImportError as err:
        raise MapsExtraMissing(f"interactive maps need bokeh (not installed): {INSTALL_HINT}") from err

    fig = figure(title=title, output_backend="webgl", match_aspect=True, sizing_mode="stretch_width",
                 height=760, tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
                 x_axis_label="z1", y_axis_label="z2")
    keys = [f"g{i}" for i in range(len(columns))]
    ids_arr = np.asarray(ids, dtype=object)
    cols_arr = [np.asarray(v, dtype=object) for v in columns.values()]
    size = float(np.clip(300.0 / math.sqrt(n), 2.0, 8.0))
    renderers = []
    for code, color in enumerate(_palette(len(labels))):
        rows = np.flatnonzero(codes == code)
        data = {"x": pts[rows, 0], "y": pts[rows, 1], "row_id": list(ids_arr[rows])}
        data |= {key: list(col[rows]) for key, col in zip(keys, cols_arr)}
        renderers.append(fig.scatter("x", "y", source=ColumnDataSource(data), size=size, color=color,
                                     alpha=0.7, line_color=None))
    tooltips = [("id", "@row_id")] + [(str(name), f"@{key}") for name, key in zip(columns, keys)]
    fig.add_tools(HoverTool(renderers=renderers, tooltips=tooltips, limit=5))
    if color_by is not None:
        items = [LegendItem(label=label, renderers=[r]) for label, r in zip(labels, renderers)]
        fig.add_layout(Legend(items=items, title=str(color_by), click_policy="hide",
                              ncols=math.ceil(len(items) / 30)), "right")
    path = Path(path)
    _write_atomic(path, file_html(fig, INLINE, title or "ddvi latent map"))
    return path


def try_write_map_html(path: str | os.PathLike[str], z: Any, **kwargs: Any) -> Path | None:
    """:func:`write_map_html`, or ``None`` and a one-line note on stderr when bokeh is absent."""
    try:
        return write_map_html(path, z, **kwargs)
    except MapsExtraMissing as err:
        print(f"ddvi: skipped {Path(path).name}: {err}", file=sys.stderr)
        return None
