"""Export a :class:`~ddvi.data.cohort.Cohort` as VCF 4.2 and as a panel-style label file.

Both are written to a temporary sibling renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ddvi.data.cohort import Cohort

__all__ = ["write_labels", "write_vcf"]

def _open_text(path: Path):
    return gzip.open(path, "wb", compresslevel=3) if path.suffix == ".gz" else open(path, "wb")


def _temp_for(path: Path) -> Path:
    """A unique sibling to write before ``os.replace``: a reader (or a second writer, e.g. two
    benchmark workers) never sees a half-written file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{path.suffix}")


def write_vcf(cohort: Cohort, path: str | os.PathLike[str]) -> Path:
    """Write ``cohort`` as VCF 4.2 (gzip if ``path`` ends in .gz); genotypes as 0|0, 0|1, 1|1, ./."""
    path = Path(path)
    m = cohort.n_snps
    chrom = cohort.chrom if cohort.chrom is not None else np.full(m, "1")
    pos = cohort.pos if cohort.pos is not None else np.arange(1, m + 1, dtype=np.int64)
    ref = cohort.ref if cohort.ref is not None else np.full(m, "A")
    alt = cohort.alt if cohort.alt is not None else np.full(m, "G")
    contigs = list(dict.fromkeys(chrom.tolist()))
    for c in contigs:
        where = np.flatnonzero(chrom == c)
        if np.any(np.diff(where) != 1):
            raise ValueError(f"write_vcf: records of chromosome {c} are not contiguous")
        if np.any(pos[where] < 1) or np.any(np.diff(pos[where]) <= 0):
            raise ValueError(f"write_vcf: positions on chromosome {c} must be >= 1 and strictly increasing")
    if cohort.n_samples == 0:
        raise ValueError("write_vcf: the cohort has no samples")
    bad = [s for s in cohort.sample_ids if not s or any(ch.isspace() for ch in s)]
    if bad or len(set(cohort.sample_ids)) != cohort.n_samples:
        raise ValueError(f"write_vcf: sample IDs must be unique and without whitespace (bad: {bad[:3]})")
    desc = cohort.description.replace('"', "'").replace("\n", " ")
    header = ["##fileformat=VCFv4.2", "##source=ddvi", f'##ddvi_description="{desc}"']
    header += [f"##contig=<ID={c}>" for c in contigs]
    header += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
               "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                          *cohort.sample_ids])]  # fmt: skip
    lut = np.frombuffer(b"./.\t0|0\t0|1\t1|1\t", dtype=np.uint8).reshape(4, 4)
    gt = cohort.genotypes
    tmp = _temp_for(path)
    with _open_text(tmp) as f:
        f.write(("\n".join(header) + "\n").encode())
        for j in range(m):
            fixed = f"{chrom[j]}\t{pos[j]}\t{cohort.snp_ids[j]}\t{ref[j]}\t{alt[j]}\t.\tPASS\t.\tGT\t"
            row = lut[gt[:, j].astype(np.intp) + 1].reshape(-1)
            row[-1] = 10  # newline instead of the last tab (row is a fresh copy)
            f.write(fixed.encode() + row.tobytes())
    os.replace(tmp, path)
    return path


def write_labels(cohort: Cohort, path: str | os.PathLike[str]) -> Path:
    """Write a 1000 Genomes panel-style TSV: header ``sample\\tpop\\tsuper_pop``, one row per sample."""
    path = Path(path)
    lines = ["sample\tpop\tsuper_pop"]
    rows = zip(cohort.sample_ids, cohort.populations, cohort.super_populations)
    lines += [f"{s}\t{p}\t{q}" for s, p, q in rows]
    tmp = _temp_for(path)
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path

