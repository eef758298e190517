"""GenotypePCA: streaming PCA of genotypes, projection, and safe save/load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fixtures_genotypes import dosage_records, random_genotypes, write_plink, write_vcf

from ddvi.checkpoint import CheckpointError
from ddvi.data.genotype_pca import GenotypePCA
from ddvi.data.genotypes import ArraySource, PlinkSource, QCConfig, VCFSource, qc_chunks

QC = QCConfig(maf=0.05, max_missing=0.2)


def dense_pcs(x_int, qc=QC, standardize=True):
    """Reference: QC'd, imputed, centred (and standardised) dense matrix and its SVD."""
    src = ArraySource(x_int)
    x = np.concatenate(list(qc_chunks(src, qc)), axis=1).astype(np.float64)
    p = x.mean(axis=0) / 2  # imputation by the mean leaves the mean unchanged
    xc = x - 2 * p
    if standardize:
        xc /= np.sqrt(2 * p * (1 - p))
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    return xc, u * s, s**2, vt.T


def assert_same_up_to_sign(a, b, atol):
    assert a.shape == b.shape
    signs = np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a, b * signs, atol=atol)


@pytest.fixture(scope="module")
def cohort():
    return random_genotypes(40, 300, seed=7, missing=0.03)


@pytest.mark.parametrize("standardize", [True, False])
def test_pcs_match_dense_svd(cohort, standardize):
    x = cohort[0]
    pca = GenotypePCA(n_components=5, standardize=standardize, chunk_size=64)
    emb = pca.fit_transform(ArraySource(x), qc=QC)
    _, scores, ev, _ = dense_pcs(x, standardize=standardize)
    assert emb.dtype == np.float32 and emb.shape == (40, 5)
    rel = np.abs(scores[:, :5]).max()
    assert_same_up_to_sign(emb * 30.0 / rel, scores[:, :5] / rel, atol=1e-4)
    np.testing.assert_allclose(pca.eigenvalues_, ev[:5], rtol=1e-4)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ev[:5] / ev.sum(), rtol=1e-4)
    assert pca.qc_report_.n_kept == pca.components_.shape[0] == len(pca.snp_ids_)


def test_default_scale_is_30(cohort):
    x = cohort[0]
    a = GenotypePCA(n_components=3).fit_transform(x, qc=QC)
    b = GenotypePCA(n_components=3, scale=1.0).fit_transform(x, qc=QC)
    np.testing.assert_allclose(a * 30.0, b, rtol=1e-6)


def test_chunk_size_does_not_change_the_fit(cohort):
    x = cohort[0]
    ref = GenotypePCA(n_components=4, chunk_size=10_000).fit(x, qc=QC)
    for cs in (1, 3):
        pca = GenotypePCA(n_components=4, chunk_size=cs).fit(x, qc=QC)
        np.testing.assert_allclose(pca.embedding_, ref.embedding_, atol=1e-5)
        np.testing.assert_allclose(pca.components_, ref.components_, atol=1e-5)
        assert pca.snp_ids_ == ref.snp_ids_


def test_projecting_training_samples_reproduces_fit_transform(cohort):
    x, samples, snps, *_ = cohort
    src = ArraySource(x, samples, snps)
    pca = GenotypePCA(n_components=6, chunk_size=50)
    emb = pca.fit_transform(src, qc=QC)
    proj = pca.transform(src)
    np.testing.assert_allclose(proj, emb, atol=1e-4 * np.abs(emb).max())
    assert pca.transform_report_["n_matched"] == len(pca.snp_ids_)


