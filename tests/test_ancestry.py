"""The genotype pipeline on a tiny msprime cohort: QC + PCA, the fit's outputs, embedding new
samples with a saved model, and the map scores."""

import csv
import json

import numpy as np
import pytest

from ddvi.data.cohorts import msprime_1kg, write_labels, write_vcf
from ddvi.data.genotypes import VCFSource
from ddvi.tasks.ancestry import (
    GenotypeData,
    embed_samples,
    fit_ancestry,
    genotype_model,
    prepare_genotypes,
    score_map,
    write_latent_tsv,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cohort")
    cohort = msprime_1kg(n_per_population=4, sequence_length=5e5, n_snps=300, seed=0)
    return cohort, write_vcf(cohort, d / "c.vcf.gz"), write_labels(cohort, d / "c.labels.tsv")


@pytest.fixture(scope="module")
def fitted(cohort_files, tmp_path_factory):
    cohort, vcf, labels = cohort_files
    data = prepare_genotypes(VCFSource(vcf), labels, n_components=20, description="tiny test cohort")
    out = tmp_path_factory.mktemp("fit") / "run"
    metrics = fit_ancestry(data, out, epochs=1, baselines=("pca",), hidden=(16,), verbose=False,
                           batch_size=32)
    return data, out, metrics


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_prepare_genotypes_features_labels_and_notes(cohort_files):
    cohort, vcf, labels = cohort_files
    n = cohort.n_samples
    assert n == 104
    with pytest.warns(UserWarning, match="clipped to 103"):
        data = prepare_genotypes(VCFSource(vcf), labels)  # n_components 1000 > n: capped
    assert isinstance(data, GenotypeData)
    assert data.features.dtype == np.float32 and data.features.shape[0] == n
    assert 2 <= data.features.shape[1] <= n - 1
    assert data.sample_ids == cohort.sample_ids
    assert np.array_equal(data.populations, cohort.populations)
    assert np.array_equal(data.super_populations, cohort.super_populations)
    assert data.description == "user data"
    text = "\n".join(data.notes)
    assert "QC: 104 samples, 300 variants read" in text
    assert "kept SNPs:" in text and "MAF < 0.01" in text
    kept = data.pca.qc_report_.n_kept
    assert 0 < kept <= 300 and f"{kept:>10}" in text
    assert f"PCA: {data.features.shape[1]} components" in text and "divided by 30" in text
    # the scale divides the scores
    small = prepare_genotypes(VCFSource(vcf), labels, n_components=5, scale=1.0)
    assert small.features.shape == (n, 5)
    assert np.allclose(np.abs(small.features), np.abs(data.features[:, :5]) * 30, rtol=1e-3, atol=1e-4)


def test_missing_labels_error_or_drop(cohort_files, tmp_path):
    cohort, vcf, labels = cohort_files
    lines = labels.read_text().splitlines()
    gone = [cohort.sample_ids[3], cohort.sample_ids[50]]
    partial = tmp_path / "partial.tsv"
    partial.write_text("\n".join(line for line in lines if line.split("\t")[0] not in gone) + "\n")
    with pytest.raises(ValueError, match=gone[0]):
        prepare_genotypes(VCFSource(vcf), partial, n_components=5)
    with pytest.warns(UserWarning, match="dropped"):
        data = prepare_genotypes(VCFSource(vcf), partial, n_components=5, drop_unlabelled=True)
    assert data.features.shape == (cohort.n_samples - 2, 5)
    assert len(data.populations) == cohort.n_samples - 2
    assert not set(gone) & set(data.sample_ids)
    assert any("2 genotype samples have no label (dropped)" in note for note in data.notes)
    # rows stay aligned with their labels
    i = data.sample_ids.index(cohort.sample_ids[10])
    assert data.populations[i] == cohort.populations[10]


def test_no_labels():
    from ddvi.data.genotypes import ArraySource

    g = np.random.default_rng(0).integers(0, 3, size=(30, 80)).astype(np.int8)
    data = prepare_genotypes(ArraySource(g, [f"s{i}" for i in range(30)], [f"v{j}" for j in range(80)]),
                             n_components=4)
    assert data.populations is None and data.super_populations is None
    assert data.features.shape == (30, 4)
    assert score_map(data.features[:, :2], None, None) == {}


def test_genotype_model_defaults_and_overrides():
    m = genotype_model("aevb", n_clusters=7, epochs=3, seed=2, verbose=False, hidden=(16,), lr=1e-3)
    p = m.get_params()
    assert p["method"] == "aevb" and p["n_clusters"] == 7 and p["epochs"] == 3 and p["seed"] == 2
    assert p["hidden"] == (16,) and p["lr"] == 1e-3
    assert p["likelihood"] == "gaussian-iso" and p["binarize"] is False
    assert p["cluster_model"] == "mixture" and p["latent_dim"] == 2
    assert p["beta_reg"] == 1.0 and p["prior_weight"] == 1.0  # the true ELBO
    assert genotype_model().get_params()["hidden"] == (1000, 1000, 1000, 1000)


def test_fit_writes_every_output(fitted):
    data, out, metrics = fitted
    n = len(data.sample_ids)
    rows = read_tsv(out / "latent.tsv")
    assert rows[0] == ["sample_id", "z1", "z2", "cluster", "population", "super_population"]
    assert len(rows) == n + 1
    by_id = {r[0]: r for r in rows[1:]}
    assert list(by_id) == data.sample_ids
    for sid, pop, sup in zip(data.sample_ids, data.populations, data.super_populations):
        r = by_id[sid]
        assert r[4] == pop and r[5] == sup
        assert np.isfinite(float(r[1])) and np.isfinite(float(r[2])) and 0 <= int(r[3]) < 20
    clusters = read_tsv(out / "clusters.tsv")
    assert clusters[0] == ["cluster", "size", "top_population", "top_fraction", "composition"]
    assert sum(int(r[1]) for r in clusters[1:]) == n
    for r in clusters[1:]:
        assert sum(int(c.split(":")[1]) for c in r[4].split(",")) == int(r[1])

    m = json.loads((out / "metrics.json").read_text())
    assert m == json.loads(json.dumps(metrics))
    assert m["data"] == "tiny test cohort" and m["n_samples"] == n and m["n_features"] == 20
    assert m["model"]["epochs"] == 1 and np.isfinite(m["model"]["elbo"])
    assert set(m["scores"]) == {"DDVI", "pca"}
    for name in ("DDVI", "pca"):
        s = m["scores"][name]
        assert s["seconds"] >= 0
        for target in ("population", "super_population"):
            for key in ("purity", "completeness", "nmi"):
                assert 0.0 <= s["gmm20"][target][key] <= 1.0, (name, target, key)
    assert "model_clusters" in m["scores"]["DDVI"] and "model_clusters" not in m["scores"]["pca"]
    assert "gmm20" in m["protocols"] and any("QC:" in note for note in m["notes"])

    with open(out / "history.csv") as f:
        hist = list(csv.DictReader(f))
    assert len(hist) == 1 and hist[0]["epoch"] == "1"
    assert (out / "model" / "pca.safetensors").is_file() and (out / "model" / "model.safetensors").is_file()
    for fig in ("map.png", "comparison.png"):
        assert (out / fig).read_bytes()[:8] == PNG, fig


def test_hidden_reaches_the_estimator(fitted):
    from ddvi.estimator import DDVI

    _, out, _ = fitted
    model = DDVI.load(out / "model")
    assert model.get_params()["hidden"] == (16,)
    assert model.get_params()["n_clusters"] == 20 and model.get_params()["batch_size"] == 32


def test_embed_samples_reproduces_the_map(fitted, cohort_files):
    data, out, _ = fitted
    _, vcf, _ = cohort_files
    z, clusters = embed_samples(out / "model", VCFSource(vcf))
    rows = read_tsv(out / "latent.tsv")[1:]
    want = np.array([[float(r[1]), float(r[2])] for r in rows])
    assert z.shape == (len(rows), 2)
    assert np.allclose(z, want, atol=1e-4, rtol=1e-5)
    assert [int(c) for c in clusters] == [int(r[3]) for r in rows]
    # a subset of samples in another order: same positions
    ids = [data.sample_ids[i] for i in (7, 2, 90)]
    z_sub, _ = embed_samples(out / "model", VCFSource(vcf, samples=ids))
    assert np.allclose(z_sub, want[[7, 2, 90]], atol=1e-4, rtol=1e-5)


def test_score_map_perfect_separation():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], float)
    pops = np.repeat(np.array(["A", "B", "C", "D"]), 25)
    supers = np.repeat(np.array(["X", "X", "Y", "Y"]), 25)
    z = centres[np.repeat(np.arange(4), 25)] + 0.1 * rng.standard_normal((100, 2))
    s = score_map(z, pops, supers, clusters=np.repeat(np.arange(4), 25), n_components=4)
    for key in ("purity", "completeness", "nmi"):
        assert s["gmm20"]["population"][key] == pytest.approx(1.0)
        assert s["model_clusters"]["population"][key] == pytest.approx(1.0)
    assert s["gmm20"]["super_population"]["purity"] == pytest.approx(1.0)
    # 4 clusters for 2 groups: each group split in two halves
    assert s["gmm20"]["super_population"]["completeness"] == pytest.approx(0.5)
    assert s["gmm20"]["super_population"]["nmi"] < 1.0
    bad = score_map(z, pops, None, clusters=np.zeros(100, int), n_components=4)
    assert bad["model_clusters"]["population"]["nmi"] == pytest.approx(0.0)
    assert "super_population" not in bad["gmm20"]


