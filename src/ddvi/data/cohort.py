"""A genotype cohort with its sample and SNP annotations, and the 1000 Genomes population tables.

The offline cohorts built on these (:mod:`ddvi.data.g1k_reference`, :mod:`ddvi.data.simulation`) are
SYNTHETIC and say so in :attr:`Cohort.description`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["G1K_POPULATIONS", "G1K_SIZES", "G1K_SUPER", "SUPER_POPULATIONS", "Cohort", "choose_snps"]

SUPER_POPULATIONS: tuple[str, ...] = ("AFR", "AMR", "EAS", "EUR", "SAS")
G1K_SUPER: dict[str, str] = {
    "ACB": "AFR", "ASW": "AFR", "BEB": "SAS", "CDX": "EAS", "CEU": "EUR", "CHB": "EAS", "CHS": "EAS",
    "CLM": "AMR", "ESN": "AFR", "FIN": "EUR", "GBR": "EUR", "GIH": "SAS", "GWD": "AFR", "IBS": "EUR",
    "ITU": "SAS", "JPT": "EAS", "KHV": "EAS", "LWK": "AFR", "MSL": "AFR", "MXL": "AMR", "PEL": "AMR",
    "PJL": "SAS", "PUR": "AMR", "STU": "SAS", "TSI": "EUR", "YRI": "AFR",
}  # fmt: skip
G1K_POPULATIONS: tuple[str, ...] = tuple(G1K_SUPER)  # alphabetical, the column order of the reference
# Phase 3 sample counts (2 504 individuals), as in reference_PC3s.txt.
G1K_SIZES: dict[str, int] = {
    "ACB": 96, "ASW": 61, "BEB": 86, "CDX": 93, "CEU": 99, "CHB": 103, "CHS": 105, "CLM": 94,
    "ESN": 99, "FIN": 99, "GBR": 91, "GIH": 103, "GWD": 113, "IBS": 107, "ITU": 102, "JPT": 104,
    "KHV": 99, "LWK": 99, "MSL": 85, "MXL": 64, "PEL": 85, "PJL": 96, "PUR": 104, "STU": 102,
    "TSI": 107, "YRI": 108,
}  # fmt: skip



@dataclass
class Cohort:
    """Genotypes of a cohort plus sample and SNP annotations.

    ``chrom``/``pos`` (1-based)/``ref``/``alt`` are optional per-SNP arrays used by :func:`write_vcf`.
    """

    genotypes: np.ndarray  # int8 (n_samples, n_snps), alt-allele counts 0/1/2, -1 = missing
    sample_ids: list[str]
    populations: np.ndarray  # str (n_samples,)
    super_populations: np.ndarray  # str (n_samples,)
    snp_ids: list[str]
    description: str
    chrom: np.ndarray | None = field(default=None, repr=False)
    pos: np.ndarray | None = field(default=None, repr=False)
    ref: np.ndarray | None = field(default=None, repr=False)
    alt: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        g = np.asarray(self.genotypes)
        if g.ndim != 2:
            raise ValueError(f"Cohort.genotypes must be 2-D (n_samples, n_snps), got shape {g.shape}")
        if not np.issubdtype(g.dtype, np.integer):
            raise ValueError(f"Cohort.genotypes must be integers (0/1/2, -1 missing), got {g.dtype}")
        if g.size and (g.min() < -1 or g.max() > 2):
            raise ValueError("Cohort.genotypes must hold 0, 1, 2 or -1 (missing)")
        self.genotypes = g.astype(np.int8, copy=False)
        n, m = g.shape
        self.sample_ids = [str(s) for s in self.sample_ids]
        self.snp_ids = [str(s) for s in self.snp_ids]
        self.populations = np.asarray(self.populations, dtype=str)
        self.super_populations = np.asarray(self.super_populations, dtype=str)
        for name, length, want in (
            ("sample_ids", len(self.sample_ids), n),
            ("populations", len(self.populations), n),
            ("super_populations", len(self.super_populations), n),
            ("snp_ids", len(self.snp_ids), m),
        ):
            if length != want:
                raise ValueError(f"Cohort.{name} has {length} entries but genotypes imply {want}")
        for name in ("chrom", "pos", "ref", "alt"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.int64 if name == "pos" else str)
                if value.shape != (m,):
                    raise ValueError(f"Cohort.{name} must have shape ({m},), got {value.shape}")
                setattr(self, name, value)

    @property
    def n_samples(self) -> int:
        return int(self.genotypes.shape[0])

    @property
    def n_snps(self) -> int:
        return int(self.genotypes.shape[1])


def choose_snps(n_total: int, n_snps: int | None, rng: np.random.Generator) -> np.ndarray:
    """A seeded random subset of ``n_snps`` of ``n_total`` SNP indices, in order (None: all)."""
    if n_snps is None:
        return np.arange(n_total)
    if int(n_snps) != n_snps or n_snps < 1 or n_snps > n_total:
        raise ValueError(f"n_snps must be an integer in 1..{n_total} or None (all), got {n_snps}")
    return np.sort(rng.choice(n_total, size=int(n_snps), replace=False))

