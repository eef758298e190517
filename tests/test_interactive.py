"""map.html: input checks, the HTML itself, the hooks in image and genotype runs, and the page in a
real headless Chromium (skipped where Chromium or playwright is absent)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ddvi.interactive import MAX_LEGEND_ENTRIES, MapsExtraMissing, try_write_map_html, write_map_html

N = 24
IDS = [f"sample-{i:03d}" for i in range(N)]
GROUPS = {"population": [f"p{i % 4}" for i in range(N)],
          "super_population": ["AFR" if i % 4 < 2 else "EUR" for i in range(N)],
          "cluster": [i % 3 for i in range(N)]}


def _grid(n: int = N) -> np.ndarray:
    """Points 3 units apart on a 6-wide grid: each one alone under the mouse."""
    i = np.arange(n)
    return np.column_stack([i % 6 * 3.0, i // 6 * 3.0])


def _models(html: str) -> dict[str, list[dict[str, Any]]]:
    """bokeh's serialized document in the page: its models by type name."""
    m = re.search(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', html, re.S)
    assert m, "no bokeh document in the page"
    out: dict[str, list[dict[str, Any]]] = {}

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            if o.get("type") == "object":
                out.setdefault(o["name"], []).append(o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(json.loads(m.group(1)))
    return out


def _columns(models: dict[str, list[dict[str, Any]]], name: str) -> list[str]:
    """One column of every scatter's data, concatenated."""
    values: list[str] = []
    for cds in models["ColumnDataSource"]:
        values += dict(cds["attributes"]["data"]["entries"])[name]
    return values


def _legend(models: dict[str, list[dict[str, Any]]]) -> tuple[str, list[str]]:
    (legend,) = models["Legend"]
    return legend["attributes"]["title"], [item["attributes"]["label"]["value"]
                                           for item in legend["attributes"]["items"]]


def _tooltip_names(models: dict[str, list[dict[str, Any]]]) -> list[str]:
    (hover,) = models["HoverTool"]
    return [name for name, _ in hover["attributes"]["tooltips"]]


# --- input checks (no bokeh needed: they come first) ------------------------------------------

@pytest.mark.parametrize("z,match", [
    (np.zeros((5, 3)), r"\(n, 2\).*\(5, 3\)"),
    (np.zeros(10), r"\(n, 2\).*\(10,\)"),
    (np.zeros((0, 2)), "non-empty"),
    (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, np.nan]]), r"2 rows contain NaN or inf \(first: row 1\)"),
    (np.array([[0.0, -np.inf]]), r"1 rows contain NaN or inf \(first: row 0\)"),
    (np.array([["a", "b"]]), "expected numbers, got dtype <U1"),
])
def test_bad_latents_are_refused(tmp_path, z, match):
    with pytest.raises(ValueError, match=match):
        write_map_html(tmp_path / "map.html", z)
    assert not (tmp_path / "map.html").exists()


def test_lengths_and_names_are_checked(tmp_path):
    z, path = _grid(), tmp_path / "map.html"
    with pytest.raises(ValueError, match=r"row_ids: expected 24 values.*\(23,\)"):
        write_map_html(path, z, row_ids=IDS[:-1])
    with pytest.raises(ValueError, match=r"groups\['cluster'\]: expected 24 values.*\(25,\)"):
        write_map_html(path, z, groups={"population": GROUPS["population"], "cluster": range(25)})
    with pytest.raises(ValueError, match=r"color_by='pop' is not a column of groups \['population'"):
        write_map_html(path, z, groups=GROUPS, color_by="pop")
    with pytest.raises(ValueError, match=r"color_by='label' is not a column of groups \[\]"):
        write_map_html(path, z, color_by="label")
    n = MAX_LEGEND_ENTRIES + 1
    with pytest.raises(ValueError, match=f"color_by='id' has {n} distinct values"):
        write_map_html(path, _grid(n), groups={"id": range(n)})
    assert not path.exists()