def test_write_latent_tsv_without_labels(tmp_path):
    z = np.array([[0.5, -1.25], [2.0, 3.0]])
    path = write_latent_tsv(tmp_path / "l.tsv", ["a", "b"], z, None, None, None)
    assert read_tsv(path) == [["sample_id", "z1", "z2", "cluster", "population", "super_population"],
                              ["a", "0.5", "-1.25", "NA", "NA", "NA"], ["b", "2", "3", "NA", "NA", "NA"]]


def test_aaeb_map_has_no_elbo_but_scores(cohort_files, monkeypatch):
    """AAEB has no ELBO: its metrics say None instead of failing after training."""
    from ddvi.bench import tasks

    _, vcf, labels = cohort_files
    data = prepare_genotypes(VCFSource(vcf), labels, n_components=20)
    monkeypatch.setattr(tasks, "_genotype_data", lambda config: data)
    out = tasks.genotype_fit({"method": "aaeb", "seed": 0, "epochs": 1,
                              "options": {"hidden": (16,)}})
    assert out["elbo"] is None
    assert 0.0 <= out["scores"]["gmm20"]["population"]["nmi"] <= 1.0


def test_split_samples_is_seeded_disjoint_and_stratified():
    from ddvi.tasks.ancestry import split_samples

    strata = np.repeat(np.array(list("abcde")), 10)
    fit, held = split_samples(50, 0.2, seed=3, strata=strata)
    assert len(held) == 10 and len(fit) == 40 and not set(fit) & set(held)
    assert sorted([*fit, *held]) == list(range(50))
    assert sorted(strata[held]) == list("aabbccddee")  # two of each population
    again, _ = split_samples(50, 0.2, seed=3, strata=strata)
    other, _ = split_samples(50, 0.2, seed=4, strata=strata)
    assert np.array_equal(fit, again) and not np.array_equal(fit, other)
    # a population with one sample cannot be stratified: a plain seeded split instead
    fit1, held1 = split_samples(11, 0.3, seed=0, strata=np.array(list("aaaaabbbbbc")))
    assert len(held1) == 4 and len(fit1) == 7
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            split_samples(50, bad)
    with pytest.raises(ValueError, match="leaves 1 to fit"):
        split_samples(3, 0.5)


