"""`ddvi bench TABLE --scale ...`: the grids of configs, one image table end to end with its cache,
the CIFAR-10 input check, and the genotype tables (3, 5) on a tiny monkeypatched cohort."""

import json
import re

import numpy as np
import pytest

from ddvi.bench import tables
from ddvi.bench.tables import PRIORS, SCALES, TABLES, run_bench, table_configs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("scale", sorted(SCALES))
@pytest.mark.parametrize("name", sorted(TABLES))
def test_config_counts(name, scale):
    spec = TABLES[name]
    configs = table_configs(name, scale)
    seeds = SCALES[scale]["seeds"]
    per_row = len(PRIORS) * len(seeds) if spec.kind == "image" else len(seeds)
    assert len(configs) == len(spec.rows) * per_row
    assert [c["row"] for c in configs][::per_row] == list(spec.rows)
    assert {c["seed"] for c in configs} == set(seeds)
    assert all("table" not in c and c["scale"] == scale for c in configs)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)  # no duplicates
    if spec.kind == "image":
        assert {c["prior"] for c in configs} == set(PRIORS)
        assert {c["task"] for c in configs} == {"image"}
        assert {c["dataset"] for c in configs} == {spec.dataset}
        if spec.dataset == "cifar10":
            assert all(c["options"]["arch"] == "conv" for c in configs)
        else:
            assert all("arch" not in c["options"] for c in configs)
        labels = SCALES[scale]["labels"][spec.dataset]
        assert {c["n_labels"] for c in configs} == ({labels} if spec.semi else {None})
        epochs = SCALES[scale]["semi_epochs" if spec.semi else "epochs"]
        paper_semi_ddvi = spec.semi and scale == "paper"  # the paper's own DDVI settings
        assert {c["epochs"] for c in configs if not (paper_semi_ddvi and c["method"] == "ddvi")} \
            == {epochs}
    else:
        assert all(c["n_snps"] == SCALES[scale]["n_snps"] for c in configs)
        assert all(c["n_components"] == SCALES[scale]["n_components"] for c in configs)
        tasks = {c["row"]: c["task"] for c in configs}
        for row in spec.rows:
            assert tasks[row] == ("embedding" if row in ("pca", "tsne", "umap") else "genotype")
        if spec.kind == "timing":
            assert all(c["time_marks"] == SCALES[scale]["time_marks"] for c in configs)
            assert all(c["epochs"] == SCALES[scale]["max_epochs"] for c in configs)


def test_row_options_and_overrides():
    nosleep = table_configs("table9", "smoke", [0], rows=["ddvi-nosleep"], priors=["square"])
    assert len(nosleep) == 1
    assert nosleep[0]["method"] == "ddvi" and nosleep[0]["options"]["sleep"] == "none"
    assert nosleep[0]["options"]["warmup_steps"] == 20 and nosleep[0]["prior"] == "square"
    t5 = table_configs("table5", "cpu", [7], rows=["ddvi-t10", "aevb"])
    assert [(c["method"], c["options"], c["seed"]) for c in t5] == [("ddvi", {"timesteps": 10}, 7),
                                                                    ("aevb", {}, 7)]
    semi = table_configs("table2", "cpu", [0], rows=["ddvi"], priors=["pinwheel"])
    assert semi[0]["n_labels"] == 1000 and semi[0]["n_train"] == SCALES["cpu"]["semi_train"]
    assert table_configs("table8", "paper", [0], rows=["ddvi"], priors=["pinwheel"])[0]["n_labels"] == 10000
    fashion = table_configs("table2", "smoke", [0], rows=["aevb"], priors=["pinwheel"],
                            dataset="fashion-mnist")
    assert fashion[0]["dataset"] == "fashion-mnist" and fashion[0]["n_labels"] == 100
    g = table_configs("table3", "smoke", [0], rows=["aaeb"], cohort="msprime-1kg")
    assert g[0]["cohort"] == "msprime-1kg" and g[0]["epochs"] == SCALES["smoke"]["genotype_epochs"]


