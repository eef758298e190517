"""Tests for ddvi.plot: every function writes a valid, reasonably sized PNG."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from ddvi.plot import plot_history, plot_image_grid, plot_latents

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_hw: tuple[int, int] = (100, 100)) -> np.ndarray:
    path = Path(path)
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_hw[0] and img.shape[1] >= min_hw[1]
    assert img.shape[0] < 5000 and img.shape[1] < 5000
    assert float(img[..., :3].std()) > 0.0  # not a blank image
    return img


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_plotting_leaves_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    """Regression: importing ddvi.plot used to call matplotlib.use("Agg") as a side effect."""
    code = (
        "import sys, matplotlib, numpy as np\n"
        "matplotlib.rcParams['backend'] = 'svg'\n"
        "from ddvi.plot import plot_latents\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()  # import alone\n"
        f"plot_latents(np.zeros((5, 2)), path={str(tmp_path / 'a.png')!r})\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MPLBACKEND": ""})
    assert (tmp_path / "a.png").stat().st_size > 0


def test_plot_latents_labels_and_prior(tmp_path: Path, rng: np.random.Generator) -> None:
    lat = rng.normal(size=(500, 2))
    labels = rng.integers(0, 10, size=500)
    prior = rng.normal(size=(400, 2)) * 1.5
    out = plot_latents(lat, labels, prior, path=tmp_path / "a.png", title="test",
                       class_names=[f"c{i}" for i in range(10)])
    assert out == tmp_path / "a.png"
    img = _check_png(out, (300, 600))
    assert img.shape[1] > img.shape[0]  # two side-by-side panels


def test_plot_latents_without_labels_or_prior(tmp_path: Path, rng: np.random.Generator) -> None:
    out = plot_latents(torch.randn(300, 2), path=tmp_path / "sub" / "b.png")
    _check_png(out, (300, 300))
    out2 = plot_latents(rng.normal(size=(300, 2)), prior_samples=rng.normal(size=(50, 2)),
                        path=tmp_path / "c.png")
    _check_png(out2, (300, 600))


@pytest.mark.parametrize("n_classes", [15, 40])
def test_plot_latents_many_classes(
    tmp_path: Path, rng: np.random.Generator, n_classes: int
) -> None:
    lat = rng.normal(size=(800, 2))
    labels = rng.integers(0, n_classes, size=800)
    _check_png(plot_latents(lat, labels, path=tmp_path / f"m{n_classes}.png"), (300, 300))
    string_labels = np.array([f"pop{i}" for i in labels])
    _check_png(plot_latents(lat, string_labels, path=tmp_path / "s.png"), (300, 300))


def test_plot_latents_large_is_fast(tmp_path: Path, rng: np.random.Generator) -> None:
    lat = rng.normal(size=(70_000, 2)).astype(np.float32)
    labels = rng.integers(0, 10, size=70_000)
    t0 = time.perf_counter()
    out = plot_latents(lat, labels, lat[:10_000] * 0.9, path=tmp_path / "big.png")
    assert time.perf_counter() - t0 < 20.0
    _check_png(out, (300, 600))


def test_plot_latents_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="latents"):
        plot_latents(rng.normal(size=(10,)), path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        plot_latents(rng.normal(size=(10, 2)), np.zeros(9), path=tmp_path / "x.png")


@pytest.mark.parametrize(
    "shape", [(23, 28, 28), (20, 16, 16, 3), (30, 784), (12, 1, 28, 28)]
)
def test_plot_image_grid_shapes(tmp_path: Path, rng: np.random.Generator, shape) -> None:
    images = rng.random(shape)
    out = plot_image_grid(images, tmp_path / "grid.png", nrow=10, title="samples")
    _check_png(out, (100, 200))


def test_plot_image_grid_flattened_torch(tmp_path: Path) -> None:
    images = torch.rand(100, 784)
    img = _check_png(plot_image_grid(images, tmp_path / "g.png", nrow=10), (250, 250))
    # 10 x 10 grid of 28 px images -> roughly square
    assert 0.7 < img.shape[0] / img.shape[1] < 1.4
    with pytest.raises(ValueError, match="square"):
        plot_image_grid(np.zeros((4, 10)), tmp_path / "bad.png")


def test_plot_history_dict_and_rows(tmp_path: Path) -> None:
    hist = {"epoch": [1, 2, 3, 4], "loss": [3.0, 2.0, 1.5, 1.2], "elbo": [-3, -2, -1.5, -1.2],
            "kl": [0.5, 0.4, 0.3, 0.3]}
    _check_png(plot_history(hist, tmp_path / "h.png"), (150, 300))
    rows = [{"epoch": e, "loss": 1.0 / e, "note": "x", "mmd": None if e == 2 else 0.1 * e}
            for e in range(1, 6)]
    _check_png(plot_history(rows, tmp_path / "h2.png"), (150, 300))
    _check_png(plot_history({"loss": [1.0, 0.5]}, tmp_path / "h3.png"), (100, 100))
    with pytest.raises(ValueError, match="history"):
        plot_history([], tmp_path / "h4.png")
