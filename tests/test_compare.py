"""The comparison grid: aggregation, the Markdown table, caching and resume."""

import json

import pytest

from ddvi.bench import compare as cmp


def fake(method, prior, seed, elbo):
    return {"method": method, "prior": prior, "seed": seed, "elbo": elbo,
            "elbo_per_pixel_rec": None if elbo is None else elbo / 10, "mmd": 1.0,
            "latent_nll": 2.0}


def test_aggregate_and_markdown():
    results = [fake("ddvi", "pinwheel", s, e) for s, e in [(0, -100.0), (1, -102.0), (2, -104.0)]]
    results += [fake("aaeb", "pinwheel", 0, None)]
    table = cmp.aggregate(results)
    cell = table["elbo"]["ddvi"]["pinwheel"]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(-102.0)
    assert cell["ci"] == pytest.approx(2.0 / 3**0.5 * 4.302652729749462)
    assert table["elbo"]["aaeb"]["pinwheel"]["mean"] is None
    md = cmp.to_markdown(table, ["ddvi", "aaeb"], ["pinwheel"], "## t")
    assert "| ddvi | -102.00 ± 4.97 |" in md and "| ddvi | -10.20 ± 0.50 (paper: -3.88 ± 0.96) |" in md
    assert "| aaeb | N/A" in md


def test_compare_runs_caches_and_resumes(tmp_path, monkeypatch):
    args = dict(methods=["aevb"], priors=["square"], seeds=[0, 1], epochs=1, out=tmp_path,
                n_train=256, mmd_samples=100, verbose=False)
    first = cmp.compare(**args)
    assert len(first["fits"]) == 2 and (tmp_path / "table1.md").exists()
    saved = json.loads((tmp_path / "table1.json").read_text())
    assert saved["table"]["elbo"]["aevb"]["square"]["n"] == 2

    def fail(*a, **k):
        raise AssertionError("cached fit was recomputed")

    monkeypatch.setattr("ddvi.estimator.DDVI.fit", fail)
    again = cmp.compare(**args)
    assert [f["elbo"] for f in again["fits"]] == [f["elbo"] for f in first["fits"]]


def test_table2_layout_semi_supervised(tmp_path):
    res = cmp.compare(["aevb"], ["square"], [0], epochs=1, out=tmp_path, n_train=256,
                      mmd_samples=100, verbose=False, n_labels=50)
    assert res["layout"] == "table2" and (tmp_path / "table2.md").exists()
    fit = res["fits"][0]
    assert 0 <= fit["accuracy"] <= 1 and fit["spec"]["n_labels"] == 50
    assert "kNN-20 accuracy" in res["markdown"] and "(paper: 0.86 ± 0.01)" in res["markdown"]
