"""Figures: latent maps, image grids and training histories (PNG, headless).

Every function takes arrays and an output path, saves a PNG and returns the path. Figures are
built with matplotlib's object-oriented ``Figure`` (never pyplot), so importing or using this
module neither selects nor needs a backend or a display, and leaves pyplot's state alone.
"""

from __future__ import annotations

from ddvi.plot.ancestry import (
    SUPER_POPULATION_CMAPS,
    ancestry_colors,
    ancestry_groups,
    plot_ancestry_comparison,
    plot_ancestry_map,
)
from ddvi.plot.base import DPI
from ddvi.plot.history import plot_history
from ddvi.plot.images import plot_image_grid
from ddvi.plot.latents import plot_latent_grid as plot_latent_grid
from ddvi.plot.latents import plot_latents

__all__ = [
    "plot_latents", "plot_image_grid", "plot_history", "DPI",
    "SUPER_POPULATION_CMAPS", "ancestry_colors", "ancestry_groups", "plot_ancestry_map",
    "plot_ancestry_comparison",
]
