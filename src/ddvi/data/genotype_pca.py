"""The paper's genotype preprocessing: PCA to (up to) 1000 components, divided by 30 (appendix I).

PCA is computed by streaming SNP chunks twice:

1. QC each chunk, impute missing calls by 2p, centre by 2p and (``standardize=True``, as in
   eigensoft / plink --pca) divide by sqrt(2p(1-p)); accumulate the sample Gram matrix
   G = sum_chunks Xc Xc^T (n x n, float64). Its top eigenpairs G = U S^2 U^T give the training
   scores U S.
2. Re-read the same SNPs and store their loadings V = Xc^T U S^-1 (n_snps x k, float32), so that
   new samples project as Xc_new V (SNPs matched by ID, alleles checked).

Memory is O(n^2 + n_snps * k); time is one matmul per chunk and one n x n eigendecomposition.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from ddvi.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ddvi.data.genotypes import (
    FLAG_NON_DIPLOID,
    GenotypeSource,
    QCConfig,
    QCReport,
    as_source,
    qc_stream,
)

__all__ = ["GenotypePCA"]

_KIND = "ddvi-genotype-pca"
_REL_TOL = 1e-10  # eigenvalues below this fraction of the largest are treated as zero


class GenotypePCA:
    """PCA of genotypes with the paper's scaling: ``transform`` returns PC scores / ``scale``.

    Fitted attributes: ``n_components_``, ``snp_ids_``, ``mean_`` (2p per kept SNP),
    ``snp_scale_`` (sqrt(2p(1-p)) or 1), ``components_`` (SNP loadings, n_snps x k),
    ``eigenvalues_``, ``explained_variance_ratio_``, ``embedding_`` (training scores / scale),
    ``sample_ids_``, ``qc_report_``; after ``transform``: ``transform_report_``.
    """

    def __init__(self, n_components: int = 1000, scale: float = 30.0, standardize: bool = True,
                 chunk_size: int = 4096):
        self.n_components = n_components
        self.scale = scale
        self.standardize = standardize
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ fitting

    def _check_params(self) -> None:
        if int(self.n_components) < 1:
            raise ValueError(f"n_components must be >= 1, got {self.n_components}")
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(f"scale must be a positive number, got {self.scale}")

    def _snp_scale(self, mean: np.ndarray) -> np.ndarray:
        if not self.standardize:
            return np.ones_like(mean)
        p = mean / 2.0
        return np.sqrt(2.0 * p * (1.0 - p))

    def fit(self, source: GenotypeSource | np.ndarray, qc: QCConfig | None = None) -> GenotypePCA:
        """Two streaming passes over ``source``: QC + Gram matrix, then SNP loadings."""
        self._check_params()
        source = as_source(source)
        qc = qc or QCConfig()
        n = source.n_samples
        if n < 2:
            raise ValueError(f"PCA needs at least 2 samples, got {n}")
        report = QCReport()
        gram = np.zeros((n, n), np.float64)
        keep_parts, ids, means, refs, alts = [], [], [], [], []  # keep_parts: (offset, mask)
        has_alleles = True
        for ch in qc_stream(source, qc, report, self.chunk_size):
            keep_parts.append((ch.offset, ch.keep))
            ids.extend(ch.snp_ids)
            means.append(ch.mean)
            if ch.ref is None or ch.alt is None:
                has_alleles = False
            else:
                refs.extend(ch.ref)
                alts.extend(ch.alt)
            xc = self._centre(ch.dosages, ch.mean, self._snp_scale(ch.mean))
            gram += xc @ xc.T
        m = report.n_kept
        if m == 0:
            raise ValueError(f"no SNPs left after QC, nothing to fit:\n{report}")
        keep = np.zeros(report.n_variants_seen, bool)
        for offset, part in keep_parts:
            keep[offset:offset + len(part)] = part
        mean = np.concatenate(means)
        k = min(int(self.n_components), n - 1, m)
        if k < self.n_components:
            warnings.warn(f"n_components={self.n_components} clipped to {k} (n_samples - 1 = {n - 1}, "
                          f"kept SNPs = {m})", stacklevel=2)
        evals, evecs = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])
        evals, evecs = evals[::-1], evecs[:, ::-1]
        good = evals > _REL_TOL * max(evals[0], 0.0)
        if not good.all():
            warnings.warn(f"only {int(good.sum())} of {k} components have non-zero variance; "
                          f"keeping those", stacklevel=2)
            evals, evecs = evals[good], evecs[:, good]
            k = int(good.sum())
        if k == 0:
            raise ValueError("the genotypes have no variance after centring; cannot compute PCs")
        # deterministic signs: the largest-magnitude sample score of each PC is positive
        big = np.abs(evecs).argmax(axis=0)
        evecs = evecs * np.sign(evecs[big, np.arange(k)])
        sv = np.sqrt(evals)
        self.n_components_ = k
        self.eigenvalues_ = evals
        self.total_variance_ = float(np.trace(gram))
        self.explained_variance_ratio_ = evals / self.total_variance_
        self.snp_ids_ = ids
        self.ref_ = refs if has_alleles else None
        self.alt_ = alts if has_alleles else None
        self.mean_ = mean
        self.snp_scale_ = self._snp_scale(mean)
        self.sample_ids_ = list(source.sample_ids)
        self.qc_report_ = report
        self.qc_config_ = qc
        self.embedding_ = (evecs * (sv / self.scale)).astype(np.float32)
        self.components_ = self._loadings(source, keep, evecs / sv)
        return self

    @staticmethod
    def _centre(x: np.ndarray, mean: np.ndarray, snp_scale: np.ndarray) -> np.ndarray:
        return ((x - mean.astype(np.float32)) / snp_scale.astype(np.float32)).astype(np.float32)

    def _loadings(self, source: GenotypeSource, keep: np.ndarray, u_over_s: np.ndarray) -> np.ndarray:
        """Pass 2: V = Xc^T U S^-1 for exactly the variants pass 1 kept (IDs checked)."""
        m = len(self.snp_ids_)
        comp = np.empty((m, u_over_s.shape[1]), np.float32)
        w = u_over_s.astype(np.float32)
        offset = row = 0
        for ch in source.chunks(self.chunk_size):
            k = ch.dosages.shape[1]
            cols = np.flatnonzero(keep[offset:offset + k])
            offset += k
            if not len(cols):
                continue
            stop = row + len(cols)
            if [ch.snp_ids[c] for c in cols] != self.snp_ids_[row:stop]:
                raise ValueError("the genotype source changed between the two PCA passes (SNP IDs differ)")
            x = ch.dosages[:, cols]
            mu, sc = self.mean_[row:stop], self.snp_scale_[row:stop]
            x = np.where(np.isnan(x), mu.astype(np.float32)[None, :], x)
            comp[row:stop] = self._centre(x, mu, sc).T @ w
            row = stop
        if row != m or offset != len(keep):
            raise ValueError(f"the genotype source changed between the two PCA passes: pass 1 read "
                             f"{len(keep)} variants and kept {m}, pass 2 read {offset} and matched {row}")
        return comp

    def fit_transform(self, source: GenotypeSource | np.ndarray, qc: QCConfig | None = None) -> np.ndarray:
        """Fit and return the training scores / scale, float32 (n_samples, n_components_)."""
        return self.fit(source, qc).embedding_.copy()

    # ------------------------------------------------------------------ projection

    def transform(self, source: GenotypeSource | np.ndarray) -> np.ndarray:
        """Project samples onto the fitted PCs (SNPs matched by ID); returns scores / scale.

        Training SNPs absent from ``source`` (or with a different allele pair, or missing calls)
        are imputed with the training mean, i.e. contribute 0; a swapped REF/ALT is flipped.
        Counts are stored in ``transform_report_``.
        """
        self._check_fitted()
        source = as_source(source)
        index = {s: i for i, s in enumerate(self.snp_ids_)}
        m, k = self.components_.shape
        used = np.zeros(m, bool)
        scores = np.zeros((source.n_samples, k), np.float64)
        rep = dict(n_samples=source.n_samples, n_train_snps=m, n_matched=0, n_allele_flipped=0,
                   n_allele_mismatch=0, n_flagged=0, n_duplicate_ignored=0, n_new_snps_ignored=0,
                   n_missing_calls_imputed=0)
        for ch in source.chunks(self.chunk_size):
            rows = np.fromiter((index.get(s, -1) for s in ch.snp_ids), np.int64, len(ch.snp_ids))
            rep["n_new_snps_ignored"] += int((rows < 0).sum())
            ok = rows >= 0
            _, first = np.unique(np.where(ok, rows, -1), return_index=True)
            dup = ok.copy()
            dup[first] = False
            dup |= ok & used[np.maximum(rows, 0)]
            rep["n_duplicate_ignored"] += int(dup.sum())
            ok &= ~dup
            flagged = ok & (ch.flags == FLAG_NON_DIPLOID)
            rep["n_flagged"] += int(flagged.sum())
            ok &= ~flagged
            flip = np.zeros(len(rows), bool)
            if self.ref_ is not None and ch.ref is not None and ch.alt is not None:
                r = rows.clip(0)
                tr = np.asarray(self.ref_, dtype=object)[r]
                ta = np.asarray(self.alt_, dtype=object)[r]
                nr = np.asarray(ch.ref, dtype=object)
                na = np.asarray(ch.alt, dtype=object)
                same = (tr == nr) & (ta == na)
                flip = ok & (tr == na) & (ta == nr) & ~same
                bad = ok & ~same & ~flip
                rep["n_allele_flipped"] += int(flip.sum())
                rep["n_allele_mismatch"] += int(bad.sum())
                ok &= ~bad
            if not ok.any():
                continue
            cols = np.flatnonzero(ok)
            rr = rows[cols]
            used[rr] = True
            x = ch.dosages[:, cols]
            x = np.where(flip[cols][None, :], 2.0 - x, x).astype(np.float32)
            miss = np.isnan(x)
            rep["n_missing_calls_imputed"] += int(miss.sum())
            mu = self.mean_[rr]
            x = np.where(miss, mu.astype(np.float32)[None, :], x)
            scores += self._centre(x, mu, self.snp_scale_[rr]) @ self.components_[rr]
        rep["n_matched"] = int(used.sum())
        rep["n_train_snps_absent"] = m - rep["n_matched"]
        self.transform_report_ = rep
        if rep["n_matched"] == 0:
            raise ValueError(f"none of the {m} training SNPs were found in the new genotypes (matched by "
                             f"SNP ID; {rep['n_new_snps_ignored']} unknown IDs, "
                             f"{rep['n_allele_mismatch']} allele mismatches)")
        if rep["n_train_snps_absent"]:
            warnings.warn(f"{rep['n_train_snps_absent']} of {m} training SNPs are absent or unusable in the "
                          f"new genotypes and were imputed with the training mean (scores shrink towards 0)",
                          stacklevel=2)
        return (scores / self.scale).astype(np.float32)

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise RuntimeError("GenotypePCA is not fitted: call fit(...) or GenotypePCA.load(path) first")

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write arrays (safetensors) and settings/SNP IDs (JSON header), atomically, with a checksum."""
        self._check_fitted()
        arrays = {"components": self.components_, "mean": self.mean_, "snp_scale": self.snp_scale_,
                  "eigenvalues": self.eigenvalues_, "embedding": self.embedding_,
                  "explained_variance_ratio": self.explained_variance_ratio_}
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        meta = {
            "kind": _KIND,
            "params": {"n_components": self.n_components, "scale": self.scale,
                       "standardize": self.standardize, "chunk_size": self.chunk_size},
            "n_components_": self.n_components_, "total_variance_": self.total_variance_,
            "snp_ids": self.snp_ids_, "ref": self.ref_, "alt": self.alt_, "sample_ids": self.sample_ids_,
            "qc_config": asdict(self.qc_config_), "qc_report": self.qc_report_.to_dict(),
        }
        save_checkpoint(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path) -> GenotypePCA:
        """Read a model written by :meth:`save` (no pickle; checksum verified)."""
        tensors, meta = load_checkpoint(path)
        if meta.get("kind") != _KIND:
            raise CheckpointError(f"{path} is a ddvi checkpoint but not a GenotypePCA ({meta.get('kind')!r})")
        try:
            self = cls(**meta["params"])
            arr = {k: v.numpy() for k, v in tensors.items()}
            self.components_ = arr["components"]
            self.mean_, self.snp_scale_ = arr["mean"], arr["snp_scale"]
            self.eigenvalues_ = arr["eigenvalues"]
            self.explained_variance_ratio_ = arr["explained_variance_ratio"]
            self.embedding_ = arr["embedding"]
            self.n_components_ = int(meta["n_components_"])
            self.total_variance_ = float(meta["total_variance_"])
            self.snp_ids_, self.ref_, self.alt_ = meta["snp_ids"], meta["ref"], meta["alt"]
            self.sample_ids_ = meta["sample_ids"]
            self.qc_config_ = QCConfig(**meta["qc_config"])
            self.qc_report_ = QCReport(**meta["qc_report"])
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"GenotypePCA file {path} is incomplete: {err}") from err
        m, k = self.components_.shape
        if (len(self.snp_ids_) != m or self.mean_.shape != (m,) or self.snp_scale_.shape != (m,)
                or k != self.n_components_ or self.embedding_.shape != (len(self.sample_ids_), k)):
            raise CheckpointError(f"GenotypePCA file {path} has inconsistent shapes: components {m}x{k}, "
                                  f"{len(self.snp_ids_)} SNP IDs, embedding {self.embedding_.shape}")
        return self
