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

    monkeypatch.setattr("ddvi.estimators.base.BaseDDVI._fit_with", fail)
    again = cmp.compare(**args)
    assert [f["elbo"] for f in again["fits"]] == [f["elbo"] for f in first["fits"]]


def test_table2_layout_semi_supervised(tmp_path):
    res = cmp.compare(["aevb"], ["square"], [0], epochs=1, out=tmp_path, n_train=256,
                      mmd_samples=100, verbose=False, n_labels=50)
    assert res["layout"] == "table2" and (tmp_path / "table2.md").exists()
    fit = res["fits"][0]
    assert 0 <= fit["accuracy"] <= 1 and fit["spec"]["n_labels"] == 50
    assert "kNN-20 accuracy" in res["markdown"] and "(paper: 0.86 ± 0.01)" in res["markdown"]


def fake_fit(config):
    """A stand-in for the image fit task (no training), with every metric and protocol."""
    return {"method": config["method"], "prior": config["prior"], "elbo": -100.0 - config["seed"],
            "elbo_protocol": "ELBO-PROTOCOL", "elbo_per_pixel_rec": -5.0, "mmd": 1.0,
            "latent_nll": 1.0, "latent_nll_protocol": "NLL-PROTOCOL", "latent_nll_floor": -1.0,
            "train_seconds": 2.0, "points": {"z": [[0.0, 0.0]]}}


def test_compare_is_an_ad_hoc_table_of_the_bench_engine(tmp_path, monkeypatch):
    """`ddvi compare` runs the bench's grid runner and task: one runner cache folder per fit
    (keyed by its config), the bench's formatting, and tableN.json in compare's own shape."""
    from ddvi.bench.runner import config_key

    seen = []

    def task(config):
        seen.append(config)
        return fake_fit(config)

    monkeypatch.setattr("ddvi.bench.tasks.run_task", task)
    monkeypatch.setattr("ddvi.bench.tasks.check_inputs", lambda configs: None)
    res = cmp.compare(["aevb", "ddvi"], ["pinwheel", "square"], [0, 1], epochs=3, out=tmp_path,
                      n_train=100, verbose=False, options={"ddvi": {"sleep": "latent"}})
    assert len(seen) == 8 and {c["task"] for c in seen} == {"image"}
    assert all(c["options"] == ({"sleep": "latent"} if c["method"] == "ddvi" else {}) for c in seen)
    for config in seen:
        assert (tmp_path / "fits" / config_key(config) / "result.json").exists()
    md = (tmp_path / "table1.md").read_text()
    assert md == res["markdown"] and not (tmp_path / "table1.png").exists()
    assert "## table1: mnist, unsupervised (Table 1 layout, ddvi compare)" in md
    assert "Settings: mnist, 100 training / all test images, 3 epochs, MMD on 2000 samples; " \
           "seeds [0, 1]" in md
    assert "- ELBO (lower bound, nats per example): ELBO-PROTOCOL." in md
    assert f"- {cmp.TITLES['latent_nll']}: NLL-PROTOCOL." in md
    assert "| aevb | -100.50 ± 6.35 | -100.50 ± 6.35 |" in md
    assert "| ddvi | 1.00 ± 0.00 (paper: 1.27 ± 0.21) | 1.00 ± 0.00 (paper: 1.56 ± 0.09) |" in md
    assert "| floor: prior vs itself | -1.00 ± 0.00 (reference floor, 10 000 latents: -1.31)" in md
    saved = json.loads((tmp_path / "table1.json").read_text())
    assert set(saved) == {"table", "fits"} and saved["table"] == json.loads(json.dumps(res["table"]))
    fit = saved["fits"][0]
    assert fit["elbo"] == -100.0 and fit["seed"] == 0 and "points" not in fit
    assert fit["spec"]["method"] == "aevb" and fit["spec"]["n_train"] == 100
    assert res["fits"] == saved["fits"]


def test_compare_passes_the_device_and_threads_to_its_fits(tmp_path, monkeypatch):
    import os

    from ddvi.bench import tasks

    seen = []

    def task(config):
        seen.append((tasks._device(), os.environ.get("DDVI_BENCH_THREADS")))
        return fake_fit(config)

    monkeypatch.delenv("DDVI_BENCH_DEVICE", raising=False)
    monkeypatch.delenv("DDVI_BENCH_THREADS", raising=False)
    monkeypatch.setattr("ddvi.bench.tasks.run_task", task)
    monkeypatch.setattr("ddvi.bench.tasks.check_inputs", lambda configs: None)
    cmp.compare(["aevb"], ["square"], [0], epochs=1, out=tmp_path, verbose=False, device="cpu")
    assert seen == [("cpu", "auto")]  # in process: the estimator's own thread choice, as before
    assert "DDVI_BENCH_DEVICE" not in os.environ and "DDVI_BENCH_THREADS" not in os.environ
    with pytest.raises(ValueError, match="unknown device"):
        cmp.compare(["aevb"], ["square"], [1], epochs=1, out=tmp_path, verbose=False, device="gpu0")


def test_compare_command_prints_the_table_and_names_its_files(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ddvi.cli import app

    monkeypatch.setattr("ddvi.bench.tasks.run_task", fake_fit)
    monkeypatch.setattr("ddvi.bench.tasks.check_inputs", lambda configs: None)
    result = CliRunner().invoke(app, ["compare", "--methods", "aevb", "--priors", "square",
                                      "--seeds", "0", "--epochs", "1", "--n-labels", "10",
                                      "--device", "cpu", "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert "## table2: mnist, semi-supervised (Table 2 layout, ddvi compare)" in result.output
    assert "10 class-balanced labels" in result.output and "### kNN-20 accuracy" in result.output
    assert f"wrote {tmp_path / 'table2.md'} and {tmp_path / 'table2.json'}" in result.output
    (fit,) = json.loads((tmp_path / "table2.json").read_text())["fits"]
    assert fit["spec"]["n_labels"] == 10 and fit["spec"]["epochs"] == 1
    bad = CliRunner().invoke(app, ["compare", "--methods", "aevb,vae", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown methods ['vae']" in bad.output