def test_tables_share_fits():
    """table1 and table9 (same data, scale and rows) hash to the same cached fits; table 9's
    ddvi row is the paper's DDVI with its sleep term (DDVI's default has none)."""
    from ddvi.bench.runner import config_key

    t1 = table_configs("table1", "smoke", [0], rows=["aevb", "ddvi"])
    t9 = table_configs("table9", "smoke", [0], rows=["aevb", "ddvi"])
    n = len(t1) // 2
    assert [config_key(c) for c in t1[:n]] == [config_key(c) for c in t9[:n]]
    assert all(c["options"].get("sleep") is None for c in t1[n:])
    assert all(c["options"]["sleep"] == "full" for c in t9[n:])
    assert config_key(table_configs("table1", "cpu", [0], rows=["aevb"])[0]) != config_key(t1[0])


def test_table9_equal_weight_rows():
    """Table 9's plain-ELBO rows: DDVI with and without its sleep at KL weight 1, the baselines'
    rows the very fits of Table 1 (same cache keys)."""
    from ddvi.bench.runner import config_key

    t9 = {c["row"]: c for c in table_configs("table9", "smoke", [0], priors=["square"])}
    assert t9["ddvi-elbo"]["options"]["sleep"] == "full"
    assert t9["ddvi-nosleep-elbo"]["options"]["sleep"] == "none"
    for row in ("ddvi-elbo", "ddvi-nosleep-elbo", "aevb-elbo"):
        assert t9[row]["options"]["beta_reg"] == 1.0 and t9[row]["options"]["prior_weight"] == 1.0
    t1 = {c["row"]: c for c in table_configs("table1", "smoke", [0], priors=["square"])}
    for row in ("aevb-elbo", "aevb-iaf-elbo", "h-aevb-elbo"):
        assert config_key(t9[row]) == config_key(t1[row])
    assert t1["ddvi-elbo"]["options"].get("sleep") is None


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown table 'table4'.*table1"):
        table_configs("table4", "smoke")
    with pytest.raises(ValueError, match=r"unknown scale 'huge'.*smoke.*cpu.*paper"):
        table_configs("table1", "huge")
    with pytest.raises(ValueError, match=r"no rows \['pca'\].*aevb-iaf"):
        table_configs("table1", "smoke", rows=["aevb", "pca"])


def test_table9_smoke_end_to_end_and_cache(tmp_path, monkeypatch):
    kw = {"seeds": [0], "rows": ["ddvi-nosleep"], "priors": ["pinwheel"], "progress": False}
    result = run_bench("table9", "smoke", tmp_path, **kw)
    md = (tmp_path / "table9.md").read_text()
    assert md == result["markdown"]
    assert "(paper: 2.12" in md and "### Latent NLL" in md and "| ddvi-nosleep |" in md
    assert "Scale `smoke`: mnist, 512 training / 512 test images" in md and "1 fits" in md
    data = json.loads((tmp_path / "table9.json").read_text())
    cell = data["table"]["latent_nll"]["ddvi-nosleep"]["pinwheel"]
    assert cell["n"] == 1 and np.isfinite(cell["mean"]) and cell["ci"] is None
    assert data["scale"] == "smoke" and len(data["fits"]) == 1
    assert "points" not in data["fits"][0]["result"]
    nll = re.search(r"\| ddvi-nosleep \| ([-\d.]+) \(paper", md).group(1)
    assert float(nll) == pytest.approx(cell["mean"], abs=0.006)
    assert result["figure"] == tmp_path / "table9.png"
    assert (tmp_path / "table9.png").read_bytes()[:8] == PNG
    fits = list((tmp_path / "fits").glob("*/result.json"))
    assert len(fits) == 1
    mtime = fits[0].stat().st_mtime_ns

    def no_fit(config):
        raise AssertionError(f"cached fit recomputed: {config}")

    monkeypatch.setattr("ddvi.bench.tasks.run_task", no_fit)
    again = run_bench("table9", "smoke", tmp_path, **kw)
    assert fits[0].stat().st_mtime_ns == mtime
    assert again["markdown"] == md
    assert again["records"][0]["key"] == result["records"][0]["key"]