def test_projection_of_new_samples_matches_ids_alleles_and_imputes(cohort):
    x, samples, snps, ref, alt = cohort
    train, new = x[:30], x[30:]
    pca = GenotypePCA(n_components=4, chunk_size=32).fit(
        ArraySource(train, samples[:30], snps, ref=ref, alt=alt), qc=QC)
    kept = {s: j for j, s in enumerate(snps)}
    # expected: dense projection with the training mean/scale; absent SNPs contribute 0
    cols = np.array([kept[s] for s in pca.snp_ids_])
    xn = new[:, cols].astype(np.float64)
    xn[xn < 0] = np.nan
    xn = np.where(np.isnan(xn), pca.mean_, xn)
    xc = (xn - pca.mean_) / pca.snp_scale_
    drop = np.arange(0, len(cols), 5)  # these training SNPs will be absent from the new data
    xc[:, drop] = 0.0
    expected = xc @ pca.components_.astype(np.float64) / 30.0
    # new data: shuffled SNP order, some absent, one allele-swapped, one with a different allele pair,
    # plus unknown SNPs
    rng = np.random.default_rng(0)
    present = np.setdiff1d(np.arange(len(cols)), drop)
    order = rng.permutation(present)
    new_x = new[:, cols[order]].copy()
    new_ref = [ref[cols[j]] for j in order]
    new_alt = [alt[cols[j]] for j in order]
    new_ids = [pca.snp_ids_[j] for j in order]
    new_ref[0], new_alt[0] = new_alt[0], new_ref[0]
    new_x[:, 0] = np.where(new_x[:, 0] < 0, -1, 2 - new_x[:, 0])
    extra = np.zeros((len(new), 3), np.int8)
    src = ArraySource(np.concatenate([new_x, extra], axis=1), samples[30:], new_ids + ["u1", "u2", "u3"],
                      ref=new_ref + ["A"] * 3, alt=new_alt + ["C"] * 3)
    with pytest.warns(UserWarning, match="absent or unusable"):
        proj = pca.transform(src)
    np.testing.assert_allclose(proj, expected, atol=1e-5)
    rep = pca.transform_report_
    assert rep["n_train_snps_absent"] == len(drop) and rep["n_allele_flipped"] == 1
    assert rep["n_new_snps_ignored"] == 3 and rep["n_matched"] == len(present)
    # a different allele pair is treated as absent, not silently used
    bad_alt = list(new_alt)
    bad_alt[1] = "N" if new_ref[1] != "N" else "T"
    with pytest.warns(UserWarning):
        pca.transform(ArraySource(new_x, samples[30:], new_ids, ref=new_ref, alt=bad_alt))
    assert pca.transform_report_["n_allele_mismatch"] == 1
    with pytest.raises(ValueError, match="none of the .* training SNPs"):
        pca.transform(ArraySource(new_x[:, :2], snp_ids=["zz1", "zz2"]))


def test_vcf_and_plink_give_the_same_pcs(tmp_path):
    x, samples, snps, ref, alt = random_genotypes(20, 80, seed=9, missing=0.02)
    vcf = write_vcf(tmp_path / "g.vcf", samples, dosage_records(x, snps, ref, alt))
    bfile = write_plink(tmp_path / "g", x, samples, snps, ref, alt)
    a = GenotypePCA(n_components=3, chunk_size=16).fit(VCFSource(vcf), qc=QC)
    b = GenotypePCA(n_components=3, chunk_size=16).fit(PlinkSource(bfile), qc=QC)
    np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-6)
    assert a.ref_ == b.ref_ and a.alt_ == b.alt_
    np.testing.assert_allclose(b.transform(VCFSource(vcf)), a.embedding_, atol=1e-4)


def test_n_components_clipped_with_a_warning(cohort):
    x = cohort[0][:8]
    with pytest.warns(UserWarning, match="clipped to 7"):
        pca = GenotypePCA().fit(x, qc=QC)
    assert pca.n_components_ == 7 and pca.embedding_.shape == (8, 7)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="no SNPs left after QC"):
        GenotypePCA(n_components=2).fit(np.zeros((5, 4), np.int8))
    with pytest.raises(ValueError, match="at least 2 samples"):
        GenotypePCA(n_components=2).fit(np.zeros((1, 4), np.int8))
    with pytest.raises(ValueError, match="n_components"):
        GenotypePCA(n_components=0).fit(np.zeros((3, 4), np.int8))
    with pytest.raises(RuntimeError, match="not fitted"):
        GenotypePCA().transform(np.zeros((3, 4), np.int8))


def test_save_load_round_trip_and_corruption(cohort, tmp_path):
    x, samples, snps, ref, alt = cohort
    src = ArraySource(x, samples, snps, ref=ref, alt=alt)
    pca = GenotypePCA(n_components=5, chunk_size=100).fit(src, qc=QC)
    path = tmp_path / "pca.safetensors"
    pca.save(path)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temporary file
    back = GenotypePCA.load(path)
    for name in ("components_", "mean_", "snp_scale_", "eigenvalues_", "explained_variance_ratio_",
                 "embedding_"):
        a, b = getattr(pca, name), getattr(back, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert back.snp_ids_ == pca.snp_ids_ and back.sample_ids_ == pca.sample_ids_
    assert back.ref_ == pca.ref_ and back.qc_report_.to_dict() == pca.qc_report_.to_dict()
    assert back.qc_config_ == QC and back.n_components_ == 5 and back.scale == 30.0
    np.testing.assert_array_equal(back.transform(src), pca.transform(src))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        GenotypePCA.load(bad)
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError):
        GenotypePCA.load(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        GenotypePCA.load(tmp_path / "absent.safetensors")


def test_rank_deficient_data_keeps_only_real_components():
    base = np.array([[0, 1, 2, 1], [2, 1, 0, 1], [1, 1, 1, 0]], np.int8)
    x = np.concatenate([base, base, base], axis=0)  # 9 samples, only 3 distinct
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pca = GenotypePCA(n_components=5).fit(x, qc=QCConfig(maf=0.0))
    assert pca.n_components_ == 2
    assert np.isfinite(pca.components_).all()
