"""Tests for the ancestry maps of ddvi.plot: colours grouped by super-population, grouped legends."""

from __future__ import annotations

import colorsys
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

import ddvi.plot.ancestry as dplot
from ddvi.plot import (
    SUPER_POPULATION_CMAPS,
    ancestry_colors,
    ancestry_groups,
    plot_ancestry_comparison,
    plot_ancestry_map,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The 26 populations of the 1000 Genomes Project and their super-populations.
G1K = {
    "ACB": "AFR", "ASW": "AFR", "BEB": "SAS", "CDX": "EAS", "CEU": "EUR", "CHB": "EAS", "CHS": "EAS",
    "CLM": "AMR", "ESN": "AFR", "FIN": "EUR", "GBR": "EUR", "GIH": "SAS", "GWD": "AFR", "IBS": "EUR",
    "ITU": "SAS", "JPT": "EAS", "KHV": "EAS", "LWK": "AFR", "MSL": "AFR", "MXL": "AMR", "PEL": "AMR",
    "PJL": "SAS", "PUR": "AMR", "STU": "SAS", "TSI": "EUR", "YRI": "AFR",
}


def _check_png(path: Path) -> None:
    path = Path(path)
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= 200 and img.shape[1] >= 200
    assert float(img[..., :3].std()) > 0.0


def _cohort(n: int = 520, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pops = np.array(sorted(G1K))[np.arange(n) % 26]
    rng.shuffle(pops)
    z = rng.normal(size=(n, 2)) + np.array([hash(p) % 7 for p in pops])[:, None]
    return z, pops


def _legend_texts(legend) -> list[tuple[str, bool]]:
    """(label, is bold) of every non-blank legend entry, in reading order (column-major)."""
    return [(t.get_text(), t.get_fontweight() == "bold") for t in legend.get_texts() if t.get_text()]


def _check_grouped(entries: list[tuple[str, bool]], mapping: dict[str, str]) -> None:
    headers = [label for label, bold in entries if bold]
    assert headers == sorted(set(mapping.values()))
    pops = [label for label, bold in entries if not bold]
    assert sorted(pops) == sorted(mapping) and len(pops) == len(set(pops))  # each exactly once
    current = None
    seen: dict[str, list[str]] = {}
    for label, bold in entries:
        if bold:
            current = label
        else:
            assert mapping[label] == current, f"{label} listed under {current}"
            seen.setdefault(current, []).append(label)
    assert all(v == sorted(v) for v in seen.values())  # sorted within the group


def test_colors_distinct_and_grouped_by_super_population() -> None:
    colors = ancestry_colors(list(G1K), G1K)
    assert set(colors) == set(G1K)
    rgb = {p: np.asarray(c[:3]) for p, c in colors.items()}
    assert len({tuple(np.round(c, 4)) for c in rgb.values()}) == 26
    hue_range = {"AFR": (0.045, 0.15), "AMR": (-0.06, 0.045), "EAS": (0.25, 0.45), "EUR": (0.5, 0.62),
                 "SAS": (0.64, 0.8)}  # HSV hue: browns/oranges, reds, greens, blues, purples
    for pop, sup in G1K.items():
        h, s, _ = colorsys.rgb_to_hsv(*rgb[pop])
        h = h - 1.0 if h > 0.9 else h
        lo, hi = hue_range[sup]
        assert lo <= h < hi and s > 0.15, (pop, sup, h, s)  # not grey
    # each population's colour is a shade of its super-population's colormap
    import matplotlib

    for pop, sup in G1K.items():
        shades = matplotlib.colormaps[SUPER_POPULATION_CMAPS[sup]](np.linspace(0, 1, 1001))
        assert np.min(np.abs(shades - np.asarray(colors[pop])).max(axis=1)) < 0.01


def test_groups_sorted() -> None:
    groups = ancestry_groups(np.array(list(G1K)), G1K)
    assert list(groups) == ["AFR", "AMR", "EAS", "EUR", "SAS"]
    assert groups["EUR"] == ["CEU", "FIN", "GBR", "IBS", "TSI"]
    assert groups["AFR"] == ["ACB", "ASW", "ESN", "GWD", "LWK", "MSL", "YRI"]
    with pytest.raises(ValueError, match="required"):
        ancestry_groups(list(G1K), None)


def test_per_sample_super_labels_equal_mapping() -> None:
    _, pops = _cohort()
    per_sample = [G1K[p] for p in pops]
    assert ancestry_colors(pops, per_sample) == ancestry_colors(pops, G1K)
    assert ancestry_groups(pops, per_sample) == ancestry_groups(pops, G1K)


def test_map_legend_grouped_and_png(tmp_path: Path) -> None:
    z, pops = _cohort()
    ax = plot_ancestry_map(z, pops, G1K, title="DDVI")
    try:
        _check_grouped(_legend_texts(ax.get_legend()), G1K)
        assert ax.get_title() == "DDVI"
    finally:
        plt.close(ax.figure)
    out = plot_ancestry_map(z, pops, G1K, path=tmp_path / "sub" / "map.png", note="synthetic cohort")
    assert out == tmp_path / "sub" / "map.png"
    _check_png(out)


def test_map_into_given_axes_keeps_the_figure_open(tmp_path: Path) -> None:
    z, pops = _cohort()
    fig, ax = plt.subplots()
    try:
        assert plot_ancestry_map(z, pops, G1K, ax=ax) is ax
        out = plot_ancestry_map(z, pops, G1K, ax=ax, path=tmp_path / "mine.png")
        _check_png(out)
        assert plt.fignum_exists(fig.number)
    finally:
        plt.close(fig)


def test_unknown_super_populations_get_further_families() -> None:
    mapping = {"A1": "OCE", "A2": "OCE", "A3": "OCE", "B1": "MID", "B2": "MID", "C1": "EUR", "C2": "EUR"}
    rng = np.random.default_rng(1)
    pops = np.array(list(mapping))[rng.integers(0, len(mapping), 300)]
    colors = ancestry_colors(pops, mapping)
    assert len({tuple(np.round(c, 4)) for c in colors.values()}) == len(mapping)
    blues = {tuple(np.round(colors[p], 4)) for p in ("C1", "C2")}
    assert all(c[2] > c[0] for c in blues)  # EUR keeps its blue family
    ax = plot_ancestry_map(rng.normal(size=(300, 2)), pops, mapping)
    try:
        _check_grouped(_legend_texts(ax.get_legend()), mapping)
    finally:
        plt.close(ax.figure)


def test_many_unknown_groups_stay_distinct() -> None:
    mapping = {f"P{i:02d}": f"G{i // 2:02d}" for i in range(40)}  # 20 super-populations
    colors = ancestry_colors(list(mapping), mapping)
    assert len({tuple(np.round(c, 4)) for c in colors.values()}) == 40


def test_without_super_populations_one_palette(tmp_path: Path) -> None:
    z, pops = _cohort()
    colors = ancestry_colors(pops)
    assert list(colors) == sorted(G1K)
    assert len({tuple(np.round(c, 4)) for c in colors.values()}) == 26
    ax = plot_ancestry_map(z, pops)
    try:
        entries = _legend_texts(ax.get_legend())
        assert not any(bold for _, bold in entries)
        assert [label for label, _ in entries] == sorted(G1K)
    finally:
        plt.close(ax.figure)
    for m in (5, 15, 60):
        assert len({tuple(np.round(c, 4)) for c in ancestry_colors(np.arange(m)).values()}) == m


def test_integer_labels_sorted_numerically() -> None:
    labels = np.arange(120) % 12
    assert list(ancestry_colors(labels)) == [str(i) for i in range(12)]
    groups = ancestry_groups(labels, {i: "odd" if i % 2 else "even" for i in range(12)})
    assert groups == {"even": ["0", "2", "4", "6", "8", "10"], "odd": ["1", "3", "5", "7", "9", "11"]}


def test_comparison_png_shared_legend_and_note(tmp_path: Path, monkeypatch) -> None:
    z, pops = _cohort()
    maps = {"DDVI": z, "PCA": z * [1.0, 0.2], "t-SNE": z[:, ::-1], "UMAP": -z, "AAE": z + 1.0}
    captured = {}
    save = dplot._save

    def spy(fig, path):
        captured["legends"] = [_legend_texts(leg) for leg in fig.legends]
        captured["axes"] = [ax.get_title() for ax in fig.axes if ax.axison]
        captured["texts"] = [t.get_text() for t in fig.texts]
        return save(fig, path)

    monkeypatch.setattr(dplot, "_save", spy)
    out = plot_ancestry_comparison(maps, pops, G1K, path=tmp_path / "cmp.png", title="maps",
                                   note="synthetic cohort: sampled from allele frequencies")
    _check_png(out)
    assert len(captured["legends"]) == 1
    _check_grouped(captured["legends"][0], G1K)
    assert captured["axes"] == list(maps)
    assert "synthetic cohort: sampled from allele frequencies" in captured["texts"]
    _check_png(plot_ancestry_comparison({"PCA": z}, pops, path=tmp_path / "one.png"))


def test_bad_input() -> None:
    z, pops = _cohort()
    with pytest.raises(ValueError, match="520 labels"):
        plot_ancestry_map(z[:-1], pops, G1K)
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        plot_ancestry_map(bad, pops, G1K)
    with pytest.raises(ValueError, match="no super-population given"):
        plot_ancestry_map(z, pops, {k: v for k, v in G1K.items() if k != "YRI"})
    sup = np.array([G1K[p] for p in pops])
    sup[np.flatnonzero(pops == "CEU")[0]] = "AFR"
    with pytest.raises(ValueError, match="'CEU' is listed under several"):
        plot_ancestry_map(z, pops, sup)
    with pytest.raises(ValueError, match="one label per sample"):
        plot_ancestry_map(z, pops, sup[:-1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        plot_ancestry_map(z, np.empty(0), G1K)
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_ancestry_comparison({}, pops, G1K, path="unused.png")
    with pytest.raises(ValueError, match="maps\\['UMAP'\\]: has 10 points"):
        plot_ancestry_comparison({"PCA": z, "UMAP": z[:10]}, pops, G1K, path="unused.png")