def test_without_bokeh_a_clear_error_and_the_callers_note(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "bokeh.embed", None)  # import bokeh.embed now fails
    with pytest.raises(ImportError, match=r"need bokeh \(not installed\): pip install 'ddvi\[maps\]'") as err:
        write_map_html(tmp_path / "map.html", _grid())
    assert isinstance(err.value, MapsExtraMissing)
    assert try_write_map_html(tmp_path / "map.html", _grid()) is None
    note = capsys.readouterr().err
    assert note.count("\n") == 1 and note.startswith("ddvi: skipped map.html: ") and "ddvi[maps]" in note
    assert not (tmp_path / "map.html").exists()


# --- the HTML ---------------------------------------------------------------------------------

needs_bokeh = pytest.mark.skipif(importlib.util.find_spec("bokeh") is None,
                                 reason="the maps extra (bokeh) is not installed")


class _External(HTMLParser):
    """Every <script src>, <link href> and <img src> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v or "" for k, v in attrs if (tag, k) in {("script", "src"), ("link", "href"),
                                                               ("img", "src")}]


@pytest.fixture(scope="module")
def page_html(tmp_path_factory) -> tuple[Path, str]:
    pytest.importorskip("bokeh", reason="the maps extra (bokeh) is not installed")
    path = write_map_html(tmp_path_factory.mktemp("map") / "out" / "map.html", _grid(), row_ids=IDS,
                          groups=GROUPS, title="tiny <test> map")
    return path, path.read_text(encoding="utf-8")


def test_the_page_is_self_contained_and_holds_every_row(page_html):
    path, html = page_html
    assert path.name == "map.html" and path.parent.name == "out"
    parser = _External()
    parser.feed(html)
    assert parser.refs == []  # no script, stylesheet or image is fetched: bokeh is inlined
    assert len(html) > 500_000 and "<title>tiny &lt;test&gt; map</title>" in html
    models = _models(html)
    assert sorted(_columns(models, "row_id")) == IDS
    assert all(json.dumps(i) in html for i in IDS)
    assert [f["attributes"]["output_backend"] for f in models["Figure"]] == ["webgl"]


def test_hover_columns_and_legend(page_html):
    models = _models(page_html[1])
    assert _tooltip_names(models) == ["id", "population", "super_population", "cluster"]
    assert _legend(models) == ("population", ["p0", "p1", "p2", "p3"])  # color_by: the first group
    assert models["Legend"][0]["attributes"]["click_policy"] == "hide"
    rows = dict(zip(_columns(models, "row_id"), zip(*(_columns(models, f"g{k}") for k in range(3)))))
    assert rows["sample-006"] == ("p2", "EUR", "0") and rows["sample-013"] == ("p1", "AFR", "1")


@needs_bokeh
def test_color_by_default_ids_and_no_legend(tmp_path):
    path = write_map_html(tmp_path / "m.html", _grid(), groups={"cluster": [10, 2, 2, 9] * 6},
                          color_by="cluster")
    models = _models(path.read_text())
    assert _legend(models) == ("cluster", ["2", "9", "10"])  # numbers in numeric order
    assert sorted(_columns(models, "row_id"), key=int) == [str(i) for i in range(N)]
    models = _models(write_map_html(tmp_path / "bare.html", _grid()).read_text())
    assert "Legend" not in models and _tooltip_names(models) == ["id"]
    assert len(models["GlyphRenderer"]) == 1 and len(_columns(models, "row_id")) == N


@needs_bokeh
def test_many_groups_get_distinct_colours_and_legend_columns(tmp_path):
    models = _models(write_map_html(tmp_path / "m.html", _grid(61), groups={"g": range(61)}).read_text())
    colours = [r["attributes"]["glyph"]["attributes"]["fill_color"]["value"]
               for r in models["GlyphRenderer"]]
    assert len(set(colours)) == 61 and models["Legend"][0]["attributes"]["ncols"] == 3
    mixed = write_map_html(tmp_path / "m.html", _grid(), groups={"g": [None, "b", 3] * 8})
    models = _models(mixed.read_text())
    assert _legend(models) == ("g", ["3", "None", "b"])  # mixed types: sorted as text


@needs_bokeh
def test_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "map.html"
    path.write_text("old")
    write_map_html(path, _grid())
    assert path.read_text().startswith("<!DOCTYPE html>")
    path.write_text("old")

    def fail(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("ddvi.interactive.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_map_html(path, _grid())
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["map.html"]


# --- the hooks: image runs and genotype runs --------------------------------------------------

@pytest.fixture(scope="module")
def image_run() -> tuple[Any, np.ndarray, np.ndarray]:
    """A tiny clustering model of 48 random 4x4 'images', with class labels."""
    from ddvi import ClusteringDDVI

    rng = np.random.default_rng(0)
    x, y = rng.random((48, 16)).astype(np.float32), rng.integers(0, 3, 48)
    model = ClusteringDDVI(method="aevb", prior="gaussian", hidden=(8,), epochs=1, n_clusters=3,
                           verbose=False, batch_size=16).fit(x)
    return model, x, y


@needs_bokeh
def test_image_run_figures_include_the_map(tmp_path, image_run):
    from ddvi.report import write_figures

    model, x, y = image_run
    paths = write_figures(model, tmp_path, x, y, max_points=40)
    assert tmp_path / "map.html" in paths and (tmp_path / "latents.png") in paths
    models = _models((tmp_path / "map.html").read_text())
    assert _tooltip_names(models) == ["id", "label", "cluster"]
    assert _legend(models) == ("label", ["0", "1", "2"])
    rows = dict(zip(_columns(models, "row_id"), zip(_columns(models, "g0"), _columns(models, "g1"))))
    assert rows == {str(i): (str(y[i]), str(c)) for i, c in enumerate(model.predict(x[:40]))}


def test_image_run_without_bokeh_skips_the_map_with_a_note(tmp_path, image_run, capsys, monkeypatch):
    from ddvi.report import write_figures

    monkeypatch.setitem(sys.modules, "bokeh.embed", None)
    paths = write_figures(image_run[0], tmp_path, image_run[1], None)
    assert (tmp_path / "latents.png") in paths and not (tmp_path / "map.html").exists()
    assert capsys.readouterr().err.startswith("ddvi: skipped map.html: ")


@needs_bokeh
def test_genotype_run_writes_the_map_beside_map_png(tmp_path, monkeypatch):
    from ddvi.data.genotypes import ArraySource
    from ddvi.tasks.ancestry import fit_ancestry, prepare_genotypes

    monkeypatch.setattr("ddvi.tasks.ancestry.score_map", lambda *args, **kwargs: {})  # GMM-20: slow
    n = 40
    rng = np.random.default_rng(1)
    ids = [f"HG{i:05d}" for i in range(n)]
    pops = np.array(["YRI", "CEU", "CHB", "GBR"])[np.arange(n) % 4]
    supers = {"YRI": "AFR", "CEU": "EUR", "CHB": "EAS", "GBR": "EUR"}
    labels = tmp_path / "labels.tsv"
    labels.write_text("sample\tpop\tsuper_pop\n" + "".join(f"{s}\t{p}\t{supers[p]}\n"
                                                           for s, p in zip(ids, pops)))
    data = prepare_genotypes(ArraySource(rng.integers(0, 3, (n, 200)), ids), labels, n_components=5)
    out = tmp_path / "run"
    fit_ancestry(data, out, epochs=1, baselines=(), hidden=(8,), n_clusters=3, verbose=False,
                 batch_size=16)
    assert (out / "map.png").exists()
    html = (out / "map.html").read_text()
    models = _models(html)
    assert _tooltip_names(models) == ["id", "population", "super_population", "cluster"]
    assert _legend(models) == ("population", ["CEU", "CHB", "GBR", "YRI"])
    assert sorted(_columns(models, "row_id")) == ids
    rows = dict(zip(_columns(models, "row_id"), zip(_columns(models, "g0"), _columns(models, "g1"))))
    assert rows == {s: (p, supers[p]) for s, p in zip(ids, pops)}


# --- in a real headless browser ----------------------------------------------------------------

JS_LEGEND = """() => {
  const legend = [...Bokeh.documents[0].all_models].find(m => m.type === 'Legend');
  const view = Object.values(Bokeh.index)[0].owner.find_one(legend);
  return {title: legend.title, labels: legend.items.map(i => i.label.value),
          visible: legend.items.map(i => i.renderers[0].visible),
          centers: [...view.grid_el.children].map(e => {
            const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })};
}"""
JS_POINTS = """() => {
  const renderers = [...Bokeh.documents[0].all_models].filter(m => m.type === 'GlyphRenderer');
  return {n: renderers.reduce((s, r) => s + r.data_source.get_length(), 0),
          ids: renderers.flatMap(r => [...r.data_source.data.row_id])};
}"""
JS_SCREEN = """([x, y]) => {
  const view = Object.values(Bokeh.index)[0];
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.x + view.frame.x_scale.compute(x), box.y + view.frame.y_scale.compute(y)];
}"""
JS_TOOLTIP_TEXT = """() => {
  const texts = [];
  const walk = root => { for (const e of root.querySelectorAll('*')) {
    if (e.shadowRoot) walk(e.shadowRoot);
    if (/tooltip/i.test(String(e.className)) && e.innerText) texts.push(e.innerText); } };
  walk(document);
  return texts.join('\\n');
}"""


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return exe


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium driven by playwright (the system's Chromium: playwright downloads none)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    exe = _chromium()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@contextmanager
def _open(browser: Any, path: Path) -> Iterator[tuple[Any, list[str], list[str]]]:
    """``path`` in a new page: (page, console errors, requests that left the disk)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    external: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r: Any) -> None:
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())  # returns after the load event: every inline script has run
    assert page.evaluate("() => typeof window.Bokeh") == "object", f"no bokeh: {errors} {external}"
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && "
                           "Bokeh.documents[0].is_idle", timeout=60_000)
    yield page, errors, external
    page.close()


