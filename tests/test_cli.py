"""The ddvi command end to end on (a small subset of) real MNIST."""

import json

import pytest
from typer.testing import CliRunner

from ddvi.cli import app, main

runner = CliRunner()


@pytest.mark.parametrize("command", ["fit", "evaluate", "plot"])
def test_help_has_examples(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_fit_evaluate_plot(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["fit", "--method", "ddvi", "--sleep", "latent", "--epochs", "1",
                                 "--n-train", "512", "--out", str(run), "--quiet",
                                 "--mmd-samples", "200"])
    assert result.exit_code == 0, result.output
    for name in ["metrics.json", "history.csv", "latents.png", "samples.png", "history.png",
                 "model/model.safetensors", "model/config.json", "checkpoint.safetensors"]:
        assert (run / name).exists(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m["elbo"] < 0 and "nats per example" in m["elbo_protocol"]
    assert {"mmd", "latent_nll", "knn_accuracy", "elbo_per_pixel_rec"} <= set(m)
    result = runner.invoke(app, ["evaluate", str(run), "--mmd-samples", "200", "--no-knn"])
    assert result.exit_code == 0, result.output
    assert "knn_accuracy" not in json.loads((run / "metrics.json").read_text())
    (run / "latents.png").unlink()
    result = runner.invoke(app, ["plot", str(run)])
    assert result.exit_code == 0 and (run / "latents.png").exists()


def test_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["ddvi", "evaluate", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == 2 and "does not exist" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["ddvi", "fit", "--prior", "banana", "--n-train", "64",
                                     "--epochs", "1", "-q", "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == 2 and "banana" in capsys.readouterr().err


@pytest.mark.parametrize("extra,key", [(["--n-labels", "100", "--balanced", "--prior", "square"], "accuracy"),
                                       (["--n-clusters", "10"], "clusters_gmm")])
def test_fit_semi_supervised_and_clustering(tmp_path, extra, key):
    run = tmp_path / "run"
    result = runner.invoke(app, ["fit", "--method", "aevb", "--epochs", "1", "--n-train", "512",
                                 "--out", str(run), "-q", "--mmd-samples", "100", "--threads",
                                 "1", "--device", "cpu", *extra])
    assert result.exit_code == 0, result.output
    assert "steps/s on cpu with 1 CPU thread(s)" in result.output
    m = json.loads((run / "metrics.json").read_text())
    assert key in m


@pytest.mark.parametrize("threads", ["0", "-1", "lots", "100000"])
def test_bad_threads_are_refused(tmp_path, threads):
    result = runner.invoke(app, ["fit", "--threads", threads, "--epochs", "1", "--n-train", "64",
                                 "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "threads" in result.output
    assert not (tmp_path / "run").exists()


def test_semi_supervised_with_no_labels_is_refused(tmp_path):
    result = runner.invoke(app, ["fit", "--n-labels", "0", "--epochs", "1", "--n-train", "64",
                                 "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "keeps no labels" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["evaluate", "plot"])
def test_a_folder_that_is_not_a_run_is_named_as_such(tmp_path, monkeypatch, capsys, command):
    (tmp_path / "notes.txt").write_text("not a run")
    monkeypatch.setattr("sys.argv", ["ddvi", command, str(tmp_path)])
    with pytest.raises(SystemExit) as err:
        main()
    message = capsys.readouterr().err
    assert err.value.code == 2 and "is not a run folder (no model/" in message
    assert "safetensors does not exist" not in message


def test_resume_with_changed_options_is_refused_naming_the_option(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    base = ["ddvi", "fit", "--method", "aevb", "--n-train", "64", "--out", str(run), "-q",
            "--no-evaluate"]
    monkeypatch.setattr("sys.argv", [*base, "--epochs", "1"])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == 0
    config = (run / "model" / "config.json").read_text()
    for extra, said in [(["--prior", "square"], "--prior pinwheel, not square"),
                        (["--method", "ddvi"], "--method aevb, not ddvi"),
                        (["--n-train", "32"], "training data differ")]:
        monkeypatch.setattr("sys.argv", [*base, "--epochs", "2", "--resume", *extra])
        with pytest.raises(SystemExit) as err:
            main()
        message = capsys.readouterr().err
        assert err.value.code == 2 and said in message, message
    assert (run / "model" / "config.json").read_text() == config
    monkeypatch.setattr("sys.argv", [*base, "--epochs", "2", "--resume"])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == 0
    assert json.loads((run / "model" / "config.json").read_text())["params"]["epochs"] == 2


def test_fit_help_lists_what_may_change_on_resume():
    result = runner.invoke(app, ["fit", "--help"])
    assert "only --epochs" in " ".join(result.output.split())


@pytest.mark.parametrize("command", [["fit"], ["compare"], ["bench", "table1"]])
def test_device_the_machine_lacks_is_refused_before_any_work(command, tmp_path):
    import torch

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    result = runner.invoke(app, [*command, "--device", "cuda:7", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--device" in result.output
    assert "devices here: cpu" in result.output
    assert not (tmp_path / "r").exists()
    result = runner.invoke(app, [*command, "--device", "tpu", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.output
