"""`ddvi fit --data` and `ddvi embed` end to end on small matrices (CSV, .npy, .h5ad)."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ddvi import DDVI
from ddvi.cli import app, main

runner = CliRunner()
N, D = 200, 5
FAST = ["--epochs", "1", "--threads", "1", "-q", "--mmd-samples", "50"]


def matrix(seed=0):
    rng = np.random.default_rng(seed)
    types = np.array(["T", "B", "NK", "Mono"])[rng.integers(0, 4, N)]
    X = rng.normal(size=(N, D)) * [1, 2, 3, 4, 5] + [0, 10, 0, -5, 100]
    return X.astype(np.float32), types


def write_csv(path, X, types, names=None):
    names = names or [f"g{j + 1}" for j in range(D)]
    lines = [",".join(["cell", *names, "type"])]
    lines += [",".join([f"c{i}", *(repr(float(v)) for v in X[i]), types[i]]) for i in range(N)]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def fit(*args):
    result = runner.invoke(app, ["fit", *FAST, *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """A labelled CSV and a standardized DDVI fit of it."""
    root = tmp_path_factory.mktemp("cells")
    X, types = matrix()
    path = write_csv(root / "cells.csv", X, types)
    run = root / "run"
    output = fit("--data", path, "--label-column", "type", "--standardize", "--out", run)
    return path, run, X, types, output


def test_help_has_csv_and_h5ad_examples():
    for command in ("fit", "embed"):
        result = runner.invoke(app, [command, "--help"])
        text = " ".join(result.output.split())
        assert result.exit_code == 0 and "Examples" in text
        assert ".csv" in text and ".h5ad" in text and "--label-column" in text


def test_labelled_csv_fit_writes_map_latents_and_metrics(cells):
    path, run, X, types, output = cells
    assert "likelihood: gaussian (--standardize makes the features real-valued)" in output
    assert "200 rows x 5 features, row ids from column 'cell', labels from column 'type'" in output
    for name in ["model/model.safetensors", "latent.tsv", "metrics.json", "map.png", "history.png"]:
        assert (run / name).exists(), name
    assert not (run / "samples.png").exists() and not (run / "latents.png").exists()
    rows = read_tsv(run / "latent.tsv")
    assert rows[0] == ["row_id", "z1", "z2", "label", "split"] and len(rows) == N + 1
    assert [r[0] for r in rows[1:]] == [f"c{i}" for i in range(N)]
    assert [r[3] for r in rows[1:]] == types.tolist()
    assert [r[4] for r in rows[1:]].count("test") == 20
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_test"] == m["n_held_out"] == 20 and m["n_train"] == 180
    assert m["evaluated_on"] == "the held-out test rows"
    assert m["label_codes"] == {"B": 0, "Mono": 1, "NK": 2, "T": 3}
    assert isinstance(m["knn_accuracy"], float) and m["likelihood"] == "gaussian"
    assert m["standardize"] is True and "standardized as the model does" in m["mmd_protocol"]


def test_loaded_model_reproduces_latent_tsv(cells):
    path, run, X, _, _ = cells
    model = DDVI.load(run / "model")
    assert model.standardize and model.options_.feature_names == [f"g{j + 1}" for j in range(D)]
    rows = read_tsv(run / "latent.tsv")[1:]
    train = np.array([r[4] == "train" for r in rows])
    assert np.allclose(model.options_.feature_mean, X[train].mean(0), rtol=1e-5)  # training rows
    assert not np.allclose(model.options_.feature_mean, X.mean(0), rtol=1e-5)
    z = np.array([r[1:3] for r in rows], dtype=np.float32)
    assert np.array_equal(model.transform(X), z)


def test_embed_reproduces_latent_tsv_and_checks_feature_names(cells, tmp_path, monkeypatch, capsys):
    path, run, X, types, _ = cells
    out = tmp_path / "new" / "latent.tsv"
    result = runner.invoke(app, ["embed", "--model", str(run / "model"), "--data", str(path),
                                 "--label-column", "type", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [r[:4] for r in read_tsv(run / "latent.tsv")] == read_tsv(out)
    swapped = write_csv(tmp_path / "swapped.csv", X[:, [0, 2, 1, 3, 4]], types,
                        ["g1", "g3", "g2", "g4", "g5"])
    monkeypatch.setattr("sys.argv", ["ddvi", "embed", "--model", str(run / "model"), "--data",
                                     str(swapped), "--label-column", "type", "--out",
                                     str(tmp_path / "bad.tsv")])
    with pytest.raises(SystemExit) as err:
        main()
    message = capsys.readouterr().err
    assert err.value.code == 2 and str(swapped) in message
    assert "column 2 is 'g3' here, 'g2' in the model" in message
    assert not (tmp_path / "bad.tsv").exists()


def test_same_seed_same_map(tmp_path):
    path = write_csv(tmp_path / "cells.csv", *matrix())
    runs = []
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        fit("--data", path, "--label-column", "type", "--method", "aevb", "--no-evaluate",
            "--seed", seed, "--out", tmp_path / name)
        runs.append(read_tsv(tmp_path / name / "latent.tsv"))
    assert runs[0] == runs[1]
    assert [r[4] for r in runs[0]] != [r[4] for r in runs[2]]  # another seed, another split


def test_binary_npy_picks_bernoulli_and_test_fraction_zero_says_so(tmp_path):
    X = (np.random.default_rng(0).random((60, 8)) > 0.5).astype(np.float32)
    np.save(tmp_path / "bits.npy", X)
    output = fit("--data", tmp_path / "bits.npy", "--method", "aevb", "--test-fraction", "0",
                 "--out", tmp_path / "run")
    assert "likelihood: bernoulli (every value is 0 or 1)" in output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["evaluated_on"].startswith("the training rows") and m["n_test"] == 60
    assert m["n_held_out"] == 0
    assert m["knn_accuracy"] is None and "label_codes" not in m
    rows = read_tsv(tmp_path / "run" / "latent.tsv")
    assert rows[0] == ["row_id", "z1", "z2", "split"] and {r[3] for r in rows[1:]} == {"train"}


def test_semi_supervised_h5ad_fit_and_embed(tmp_path):
    anndata = pytest.importorskip("anndata")
    import pandas as pd
    import scipy.sparse

    X, types = matrix()
    X = np.abs(X).round()  # counts
    obs = pd.DataFrame({"cell_type": pd.Categorical(types)}, index=[f"AAC{i}" for i in range(N)])
    anndata.AnnData(X=scipy.sparse.csr_matrix(X), obs=obs,
                    var=pd.DataFrame(index=[f"gene{j}" for j in range(D)])).write_h5ad(
        tmp_path / "pbmc.h5ad")
    output = fit("--data", tmp_path / "pbmc.h5ad", "--label-column", "cell_type", "--n-labels",
                 "40", "--method", "aevb", "--out", tmp_path / "run")
    assert "row ids from obs_names, labels from obs column 'cell_type'" in output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert isinstance(m["accuracy"], float) and m["n_labels"] == 40
    result = runner.invoke(app, ["embed", "--model", str(tmp_path / "run" / "model"), "--data",
                                 str(tmp_path / "pbmc.h5ad"), "-o", str(tmp_path / "new.tsv")])
    assert result.exit_code == 0, result.output
    fitted = read_tsv(tmp_path / "run" / "latent.tsv")
    assert [r[:3] for r in fitted] == read_tsv(tmp_path / "new.tsv")


@pytest.mark.parametrize("extra,said", [
    ([], "column 'type' is not numeric: line 2 holds"),
    (["--label-column", "kind"], "no column named 'kind' (--label-column)"),
    (["--label-column", "type", "--likelihood", "bernoulli", "--standardize"],
     "--standardize makes the features real-valued"),
    (["--label-column", "type", "--binarize"], "--binarize thresholds values in [0, 1]"),
    (["--label-column", "type", "--test-fraction", "1"], "--test-fraction must be in [0, 1)"),
    (["--label-column", "type", "--dataset", "mnist"], "--dataset do not apply with --data"),
    (["--label-column", "type", "--n-train", "10"], "--n-train do not apply with --data"),
    (["--label-column", "type", "--n-labels", "1000"], "n_labels=1000 exceeds the 180"),
])
def test_a_failed_fit_leaves_no_run_folder(tmp_path, monkeypatch, capsys, extra, said):
    path = write_csv(tmp_path / "cells.csv", *matrix())
    run = tmp_path / "run"
    monkeypatch.setattr("sys.argv", ["ddvi", "fit", "--data", str(path), "--out", str(run),
                                     *FAST, *extra])
    with pytest.raises(SystemExit) as err:
        main()
    message = " ".join(capsys.readouterr().err.split())
    assert err.value.code == 2 and said in message, message
    assert not run.exists()


@pytest.mark.parametrize("text,said", [("", "the file is empty"),
                                       ("a,b\n1,2\n3\n", "line 3 has 1 fields but the header has 2")])
def test_bad_files_are_named_and_leave_no_run_folder(tmp_path, monkeypatch, capsys, text, said):
    (tmp_path / "bad.csv").write_text(text)
    monkeypatch.setattr("sys.argv", ["ddvi", "fit", "--data", str(tmp_path / "bad.csv"), "--out",
                                     str(tmp_path / "run"), *FAST])
    with pytest.raises(SystemExit) as err:
        main()
    message = capsys.readouterr().err
    assert err.value.code == 2 and f"{tmp_path / 'bad.csv'}: {said}" in message, message
    assert not (tmp_path / "run").exists()


def test_image_fits_refuse_data_options(tmp_path):
    result = runner.invoke(app, ["fit", "--label-column", "type", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "apply only with --data" in result.output
    assert not (tmp_path / "r").exists()