@pytest.fixture(scope="module")
def browser_page(chromium, page_html):
    with _open(chromium, page_html[0]) as opened:
        yield opened


def test_browser_loads_offline_with_every_point_and_legend_entry(browser_page):
    page, errors, external = browser_page
    assert errors == [] and external == []
    points = page.evaluate(JS_POINTS)
    assert points["n"] == N and sorted(points["ids"]) == IDS
    legend = page.evaluate(JS_LEGEND)
    assert legend["title"] == "population" and legend["labels"] == ["p0", "p1", "p2", "p3"]
    assert len(legend["centers"]) == 4


def test_browser_legend_click_toggles_its_group(browser_page):
    page, errors, _ = browser_page
    x, y = page.evaluate(JS_LEGEND)["centers"][2]
    page.mouse.click(x, y)
    assert page.evaluate(JS_LEGEND)["visible"] == [True, True, False, True]
    page.mouse.click(x, y)
    assert page.evaluate(JS_LEGEND)["visible"] == [True, True, True, True]
    assert errors == []


def test_browser_hover_shows_the_id_and_every_group(browser_page):
    page, errors, _ = browser_page
    i = 14  # population p2, super-population EUR, cluster 2
    x, y = page.evaluate(JS_SCREEN, _grid()[i].tolist())
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y)
    page.wait_for_function(f"() => ({JS_TOOLTIP_TEXT})().includes('{IDS[i]}')", timeout=10_000)
    text = page.evaluate(JS_TOOLTIP_TEXT)
    for name, value in [("id", IDS[i]), ("population", "p2"), ("super_population", "EUR"),
                        ("cluster", "2")]:
        assert re.search(rf"{name}:\s*{value}\b", text), (name, text)
    assert IDS[i + 1] not in text and errors == []


@pytest.mark.slow
@needs_bokeh
def test_browser_60000_points(chromium, tmp_path):
    rng = np.random.default_rng(0)
    n = 60_000
    path = write_map_html(tmp_path / "big.html", rng.normal(size=(n, 2)),
                          groups={"population": rng.integers(0, 26, n), "cluster": rng.integers(0, 20, n)})
    with _open(chromium, path) as (page, errors, external):
        assert page.evaluate(JS_POINTS)["n"] == n and errors == [] and external == []
        assert len(page.evaluate(JS_LEGEND)["labels"]) == 26
