"""Genotype readers, streaming QC and label files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_genotypes import dosage_records, random_genotypes, vcf_text, write_plink, write_text, write_vcf

from ddvi.data.genotypes import (
    FLAG_MULTIALLELIC,
    FLAG_NON_DIPLOID,
    FLAG_NON_SNP,
    FLAG_OK,
    ArraySource,
    PlinkSource,
    QCConfig,
    QCReport,
    VCFSource,
    open_genotypes,
    qc_chunks,
    read_labels,
)

pytest.importorskip("cyvcf2")
pytest.importorskip("bed_reader")


def dense(source, chunk_size=4096):
    chunks = list(source.chunks(chunk_size))
    ids = [s for c in chunks for s in c.snp_ids]
    return np.concatenate([c.dosages for c in chunks], axis=1), ids, np.concatenate([c.flags for c in chunks])


def qc_dense(source, config, chunk_size=4096):
    report = QCReport()
    parts = list(qc_chunks(source, config, report, chunk_size=chunk_size))
    x = np.concatenate(parts, axis=1) if parts else np.zeros((source.n_samples, 0), np.float32)
    return x, report


# --------------------------------------------------------------------------- readers


def test_vcf_dosages_missing_and_phasing(tmp_path):
    recs = [(100, "rs1", "A", "G", ["0/0", "0|1", "1/0", "1|1"]),
            (200, ".", "C", "T", ["./.", "0/.", "1/1", "0/0"])]
    src = VCFSource(write_vcf(tmp_path / "a.vcf", ["a", "b", "c", "d"], recs))
    x, ids, flags = dense(src)
    assert x.dtype == np.float32 and x.shape == (4, 2)
    np.testing.assert_array_equal(x, [[0, np.nan], [1, np.nan], [1, 2], [2, 0]])
    assert ids == ["rs1", "1:200:C:T"]
    assert flags.tolist() == [FLAG_OK, FLAG_OK]


@pytest.mark.parametrize("fmt", ["vcf", "gzip", "bgzf", "bcf"])
def test_vcf_and_plink_give_the_same_matrix(tmp_path, fmt):
    x, samples, snps, ref, alt = random_genotypes(13, 37, seed=1)
    vcf = write_vcf(tmp_path / f"g.{fmt}", samples, dosage_records(x, snps, ref, alt), fmt=fmt)
    bfile = write_plink(tmp_path / "g", x, samples, snps, ref, alt)
    v, p = VCFSource(vcf), PlinkSource(bfile)
    assert v.sample_ids == p.sample_ids == samples
    xv, idv, _ = dense(v, 5)
    xp, idp, _ = dense(p, 5)
    expected = np.where(x < 0, np.nan, x).astype(np.float32)
    np.testing.assert_array_equal(xv, expected)
    np.testing.assert_array_equal(xp, expected)
    assert idv == idp == snps
    chunk = next(p.chunks(4))
    assert chunk.alt == alt[:4] and chunk.ref == ref[:4]


def test_vcf_sample_subset_follows_requested_order(tmp_path):
    x, samples, snps, ref, alt = random_genotypes(6, 5, seed=2)
    vcf = write_vcf(tmp_path / "g.vcf", samples, dosage_records(x, snps, ref, alt))
    src = VCFSource(vcf, samples=["id4", "id1"])
    assert src.sample_ids == ["id4", "id1"]
    np.testing.assert_array_equal(dense(src)[0], np.where(x < 0, np.nan, x)[[4, 1]])
    with pytest.raises(ValueError, match="1 requested sample.*nobody"):
        VCFSource(vcf, samples=["id1", "nobody"])


def test_flags_and_qc_counts_for_multiallelic_indels_and_ploidy(tmp_path):
    recs = [(100, "ok1", "A", "G", ["0/0", "0/1", "1/1", "0/1"]),
            (200, "multi", "A", "G,T", ["0/0", "0/2", "1/1", "0/1"]),
            (300, "ins", "A", "AT", ["0/0", "0/1", "1/1", "0/1"]),
            (400, "del", "AC", "A", ["0/0", "0/1", "1/1", "0/1"]),
            (500, "star", "C", "*", ["0/0", "0/1", "1/1", "0/1"]),
            (600, "hap", "C", "T", ["0/0", "1", "1/1", "0/1"]),
            (700, "tri", "C", "T", ["0/0/1", "0/0/0", "1/1/1", "0/1/1"]),
            (800, "ok2", "C", "T", ["0/0", "0/0", "0/1", "0/1"])]
    src = VCFSource(write_vcf(tmp_path / "f.vcf", list("abcd"), recs))
    _, ids, flags = dense(src)
    assert dict(zip(ids, flags.tolist())) == {
        "ok1": FLAG_OK, "multi": FLAG_MULTIALLELIC, "ins": FLAG_NON_SNP, "del": FLAG_NON_SNP,
        "star": FLAG_NON_SNP, "hap": FLAG_NON_DIPLOID, "tri": FLAG_NON_DIPLOID, "ok2": FLAG_OK}
    x, rep = qc_dense(src, QCConfig(maf=0.0))
    assert (rep.n_variants_seen, rep.dropped_multiallelic, rep.dropped_non_snp, rep.dropped_non_diploid,
            rep.n_kept) == (8, 1, 3, 2, 2)
    np.testing.assert_array_equal(x, [[0, 0], [1, 0], [2, 1], [1, 1]])
    # keeping multi-allelic sites counts every non-reference allele
    x2, rep2 = qc_dense(src, QCConfig(maf=0.0, biallelic_snps_only=False))
    assert rep2.n_kept == 6 and rep2.dropped_non_diploid == 2
    np.testing.assert_array_equal(x2[:, 1], [0, 1, 2, 1])


def test_plink_non_snp_alleles_flagged(tmp_path):
    x = np.array([[0, 1], [1, 2], [2, 0]], np.int8)
    write_plink(tmp_path / "p", x, ["a", "b", "c"], ["s1", "s2"], ["A", "I"], ["G", "D"])
    _, _, flags = dense(PlinkSource(tmp_path / "p"))
    assert flags.tolist() == [FLAG_OK, FLAG_NON_SNP]


# --------------------------------------------------------------------------- QC


def test_missing_calls_imputed_by_allele_frequency():
    x = np.array([[0, 2], [1, -1], [2, 2], [-1, 1], [1, 2]], np.int8)
    out, rep = qc_dense(ArraySource(x), QCConfig(maf=0.0, max_missing=0.25))
    # column 0: observed 0,1,2,1 -> mean 1.0; column 1: 2,2,1,2 -> mean 1.75
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 1.0, 1])
    np.testing.assert_array_equal(out[:, 1], [2, 1.75, 2, 1, 2])
    assert out.dtype == np.float32
    assert rep.n_missing_imputed == 2 and rep.n_kept == 2


def test_maf_missing_and_monomorphic_filters():
    n = 10
    cols = {
        "common": [0, 1, 2, 1, 0, 1, 2, 1, 0, 1],     # p = 0.45
        "rare": [1] + [0] * 9,                         # p = 0.05  -> MAF drop at 0.1
        "rare_alt": [1] + [2] * 9,                     # p = 0.95  -> MAF drop
        "edge": [1, 1] + [0] * 8,                      # p = 0.10  -> kept (MAF >= 0.1)
        "mono": [0] * 10,                              # monomorphic
        "mono_alt": [2] * 9 + [-1],                    # monomorphic once missing is ignored
        "gappy": [0, 1, 2, -1, -1, 1, 0, 1, 2, 1],     # 20% missing -> missing drop at 0.1
        "allmiss": [-1] * 10,
    }
    x = np.array(list(cols.values()), np.int8).T
    src = ArraySource(x, snp_ids=list(cols))
    out, rep = qc_dense(src, QCConfig(maf=0.1, max_missing=0.1))
    assert (rep.dropped_maf, rep.dropped_missing, rep.dropped_monomorphic, rep.n_kept) == (2, 2, 2, 2)
    assert out.shape == (n, 2)
    np.testing.assert_array_equal(out[:, 1], cols["edge"])
    d = rep.to_dict()
    json.dumps(d)
    assert d["config"] == {"maf": 0.1, "max_missing": 0.1, "biallelic_snps_only": True}
    text = str(rep)
    assert "MAF < 0.1" in text and "kept SNPs" in text and "10 samples, 8 variants" in text


def test_duplicate_snp_ids_dropped_across_chunks():
    x = np.array([[0, 1, 2, 0], [1, 1, 0, 2], [2, 0, 1, 1]], np.int8)
    src = ArraySource(x, snp_ids=["a", "b", "a", "b"])
    for cs in (1, 3, 10):
        out, rep = qc_dense(src, QCConfig(maf=0.0), chunk_size=cs)
        assert rep.dropped_duplicate_id == 2 and rep.n_kept == 2
        np.testing.assert_array_equal(out, x[:, :2])


@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
def test_streaming_chunk_size_does_not_change_results(tmp_path, chunk_size):
    x, samples, snps, ref, alt = random_genotypes(11, 29, seed=3, missing=0.08)
    x[:, 4] = 0  # a monomorphic column
    x[:, 7] = -1
    vcf = write_vcf(tmp_path / "g.vcf", samples, dosage_records(x, snps, ref, alt))
    cfg = QCConfig(maf=0.05, max_missing=0.15)
    ref_out, ref_rep = qc_dense(ArraySource(x, samples, snps), cfg, chunk_size=10_000)
    for src in (VCFSource(vcf), ArraySource(x, samples, snps)):
        out, rep = qc_dense(src, cfg, chunk_size=chunk_size)
        np.testing.assert_array_equal(out, ref_out)
        assert rep.to_dict() == ref_rep.to_dict()
    assert ref_rep.n_kept < 29 and ref_rep.dropped_monomorphic >= 1 and ref_rep.dropped_missing >= 1


def test_qc_config_validation():
    with pytest.raises(ValueError, match="maf"):
        QCConfig(maf=0.6)
    with pytest.raises(ValueError, match="max_missing"):
        QCConfig(max_missing=1.5)


# --------------------------------------------------------------------------- bad input


def test_duplicate_sample_ids_rejected(tmp_path):
    recs = [(100, "rs1", "A", "G", ["0/0", "0/1", "1/1"])]
    with pytest.raises(ValueError, match="duplicate sample ID.*s1"):
        VCFSource(write_vcf(tmp_path / "d.vcf", ["s1", "s2", "s1"], recs))
    x = np.array([[0], [1], [2]], np.int8)
    write_plink(tmp_path / "d", x, ["s1", "s2", "s1"], ["rs1"], ["A"], ["G"])
    with pytest.raises(ValueError, match="duplicate sample ID.*s1"):
        PlinkSource(tmp_path / "d")
    with pytest.raises(ValueError, match="duplicate sample ID.*s1"):
        ArraySource(x, ["s1", "s2", "s1"])


def test_plink_size_mismatch_names_the_sizes(tmp_path):
    x, samples, snps, ref, alt = random_genotypes(5, 4, seed=4)
    write_plink(tmp_path / "p", x, samples, snps, ref, alt)
    with open(tmp_path / "p.bim", "a") as f:
        f.write("1\trsX\t0\t999\tA\tG\n")
    with pytest.raises(ValueError, match=r"\.bed is 11 bytes.*5 SNPs.*5 samples.*13 bytes"):
        PlinkSource(tmp_path / "p")
    write_plink(tmp_path / "q", x, samples, snps, ref, alt)
    with open(tmp_path / "q.fam", "a") as f:
        f.write("x x 0 0 0 -9\nx2 x2 0 0 0 -9\nx3 x3 0 0 0 -9\nx4 x4 0 0 0 -9\n")
    with pytest.raises(ValueError, match=r"\.bed is 11 bytes.*4 SNPs.*9 samples.*15 bytes"):
        PlinkSource(tmp_path / "q")
    write_plink(tmp_path / "r", x, samples, snps, ref, alt)
    data = (tmp_path / "r.bed").read_bytes()
    (tmp_path / "r.bed").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="10 bytes"):
        PlinkSource(tmp_path / "r")
    (tmp_path / "r.bed").write_bytes(b"\x00\x00\x00" + data[3:])
    with pytest.raises(ValueError, match="not a SNP-major PLINK"):
        PlinkSource(tmp_path / "r")
    (tmp_path / "r.fam").unlink()
    with pytest.raises(FileNotFoundError, match=r"r\.fam"):
        PlinkSource(tmp_path / "r.bed")


def _big_records(n_rec=400):
    x, samples, snps, ref, alt = random_genotypes(4, n_rec, seed=5)
    return samples, dosage_records(x, snps, ref, alt)


def test_truncated_compressed_files_raise(tmp_path):
    samples, recs = _big_records()
    for fmt in ("bgzf", "bcf"):
        path = write_vcf(tmp_path / f"t.{fmt}", samples, recs, fmt=fmt)
        data = path.read_bytes()
        cut = tmp_path / f"cut_mid.{fmt}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match="truncated"):
            list(VCFSource(cut).chunks())
        cut = tmp_path / f"cut_eof.{fmt}"
        cut.write_bytes(data[:-28])  # a whole-block cut: only the BGZF end-of-file block is gone
        with pytest.raises(ValueError, match="truncated"):
            list(VCFSource(cut).chunks())
    path = write_vcf(tmp_path / "t.gz", samples, recs, fmt="gzip")
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match="cut.vcf.gz"):
        list(VCFSource(cut).chunks())


def test_truncated_or_corrupted_mid_stream_raise(tmp_path):
    """Damage after the header was parsed: htslib errors must surface, not end the stream early."""
    samples, recs = _big_records(6000)
    path = write_vcf(tmp_path / "big.gz", samples, recs, fmt="gzip")
    data = path.read_bytes()
    (tmp_path / "half.vcf.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half.vcf.gz: file is truncated \(unexpected end of gzip stream "
                                         r"after line \d+\), so data record \d+ .* cannot be read"):
        list(VCFSource(tmp_path / "half.vcf.gz").chunks())
    path = write_vcf(tmp_path / "big.bcf", samples, recs[:3000], fmt="bcf")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # corrupt a data block, keep the BGZF end-of-file block
    (tmp_path / "bad.bcf").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"bad.bcf is malformed or truncated at data record \d+"):
        list(VCFSource(tmp_path / "bad.bcf").chunks())


def test_truncated_plain_gzip_is_reported_as_truncated(tmp_path):
    """A plain-gzip (not BGZF) VCF cut short: htslib fails on its first block and blamed the header."""
    samples, recs = _big_records()
    data = write_vcf(tmp_path / "t.gz", samples, recs, fmt="gzip").read_bytes()
    n_lines = 4 + len(recs)
    for name, keep in (("half", len(data) // 2), ("tail", len(data) - 200), ("trailer", len(data) - 8)):
        cut = tmp_path / f"{name}.vcf.gz"
        cut.write_bytes(data[:keep])
        with pytest.raises(ValueError, match=rf"{name}.vcf.gz: file is truncated \(unexpected end of gzip "
                                             r"stream after line \d+\)") as err:
            VCFSource(cut)
        assert "header" not in str(err.value)
        last = int(str(err.value).split("after line ")[1].split(")")[0])
        assert 4 <= last < n_lines or (name == "trailer" and last == n_lines)  # the lines that are intact
    full = tmp_path / "full.vcf.gz"
    full.write_bytes(data)
    assert sum(len(c.snp_ids) for c in VCFSource(full).chunks()) == len(recs)


@pytest.mark.parametrize("fmt", ["vcf", "gzip", "bgzf"])
@pytest.mark.parametrize("bad", [0, 17, 39])
def test_extra_genotype_columns_raise(tmp_path, fmt, bad):
    """htslib drops genotype columns beyond the header's samples; the reader must not."""
    samples, recs = _big_records(40)
    lines = vcf_text(samples, recs).splitlines(True)
    lineno = 4 + bad + 1  # 3 ## lines and #CHROM, then data record bad + 1
    assert lines[lineno - 1].startswith("1\t")
    lines[lineno - 1] = lines[lineno - 1].rstrip("\n") + "\t0/1\t1/1\n"
    path = write_text(tmp_path / f"extra.{fmt}", "".join(lines), fmt)
    pos = recs[bad][0]
    msg = (rf"extra.{fmt} is malformed at data record {bad + 1} \(line {lineno}, 1:{pos}\): "
           r"6 genotype columns but the #CHROM header line names 4 samples")
    for chunk_size, subset in ((7, None), (4096, None), (1, samples[2:0:-1])):
        seen = 0
        with pytest.raises(ValueError, match=msg):
            for chunk in VCFSource(path, samples=subset).chunks(chunk_size):
                seen += len(chunk.snp_ids)
        assert seen <= bad  # no chunk holding the bad record (or any after it) was handed out
    # the same file without the extra columns reads fine
    lines[lineno - 1] = lines[lineno - 1].replace("\t0/1\t1/1\n", "\n")
    ok = write_text(tmp_path / f"ok.{fmt}", "".join(lines), fmt)
    assert sum(len(c.snp_ids) for c in VCFSource(ok).chunks(7)) == 40


