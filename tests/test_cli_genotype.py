"""`ddvi genotype fit` / `ddvi genotype embed` end to end on a tiny msprime cohort, and their errors."""

import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from ddvi.cli import app, main
from ddvi.data.cohorts import msprime_1kg, write_labels, write_vcf

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("geno")
    cohort = msprime_1kg(n_per_population=4, sequence_length=5e5, n_snps=300, seed=1)
    return cohort, write_vcf(cohort, d / "c.vcf"), write_labels(cohort, d / "c.labels.tsv")


def read_latent(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return rows[0], rows[1:]


def run_main(monkeypatch, capsys, args):
    monkeypatch.setattr("sys.argv", ["ddvi", *args])
    with pytest.raises(SystemExit) as err:
        main()
    return err.value.code, capsys.readouterr()


@pytest.mark.parametrize("command", ["fit", "embed"])
def test_help_has_examples(command):
    result = runner.invoke(app, ["genotype", command, "--help"])
    assert result.exit_code == 0 and "Examples" in result.output


def test_fit_then_embed(files, tmp_path):
    cohort, vcf, labels = files
    out = tmp_path / "run"
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(vcf), "--labels", str(labels),
                                 "--out", str(out), "--epochs", "1", "--baselines", "pca",
                                 "--n-components", "10", "-q"])
    assert result.exit_code == 0, result.output
    assert "QC:" not in result.output  # -q: no report
    score = r"DDVI: GMM-20 vs populations purity=[01]\.\d{3} completeness=[01]\.\d{3} NMI=[01]\.\d{3}"
    assert re.search(score, result.output)
    assert re.search(r"pca: GMM-20 vs populations purity=", result.output)
    assert f"output folder: {out}" in result.output
    for name in ("latent.tsv", "clusters.tsv", "metrics.json", "history.csv", "map.png", "comparison.png",
                 "model/pca.safetensors", "model/model.safetensors"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_features"] == 10 and m["n_samples"] == cohort.n_samples
    assert m["data"] == f"genotypes from {vcf}"
    header, rows = read_latent(out / "latent.tsv")
    assert [r[0] for r in rows] == cohort.sample_ids
    assert [r[4] for r in rows] == list(cohort.populations)

    new = tmp_path / "new"
    result = runner.invoke(app, ["genotype", "embed", "--model", str(out / "model"), "--vcf", str(vcf),
                                 "--out", str(new)])
    assert result.exit_code == 0, result.output
    assert f"placed {cohort.n_samples} samples" in result.output
    header2, rows2 = read_latent(new / "latent.tsv")
    assert header2 == header == ["sample_id", "z1", "z2", "cluster", "population", "super_population"]
    assert [r[0] for r in rows2] == cohort.sample_ids
    z = np.array([[float(r[1]), float(r[2])] for r in rows])
    z2 = np.array([[float(r[1]), float(r[2])] for r in rows2])
    assert np.allclose(z, z2, atol=1e-4, rtol=1e-5)
    assert [r[3] for r in rows2] == [r[3] for r in rows]
    assert all(r[4] == "NA" and r[5] == "NA" for r in rows2)  # no --labels

    result = runner.invoke(app, ["genotype", "embed", "--model", str(out / "model"), "--vcf", str(vcf),
                                 "--labels", str(labels), "--out", str(new)])
    assert result.exit_code == 0, result.output
    _, rows3 = read_latent(new / "latent.tsv")
    assert [r[5] for r in rows3] == list(cohort.super_populations)


def test_vcf_and_cohort_together_is_a_usage_error(files, tmp_path):
    _, vcf, _ = files
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(vcf), "--cohort", "msprime-1kg",
                                 "--out", str(tmp_path / "x"), "-q"])
    assert result.exit_code == 2
    assert "exactly one of --vcf, --bfile, --cohort" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["genotype", "fit", "--out", str(tmp_path / "x"), "-q"])
    assert result.exit_code == 2 and "exactly one of" in result.output
    result = runner.invoke(app, ["genotype", "embed", "--model", str(tmp_path), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "exactly one of --vcf, --bfile" in result.output


def test_missing_label_exits_2_naming_the_sample(files, tmp_path, monkeypatch, capsys):
    cohort, vcf, labels = files
    gone = cohort.sample_ids[5]
    partial = tmp_path / "partial.tsv"
    partial.write_text("".join(line + "\n" for line in labels.read_text().splitlines()
                               if not line.startswith(gone + "\t")))
    code, cap = run_main(monkeypatch, capsys, ["genotype", "fit", "--vcf", str(vcf), "--labels", str(partial),
                                               "--out", str(tmp_path / "r"), "--epochs", "1", "-q"])
    assert code == 2
    assert gone in cap.err and "no label" in cap.err and "error:" in cap.err
    assert not (tmp_path / "r" / "latent.tsv").exists()


def test_missing_vcf_exits_2(tmp_path, monkeypatch, capsys):
    code, cap = run_main(monkeypatch, capsys, ["genotype", "fit", "--vcf", str(tmp_path / "nope.vcf"),
                                               "--out", str(tmp_path / "r"), "-q"])
    assert code == 2 and "nope.vcf" in cap.err and "does not exist" in cap.err


def test_multiallelic_site_is_reported(files, tmp_path, monkeypatch):
    """The QC report (printed without -q, before the fit) counts the multi-allelic record."""
    cohort, vcf, labels = files
    lines = vcf.read_text().splitlines()
    data = [i for i, line in enumerate(lines) if not line.startswith("#")]
    for i in data[10:12]:  # two records become A -> G,T
        cols = lines[i].split("\t")
        cols[4] = "G,T"
        lines[i] = "\t".join(cols)
    multi = tmp_path / "multi.vcf"
    multi.write_text("\n".join(lines) + "\n")
    seen = {}

    def fake_fit(data, out, **kw):  # the report is what we check; skip the (tested) fit
        seen["data"], seen["kw"] = data, kw
        return {"scores": {}}

    monkeypatch.setattr("ddvi.tasks.ancestry.fit_ancestry", fake_fit)
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(multi), "--labels", str(labels),
                                 "--out", str(tmp_path / "r"), "--n-components", "5", "--baselines", "",
                                 "--clusters", "7", "--epochs", "3", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert re.search(r"dropped multi-allelic sites:\s+2\n", result.output), result.output
    assert f"QC: {cohort.n_samples} samples, 300 variants read" in result.output
    assert f"genotypes from {multi}" in result.output
    assert seen["data"].features.shape == (cohort.n_samples, 5)
    assert seen["kw"].pop("threads") >= 1  # --threads auto: the cores other processes leave free
    assert seen["kw"] == {"method": "ddvi", "n_clusters": 7, "epochs": 3, "seed": 4, "baselines": [],
                          "verbose": True, "device": "auto"}


def test_vcf_line_with_extra_genotype_columns_exits_2(files, tmp_path, monkeypatch, capsys):
    """htslib drops genotype columns beyond the header's samples; the fit must stop, writing nothing."""
    _, vcf, labels = files
    lines = vcf.read_text().splitlines()
    i = [k for k, line in enumerate(lines) if not line.startswith("#")][7]
    lines[i] += "\t0|1"
    bad = tmp_path / "extra.vcf"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r"
    code, cap = run_main(monkeypatch, capsys, ["genotype", "fit", "--vcf", str(bad), "--labels", str(labels),
                                               "--out", str(out), "--epochs", "1", "--baselines", "", "-q"])
    assert code == 2, cap
    assert "extra.vcf" in cap.err and f"line {i + 1}" in cap.err and "data record 8" in cap.err
    assert not (out / "latent.tsv").exists() and not (out / "metrics.json").exists()


def test_held_out_samples_are_projected_like_embed_and_scored(files, tmp_path):
    cohort, vcf, labels = files
    out = tmp_path / "held"
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(vcf), "--labels", str(labels),
                                 "--out", str(out), "--epochs", "1", "--baselines", "",
                                 "--n-components", "10", "--held-out", "0.25", "--threads", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert re.search(r"DDVI, held out: GMM-20 vs populations purity=[01]\.\d{3}", result.output)
    m = json.loads((out / "metrics.json").read_text())
    _, fit_rows = read_latent(out / "latent.tsv")
    _, held_rows = read_latent(out / "held_out_latent.tsv")
    fit_ids, held_ids = [r[0] for r in fit_rows], [r[0] for r in held_rows]
    assert not set(fit_ids) & set(held_ids)
    assert sorted(fit_ids + held_ids) == sorted(cohort.sample_ids)
    assert len(held_ids) == m["held_out"]["n_samples"] == int(np.ceil(0.25 * cohort.n_samples))
    assert m["n_samples"] == len(fit_ids)
    assert np.isfinite(m["held_out"]["elbo"]) and "held_out" in m["protocols"]
    nmi = m["held_out"]["scores"]["DDVI"]["gmm20"]["population"]["nmi"]
    assert 0.0 <= nmi <= 1.0
    # the held-out map is what `ddvi genotype embed` gives for those samples
    new = tmp_path / "new"
    result = runner.invoke(app, ["genotype", "embed", "--model", str(out / "model"), "--vcf", str(vcf),
                                 "--out", str(new)])
    assert result.exit_code == 0, result.output
    _, rows = read_latent(new / "latent.tsv")
    by_id = {r[0]: r for r in rows}
    z = np.array([[float(r[1]), float(r[2])] for r in held_rows])
    z_embed = np.array([[float(by_id[i][1]), float(by_id[i][2])] for i in held_ids])
    assert np.allclose(z, z_embed, atol=1e-4, rtol=1e-5)
    assert [r[3] for r in held_rows] == [by_id[i][3] for i in held_ids]


def test_held_out_fraction_out_of_range_is_a_usage_error(files, tmp_path):
    _, vcf, labels = files
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(vcf), "--labels", str(labels),
                                 "--out", str(tmp_path / "x"), "--held-out", "1.5", "-q"])
    assert result.exit_code == 2 and "--held-out" in result.output
    assert not (tmp_path / "x" / "metrics.json").exists()


@pytest.mark.parametrize("threads", ["0", "-1", "many"])
def test_bad_threads_is_a_usage_error(files, tmp_path, threads):
    _, vcf, labels = files
    result = runner.invoke(app, ["genotype", "fit", "--vcf", str(vcf), "--labels", str(labels),
                                 "--out", str(tmp_path / "x"), "--threads", threads, "-q"])
    assert result.exit_code == 2 and "--threads" in result.output
    assert not (tmp_path / "x").exists()
