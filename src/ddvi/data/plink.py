"""Genotypes from PLINK 1 binary filesets (``.bed/.bim/.fam``) read with bed-reader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ddvi.data.genotype_source import (
    FLAG_NON_SNP,
    FLAG_OK,
    GenotypeChunk,
    GenotypeSource,
    check_chunk_size,
    check_unique,
)

__all__ = ["PlinkSource"]

_PLINK_MAGIC = bytes([0x6C, 0x1B, 0x01])


class PlinkSource(GenotypeSource):
    """Genotypes from PLINK 1 binary files ``prefix.bed/.bim/.fam`` via bed-reader.

    Counts allele A1 (5th .bim column; bed-reader's ``count_A1=True``), which plink sets to ALT
    when converting a VCF. Sample IDs are the .fam IID column. Records whose alleles are not single
    bases (indels, I/D codes) get FLAG_NON_SNP.
    """

    def __init__(self, prefix: str | Path, num_threads: int | None = None):
        prefix = Path(prefix)
        if prefix.suffix in (".bed", ".bim", ".fam"):
            prefix = prefix.with_suffix("")
        self.prefix = prefix
        paths = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
        absent = [str(p) for p in paths.values() if not p.is_file()]
        if absent:
            raise FileNotFoundError(f"PLINK fileset {prefix}: missing {', '.join(absent)}")
        self.bed_path = paths[".bed"]
        n = _count_lines(paths[".fam"])
        m = _count_lines(paths[".bim"])
        with open(self.bed_path, "rb") as f:
            magic = f.read(3)
        if magic != _PLINK_MAGIC:
            raise ValueError(f"{self.bed_path} is not a SNP-major PLINK .bed file (first bytes "
                             f"{magic.hex()}, expected {_PLINK_MAGIC.hex()})")
        size = self.bed_path.stat().st_size
        expected = 3 + m * math.ceil(n / 4)
        if size != expected:
            raise ValueError(f"PLINK fileset {prefix} sizes disagree: .bed is {size} bytes but the .bim has "
                             f"{m} SNPs and the .fam {n} samples, so it should be 3 + {m} * ceil({n}/4) = "
                             f"{expected} bytes")
        if n == 0:
            raise ValueError(f"PLINK fileset {prefix}: the .fam file has no samples")
        from bed_reader import open_bed

        try:
            self._bed = open_bed(self.bed_path, iid_count=n, sid_count=m, num_threads=num_threads)
            self._ids = [str(s) for s in self._bed.iid]
            self.snp_ids = [str(s) for s in self._bed.sid]
            self.ref = [str(s) for s in self._bed.allele_2]
            self.alt = [str(s) for s in self._bed.allele_1]
        except Exception as err:
            raise ValueError(f"cannot read PLINK fileset {prefix}: {err}") from err
        check_unique(self._ids, f"PLINK {paths['.fam']}")
        ok = np.array([len(a) == 1 and len(b) == 1 and a in "ACGTacgt0" and b in "ACGTacgt0"
                       for a, b in zip(self.ref, self.alt)], dtype=bool)
        self.flags = np.where(ok, FLAG_OK, FLAG_NON_SNP).astype(np.uint8)

    @property
    def sample_ids(self) -> list[str]:
        return self._ids

    @property
    def n_snps(self) -> int:
        return len(self.snp_ids)

    def chunks(self, chunk_size: int = 4096) -> Iterator[GenotypeChunk]:
        check_chunk_size(chunk_size)
        for a in range(0, self.n_snps, chunk_size):
            s = slice(a, a + chunk_size)
            x = self._bed.read(index=np.s_[:, s], dtype="float32", order="C")
            yield GenotypeChunk(x, self.snp_ids[s], self.flags[s].copy(), self.ref[s], self.alt[s])


def _count_lines(path: Path) -> int:
    """Non-blank lines of a text file (as PLINK counts samples/SNPs), streamed."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())