def test_extra_column_reported_before_a_later_htslib_error(tmp_path):
    samples, recs = _big_records(10)
    lines = vcf_text(samples, recs).splitlines(True)
    lines[6] = lines[6].rstrip("\n") + "\t0/0\n"  # data record 3
    lines[8] = "garbage\n"  # data record 5
    path = write_text(tmp_path / "two.vcf", "".join(lines))
    with pytest.raises(ValueError, match=r"two.vcf is malformed at data record 3 \(line 7, .*5 genotype"):
        list(VCFSource(path).chunks())


def test_malformed_text_lines_raise(tmp_path):
    samples, recs = _big_records(6)
    good = write_vcf(tmp_path / "g.vcf", samples, recs).read_text().splitlines(True)
    cases = {
        "cut_mid_line": "".join(good[:6]) + good[6][:25],
        "garbage": "".join(good[:6]) + "garbage line here\n" + "".join(good[6:]),
        "blank": "".join(good[:6]) + "\n" + "".join(good[6:]),
        "few_columns": "".join(good[:6]) + "1\t150\trsX\n" + "".join(good[6:]),
        "bad_pos": "".join(good[:6]) + "1\tabc\trsX\tA\tG\t.\t.\t.\tGT\t0/0\t0/0\t0/0\t0/0\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.vcf"
        path.write_text(text)
        with pytest.raises(ValueError, match=f"{name}.vcf.*record"):
            list(VCFSource(path).chunks(2))
    (tmp_path / "nohead.vcf").write_text("not a vcf\n")
    with pytest.raises(ValueError, match="nohead.vcf"):
        VCFSource(tmp_path / "nohead.vcf")
    with pytest.raises(FileNotFoundError, match="absent.vcf"):
        VCFSource(tmp_path / "absent.vcf")


def test_array_source_validation():
    with pytest.raises(ValueError, match="0/1/2 or -1"):
        ArraySource(np.array([[0, 3]], np.int8))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        ArraySource(np.array([[0.5, np.inf]]))
    with pytest.raises(ValueError, match="2 sample IDs for 1"):
        ArraySource(np.zeros((1, 2), np.int8), ["a", "b"])
    with pytest.raises(ValueError, match="chunk_size"):
        next(ArraySource(np.zeros((1, 2), np.int8)).chunks(0))


def test_open_genotypes_needs_exactly_one(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        open_genotypes()
    with pytest.raises(ValueError, match="exactly one"):
        open_genotypes(vcf="a.vcf", bfile="b")
    x, samples, snps, ref, alt = random_genotypes(3, 2)
    write_plink(tmp_path / "p", x, samples, snps, ref, alt)
    assert isinstance(open_genotypes(bfile=tmp_path / "p"), PlinkSource)
    vcf = write_vcf(tmp_path / "v.vcf", samples, dosage_records(x, snps, ref, alt))
    assert isinstance(open_genotypes(vcf=vcf), VCFSource)


# --------------------------------------------------------------------------- labels

PANEL = ("sample\tpop\tsuper_pop\tgender\t\t\n"
         "HG00096\tGBR\tEUR\tmale\n"
         "HG00097\tGBR\tEUR\tfemale\n"
         "NA18486\tYRI\tAFR\tmale\n"
         "NA19017\tLWK\tAFR\tfemale\n")


def test_read_1000_genomes_panel(tmp_path):
    (tmp_path / "all.panel").write_text(PANEL)
    lab = read_labels(tmp_path / "all.panel", ["NA18486", "HG00096", "HG00097"])
    assert lab.sample_ids == ["NA18486", "HG00096", "HG00097"]
    assert lab.population.tolist() == ["YRI", "GBR", "GBR"]
    assert lab.super_population.tolist() == ["AFR", "EUR", "EUR"]
    assert lab.index.tolist() == [0, 1, 2] and lab.n_missing == 0 and lab.n_unused == 1


def test_read_labels_formats(tmp_path):
    (tmp_path / "two.txt").write_text("a  POP1\nb POP2\n\nc POP1\n")
    lab = read_labels(tmp_path / "two.txt", ["c", "a"])
    assert lab.population.tolist() == ["POP1", "POP1"] and lab.super_population is None
    (tmp_path / "hdr.tsv").write_text("Super_Population\tSample_ID\tPopulation\nEUR\ta\tCEU\nAFR\tb\tYRI\n")
    lab = read_labels(tmp_path / "hdr.tsv", ["b", "a"])
    assert lab.population.tolist() == ["YRI", "CEU"] and lab.super_population.tolist() == ["AFR", "EUR"]
    (tmp_path / "iid.txt").write_text("#IID population\na X\n")
    assert read_labels(tmp_path / "iid.txt", ["a"]).population.tolist() == ["X"]


def test_read_labels_missing_duplicates_and_bad_lines(tmp_path):
    (tmp_path / "all.panel").write_text(PANEL)
    ids = ["HG00096", "X1", "NA19017", "X2"]
    with pytest.raises(ValueError, match=r"2 of 4 genotype samples have no label.*X1, X2"):
        read_labels(tmp_path / "all.panel", ids)
    with pytest.warns(UserWarning, match="2 genotype samples have no label"):
        lab = read_labels(tmp_path / "all.panel", ids, missing="drop")
    assert lab.index.tolist() == [0, 2] and lab.sample_ids == ["HG00096", "NA19017"]
    assert lab.missing_ids == ["X1", "X2"] and lab.n_unused == 2
    assert "2 genotype samples have no label" in str(lab)
    (tmp_path / "dup.txt").write_text("sample pop\na X\nb Y\na Z\n")
    with pytest.raises(ValueError, match=r"duplicate sample ID.*a \(line 4\)"):
        read_labels(tmp_path / "dup.txt", ["a"])
    (tmp_path / "short.txt").write_text("sample pop super_pop\na X EUR\nb Y\n")
    with pytest.raises(ValueError, match="line 3: 2 column"):
        read_labels(tmp_path / "short.txt", ["a"])
    (tmp_path / "nopop.txt").write_text("sample gender\na male\n")
    with pytest.raises(ValueError, match="no population column"):
        read_labels(tmp_path / "nopop.txt", ["a"])
    with pytest.raises(ValueError, match="missing must be"):
        read_labels(tmp_path / "all.panel", ids, missing="keep")
