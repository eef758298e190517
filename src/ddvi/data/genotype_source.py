"""Genotype sources: anything whose samples can be streamed in blocks of SNPs.

Every source streams :class:`GenotypeChunk` objects: ``dosages`` is float32 of shape
(n_samples, k) holding the count (0/1/2) of the *counted* allele, NaN for a missing call, and
``flags`` marks the records QC must drop (FLAG_* codes). This module holds the interface, the
in-memory :class:`ArraySource` and :class:`SampleSubset`; the file readers are
:mod:`ddvi.data.vcf_read` and :mod:`ddvi.data.plink`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["FLAG_MULTIALLELIC", "FLAG_NON_DIPLOID", "FLAG_NON_SNP", "FLAG_OK", "ArraySource", "GenotypeChunk",
           "GenotypeSource", "SampleSubset", "as_source", "check_unique", "first_ids"]

FLAG_OK, FLAG_MULTIALLELIC, FLAG_NON_SNP, FLAG_NON_DIPLOID = 0, 1, 2, 3


def first_ids(ids: Sequence[str], n: int = 5) -> str:
    """The first ``n`` of ``ids``, comma-separated (``...`` when there are more)."""
    shown = ", ".join(map(str, list(ids)[:n]))
    return shown + (", ..." if len(ids) > n else "")


def check_unique(ids: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the duplicates when ``ids`` are not unique."""
    uniq, counts = np.unique(np.asarray(ids, dtype=object).astype(str), return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise ValueError(f"{what}: {len(dups)} duplicate sample ID(s): {first_ids(dups)}")


@dataclass
class GenotypeChunk:
    """A block of k SNPs for all samples.

    ``dosages`` (n_samples, k) float32 counted-allele dosages with NaN for missing; ``flags`` (k,)
    uint8 FLAG_* codes; ``ref``/``alt`` the other/counted allele per SNP (None if unknown).
    """

    dosages: np.ndarray
    snp_ids: list[str]
    flags: np.ndarray
    ref: list[str] | None = None
    alt: list[str] | None = None


class GenotypeSource(abc.ABC):
    """A set of samples whose genotypes can be streamed (repeatedly) in SNP chunks."""

    @property
    @abc.abstractmethod
    def sample_ids(self) -> list[str]: ...

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @abc.abstractmethod
    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        """Stream the SNPs in blocks of at most ``chunk_size``; each call starts from the beginning."""


def check_chunk_size(chunk_size: int) -> None:
    """Raise ``ValueError`` unless ``chunk_size`` is at least 1."""
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


class ArraySource(GenotypeSource):
    """In-memory genotypes (n_samples, n_snps): integers with -1 for missing, or floats with NaN."""

    def __init__(self, dosages: np.ndarray, sample_ids: Sequence[str] | None = None,
                 snp_ids: Sequence[str] | None = None, flags: np.ndarray | None = None,
                 ref: Sequence[str] | None = None, alt: Sequence[str] | None = None):
        x = np.asarray(dosages)
        if x.ndim != 2:
            raise ValueError(f"dosages must be 2-D (n_samples, n_snps), got shape {x.shape}")
        if np.issubdtype(x.dtype, np.integer):
            bad = ~np.isin(x, (-1, 0, 1, 2))
            if bad.any():
                raise ValueError(f"integer dosages must be 0/1/2 or -1 (missing); {int(bad.sum())} "
                                 f"entries are not, e.g. {x[bad][0]}")
            x = np.where(x < 0, np.nan, x).astype(np.float32)
        elif np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
            bad = ~np.isnan(x) & ((x < 0) | (x > 2))
            bad |= np.isinf(x)
            if bad.any():
                raise ValueError(f"float dosages must lie in [0, 2] or be NaN (missing); "
                                 f"{int(bad.sum())} entries do not")
        else:
            raise ValueError(f"dosages must be numeric, got dtype {x.dtype}")
        n, m = x.shape
        self._ids = [str(s) for s in sample_ids] if sample_ids is not None else [f"s{i}" for i in range(n)]
        if len(self._ids) != n:
            raise ValueError(f"{len(self._ids)} sample IDs for {n} genotype rows")
        check_unique(self._ids, "genotype array")
        self.snp_ids = [str(s) for s in snp_ids] if snp_ids is not None else [f"snp{j}" for j in range(m)]
        for name, vals in (("snp_ids", self.snp_ids), ("ref", ref), ("alt", alt)):
            if vals is not None and len(vals) != m:
                raise ValueError(f"{len(vals)} {name} for {m} genotype columns")
        self.flags = np.zeros(m, np.uint8) if flags is None else np.asarray(flags, np.uint8)
        if self.flags.shape != (m,):
            raise ValueError(f"flags must have shape ({m},), got {self.flags.shape}")
        self.ref = None if ref is None else [str(a) for a in ref]
        self.alt = None if alt is None else [str(a) for a in alt]
        self._x = x

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        check_chunk_size(chunk_size)
        for a in range(0, self._x.shape[1], chunk_size):
            s = slice(a, a + chunk_size)
            yield GenotypeChunk(self._x[:, s].copy(), self.snp_ids[s], self.flags[s].copy(),
                                None if self.ref is None else self.ref[s],
                                None if self.alt is None else self.alt[s])


class SampleSubset(GenotypeSource):
    """The samples ``index`` (in that order) of another source, e.g. a held-out split.

    Example:
        >>> src = ArraySource(np.array([[0, 1], [2, 2], [1, 0]]), ["a", "b", "c"])
        >>> sub = SampleSubset(src, [2, 0])
        >>> sub.sample_ids, next(sub.chunks()).dosages.tolist()
        (['c', 'a'], [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(self, source: GenotypeSource, index: Sequence[int] | np.ndarray):
        idx = np.asarray(index, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError("a sample subset needs a non-empty 1-D index")
        if idx.min() < 0 or idx.max() >= source.n_samples:
            raise ValueError(f"sample index out of range for {source.n_samples} samples")
        self.source, self.index = source, idx
        ids = source.sample_ids
        self._ids = [ids[i] for i in idx]
        check_unique(self._ids, "sample subset")

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        for chunk in self.source.chunks(chunk_size):
            yield replace(chunk, dosages=chunk.dosages[self.index])


def as_source(x: GenotypeSource | np.ndarray) -> GenotypeSource:
    """A GenotypeSource as is, or an array wrapped in :class:`ArraySource`."""
    return x if isinstance(x, GenotypeSource) else ArraySource(np.asarray(x))