@pytest.mark.parametrize("how", ["data_dir", "env"])
def test_cifar_without_data_fails_before_any_fit(tmp_path, monkeypatch, how):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))  # no cached copy either
    monkeypatch.delenv("DDVI_DATA", raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("a bench must never download CIFAR-10")

    def no_grid(*args, **kwargs):
        raise AssertionError("fits started before the inputs were checked")

    monkeypatch.setattr("ddvi.data.cifar.download_cifar10", no_download)
    monkeypatch.setattr("ddvi.bench.runner.run_grid", no_grid)
    grid = {"seeds": [0], "rows": ["aevb"], "priors": ["pinwheel"], "progress": False}
    if how == "data_dir":
        grid["data_dir"] = str(empty)
    else:
        monkeypatch.setenv("DDVI_CIFAR10", str(empty))
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found") as err:
        run_bench("table7", "smoke", tmp_path / "out", **grid)
    assert str(empty) in str(err.value)
    assert not (tmp_path / "out" / "fits").exists()


# ---------------------------------------------------------------- genotype tables, tiny cohort


@pytest.fixture(scope="module")
def tiny_genotypes(tmp_path_factory):
    from ddvi.data.cohorts import msprime_1kg, write_labels
    from ddvi.data.genotypes import ArraySource
    from ddvi.tasks.ancestry import prepare_genotypes

    d = tmp_path_factory.mktemp("tiny")
    cohort = msprime_1kg(n_per_population=4, sequence_length=5e5, n_snps=300, seed=2)
    source = ArraySource(cohort.genotypes, cohort.sample_ids, cohort.snp_ids)
    return prepare_genotypes(source, write_labels(cohort, d / "labels.tsv"), n_components=10,
                             description="TINY test cohort")


@pytest.fixture
def patched_cohort(monkeypatch, tiny_genotypes):
    seen = []

    def fake(config):
        seen.append(config)
        return tiny_genotypes

    monkeypatch.setattr("ddvi.bench.tasks._genotype_data", fake)
    return seen


def test_table3_smoke_on_a_tiny_cohort(tmp_path, patched_cohort):
    result = run_bench("table3", "smoke", tmp_path, seeds=[0], rows=["aevb", "pca"], progress=False,
                       cohort="msprime-1kg")
    assert {c["cohort"] for c in patched_cohort} == {"msprime-1kg"}
    md = (tmp_path / "table3.md").read_text()
    assert "| method | purity | completeness | NMI | train seconds |" in md
    assert "### gmm20 vs populations (the paper's protocol)" in md
    assert "### gmm20 vs super-populations" in md and "### model_clusters vs populations" in md
    assert "Data: TINY test cohort" in md
    assert "cohort msprime-1kg (2000 SNPs, 50 PCs / 30), 2 epochs" in md
    assert re.search(r"\| aevb \| [01]\.\d\d \(paper: 0\.28 ± 0\.02\) \| [01]\.\d\d \(paper: 0\.78", md)
    assert re.search(r"\| pca \| [01]\.\d\d \| [01]\.\d\d \| [01]\.\d\d \|", md)
    table = result["table"]
    for key in ("gmm20/population", "gmm20/super_population"):
        for row in ("aevb", "pca"):
            for metric in ("purity", "completeness", "nmi"):
                assert 0.0 <= table[key][row][metric]["mean"] <= 1.0
    assert set(table["model_clusters/population"]) == {"aevb"}  # the embeddings have no clusters
    aevb = next(r for r in result["records"] if r["config"]["row"] == "aevb")["result"]
    assert aevb["trace"] == [] and np.isfinite(aevb["elbo"])
    assert len(aevb["points"]["z"]) == len(aevb["points"]["labels"]) == 104
    assert (tmp_path / "table3.png").read_bytes()[:8] == PNG


def test_table5_smoke_trace_has_one_entry_per_mark(tmp_path, patched_cohort):
    result = run_bench("table5", "smoke", tmp_path, seeds=[0], rows=["ddvi-t5"], progress=False)
    marks = SCALES["smoke"]["time_marks"]
    (record,) = result["records"]
    trace = record["result"]["trace"]
    assert [t["mark_seconds"] for t in trace] == marks
    epochs = [t["epochs"] for t in trace]
    assert epochs == sorted(epochs) and 1 <= epochs[0] and epochs[-1] <= SCALES["smoke"]["max_epochs"]
    for t in trace:
        assert 0.0 <= t["nmi"] <= 1.0 and 0.0 <= t["purity"] <= 1.0
        assert t["seconds"] >= t["mark_seconds"] or t["epochs"] == SCALES["smoke"]["max_epochs"]
    md = (tmp_path / "table5.md").read_text()
    header = "| method | " + " | ".join(f"NMI @ {m:g} s" for m in marks) + " |"  # marks < 1 min
    assert header in md
    line = next(line for line in md.splitlines() if line.startswith("| ddvi-t5 |"))
    assert "(paper: 0.63)" in line and line.count("|") == len(marks) + 2
    assert len(result["table"]["ddvi-t5"]) == len(marks)
    assert result["table"]["ddvi-t5"][0]["mean"] == pytest.approx(trace[0]["nmi"])


def test_tables_module_exports():
    assert set(tables.__all__) >= {"run_bench", "table_configs", "TABLES", "SCALES"}


def test_table7_and_8_run_end_to_end_on_a_generated_cifar_folder(tmp_path, monkeypatch):
    """The CIFAR tables run with the paper's conv networks once a cifar-10-batches-py folder
    exists (here random images in the real format: the numbers mean nothing)."""
    import pickle

    from ddvi.data.cifar import BATCH_FILES
    from ddvi.fitting import load_images

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in BATCH_FILES:
        batch = {b"labels": [int(v) for v in rng.integers(0, 10, 40)],
                 b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    load_images.cache_clear()
    for table in ("table7", "table8"):
        result = run_bench(table, "smoke", tmp_path / "out", seeds=[0], rows=["ddvi"],
                           priors=["pinwheel"], data_dir=str(folder), progress=False)
        (record,) = result["records"]
        assert record["config"]["options"]["arch"] == "conv"
        assert np.isfinite(record["result"]["elbo"])
        assert (tmp_path / "out" / f"{table}.md").read_text().count("(paper: ") >= 2
    load_images.cache_clear()


def test_paper_scale_semi_supervised_ddvi_uses_the_papers_settings():
    from ddvi.bench.tables import table_configs

    paper = {(c["row"], c["prior"]): c for c in table_configs("table2", "paper", seeds=[0])}
    ddvi = paper[("ddvi", "pinwheel")]
    assert ddvi["epochs"] == 30
    assert ddvi["options"]["timesteps"] == 100 and ddvi["options"]["batch_size"] == 1024
    assert ddvi["options"]["beta_reg"] == pytest.approx(78.4)
    assert "timesteps" not in paper[("aevb", "pinwheel")]["options"]
    cifar = [c for c in table_configs("table8", "paper", seeds=[0]) if c["row"] == "ddvi"]
    assert cifar[0]["options"]["beta_reg"] == pytest.approx(1536.0)
    cpu = [c for c in table_configs("table2", "cpu", seeds=[0]) if c["row"] == "ddvi"]
    assert "timesteps" not in cpu[0]["options"] and cpu[0]["epochs"] != 30


def test_elbo_rows_train_on_the_plain_elbo():
    from ddvi.bench.tables import table_configs

    configs = {(c["row"], c["prior"]): c for c in table_configs("table1", "cpu", seeds=[0])}
    for row in ("aevb-elbo", "aevb-iaf-elbo", "h-aevb-elbo", "pis-elbo", "ddvi-elbo"):
        c = configs[(row, "pinwheel")]
        assert c["method"] == row.removesuffix("-elbo")
        assert c["options"]["beta_reg"] == 1.0 and c["options"]["prior_weight"] == 1.0
    assert "beta_reg" not in configs[("aevb", "pinwheel")]["options"]
    paper = {c["row"]: c for c in table_configs("table2", "paper", seeds=[0], priors=["pinwheel"])}
    assert paper["ddvi-elbo"]["options"]["beta_reg"] == 1.0
    assert paper["ddvi-elbo"]["options"]["timesteps"] == 100
