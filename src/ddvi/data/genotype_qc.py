"""Streaming per-SNP quality control of a genotype source (plink-style --maf / --geno filters)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from ddvi.data.genotype_source import (
    FLAG_MULTIALLELIC,
    FLAG_NON_DIPLOID,
    FLAG_NON_SNP,
    GenotypeSource,
)

__all__ = ["QCChunk", "QCConfig", "QCReport", "qc_chunks", "qc_stream"]


@dataclass(frozen=True)
class QCConfig:
    """Per-SNP filters: minor allele frequency, missing-call rate, and biallelic SNPs only.

    A SNP is kept when MAF >= ``maf`` and its missing rate <= ``max_missing`` (plink --maf/--geno).
    With ``biallelic_snps_only=False`` multi-allelic sites (non-reference count) and indels are
    kept; non-diploid records are always dropped.
    """

    maf: float = 0.01
    max_missing: float = 0.1
    biallelic_snps_only: bool = True

    def __post_init__(self):
        if not 0.0 <= self.maf < 0.5:
            raise ValueError(f"maf must be in [0, 0.5), got {self.maf}")
        if not 0.0 <= self.max_missing <= 1.0:
            raise ValueError(f"max_missing must be in [0, 1], got {self.max_missing}")


@dataclass
class QCReport:
    """Counts filled while streaming through :func:`qc_chunks` (each SNP counted at its first failure)."""

    n_samples: int = 0
    n_variants_seen: int = 0
    dropped_multiallelic: int = 0
    dropped_non_snp: int = 0
    dropped_non_diploid: int = 0
    dropped_duplicate_id: int = 0
    dropped_missing: int = 0
    dropped_monomorphic: int = 0
    dropped_maf: int = 0
    n_missing_imputed: int = 0
    n_kept: int = 0
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        c = self.config
        steps = [
            ("multi-allelic sites", self.dropped_multiallelic),
            ("non-SNP (indel/symbolic)", self.dropped_non_snp),
            ("non-diploid records", self.dropped_non_diploid),
            ("duplicate SNP ID", self.dropped_duplicate_id),
            (f"missing rate > {c.get('max_missing', '?')}", self.dropped_missing),
            ("monomorphic", self.dropped_monomorphic),
            (f"MAF < {c.get('maf', '?')}", self.dropped_maf),
        ]
        out = [f"QC: {self.n_samples} samples, {self.n_variants_seen} variants read"]
        out += [f"  dropped {name + ':':<28}{count:>10}" for name, count in steps]
        out.append(f"  {'kept SNPs:':<36}{self.n_kept:>10}")
        out.append(f"  {'missing calls imputed (2p):':<36}{self.n_missing_imputed:>10}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class QCChunk:
    """A QC'd block: imputed float32 dosages (n, k), kept ids, means (2p), and which columns of the
    raw chunk starting at variant ``offset`` were kept."""

    dosages: np.ndarray
    snp_ids: list[str]
    mean: np.ndarray
    keep: np.ndarray
    ref: list[str] | None
    alt: list[str] | None
    offset: int


def qc_stream(source: GenotypeSource, config: QCConfig | None = None, report: QCReport | None = None,
              chunk_size: int = 4096) -> Iterator[QCChunk]:
    """Stream QC'd chunks with the per-SNP decisions; ``report`` (if given) is filled as we go."""
    config = config or QCConfig()
    report = report if report is not None else QCReport()
    report.n_samples = source.n_samples
    report.config = asdict(config)
    seen: set[str] = set()
    for ch in source.chunks(chunk_size):
        x, fl = ch.dosages, ch.flags
        k = x.shape[1]
        offset = report.n_variants_seen
        report.n_variants_seen += k
        alive = np.ones(k, bool)

        def drop(mask: np.ndarray, alive: np.ndarray = alive) -> int:
            hit = alive & mask
            alive[hit] = False
            return int(hit.sum())

        if config.biallelic_snps_only:
            report.dropped_multiallelic += drop(fl == FLAG_MULTIALLELIC)
            report.dropped_non_snp += drop(fl == FLAG_NON_SNP)
        report.dropped_non_diploid += drop(fl == FLAG_NON_DIPLOID)
        ids = np.asarray(ch.snp_ids, dtype=object)
        _, first = np.unique(ids.astype(str), return_index=True)
        dup = np.ones(k, bool)
        dup[first] = False
        dup |= np.fromiter((s in seen for s in ch.snp_ids), bool, k)
        seen.update(ch.snp_ids)
        report.dropped_duplicate_id += drop(dup)
        miss = np.isnan(x)
        n_obs = x.shape[0] - miss.sum(axis=0)
        report.dropped_missing += drop((n_obs == 0) | (1.0 - n_obs / x.shape[0] > config.max_missing))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(miss, 0.0, x).sum(axis=0, dtype=np.float64) / n_obs
        p = mean / 2.0
        report.dropped_monomorphic += drop((p <= 0.0) | (p >= 1.0))
        report.dropped_maf += drop(np.minimum(p, 1.0 - p) < config.maf)
        if not alive.any():
            continue
        xk = x[:, alive]
        mk = miss[:, alive]
        mu = mean[alive]
        n_imp = int(mk.sum())
        if n_imp:
            xk = np.where(mk, mu.astype(np.float32)[None, :], xk)
        report.n_missing_imputed += n_imp
        report.n_kept += int(alive.sum())
        sel = np.flatnonzero(alive)
        yield QCChunk(np.ascontiguousarray(xk, dtype=np.float32), [ch.snp_ids[i] for i in sel], mu, alive,
                      None if ch.ref is None else [ch.ref[i] for i in sel],
                      None if ch.alt is None else [ch.alt[i] for i in sel], offset)


def qc_chunks(source: GenotypeSource, config: QCConfig | None = None, report: QCReport | None = None,
              chunk_size: int = 4096) -> Iterator[np.ndarray]:
    """Stream cleaned float32 chunks (n, k) with missing calls imputed by 2p; fills ``report``."""
    for qc in qc_stream(source, config, report, chunk_size):
        yield qc.dosages