def test_held_out_samples_stay_out_of_the_pca(cohort_files):
    from ddvi.data.genotype_pca import GenotypePCA
    from ddvi.data.genotypes import SampleSubset

    cohort, vcf, labels = cohort_files
    data = prepare_genotypes(VCFSource(vcf), labels, n_components=8, held_out=0.2, seed=1)
    held = data.held_out
    assert held is not None and held.features.shape == (len(held.sample_ids), 8)
    assert not set(held.sample_ids) & set(data.sample_ids)
    assert len(held.sample_ids) + len(data.sample_ids) == cohort.n_samples
    assert any(note.startswith("held out:") for note in data.notes)
    fit_index = [cohort.sample_ids.index(s) for s in data.sample_ids]
    alone = GenotypePCA(n_components=8).fit_transform(SampleSubset(VCFSource(vcf), fit_index))
    assert np.allclose(np.abs(alone), np.abs(data.features), atol=1e-4)  # PCs up to sign
    want_pops = dict(zip(cohort.sample_ids, cohort.populations))
    assert list(held.populations) == [want_pops[s] for s in held.sample_ids]
    assert np.allclose(held.features, data.pca.transform(VCFSource(vcf, samples=held.sample_ids)),
                       atol=1e-5)


def test_sample_subset_reorders_and_validates():
    from ddvi.data.genotypes import ArraySource, SampleSubset

    src = ArraySource(np.array([[0, 1, 2], [2, 2, 0], [1, 0, -1]]), ["a", "b", "c"])
    sub = SampleSubset(src, [2, 0])
    assert sub.sample_ids == ["c", "a"]
    chunks = list(sub.chunks(chunk_size=2))
    assert [c.snp_ids for c in chunks] == [["snp0", "snp1"], ["snp2"]]
    assert np.array_equal(np.hstack([c.dosages for c in chunks]),
                          np.array([[1, 0, np.nan], [0, 1, 2]], np.float32), equal_nan=True)
    for bad in ([], [3], [-1]):
        with pytest.raises(ValueError):
            SampleSubset(src, bad)
    with pytest.raises(ValueError, match="unique|duplicate"):
        SampleSubset(src, [0, 0])
