"""Genotype readers (VCF, PLINK, arrays), streaming QC and population label files.

Every reader streams blocks of SNPs as :class:`GenotypeChunk` objects: ``dosages`` is float32 of
shape (n_samples, k) holding the count (0/1/2) of the *counted* allele, NaN for a missing call.
The counted allele is ALT for VCF and A1 (the 5th .bim column) for PLINK; PLINK files written
from a VCF by plink (or by ``bed_reader.to_bed``) put ALT in A1, so both give the same numbers.
A reader never holds more than one chunk, so files larger than memory stream fine.

Records that QC must drop (multi-allelic, indel/symbolic, non-diploid) are still yielded, marked
in ``GenotypeChunk.flags``; :func:`qc_chunks` counts and drops them in its :class:`QCReport`.

The pieces live in :mod:`ddvi.data.genotype_source` (interface, arrays), :mod:`ddvi.data.vcf_read`,
:mod:`ddvi.data.plink`, :mod:`ddvi.data.genotype_qc` and :mod:`ddvi.data.labels`; this module
gathers them and opens a file by kind (:func:`open_genotypes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ddvi.data.genotype_qc import QCChunk, QCConfig, QCReport, qc_chunks, qc_stream
from ddvi.data.genotype_source import (
    FLAG_MULTIALLELIC,
    FLAG_NON_DIPLOID,
    FLAG_NON_SNP,
    FLAG_OK,
    ArraySource,
    GenotypeChunk,
    GenotypeSource,
    SampleSubset,
    as_source,
)
from ddvi.data.labels import Labels, read_labels
from ddvi.data.plink import PlinkSource
from ddvi.data.vcf_read import VCFSource

__all__ = [
    "FLAG_MULTIALLELIC", "FLAG_NON_DIPLOID", "FLAG_NON_SNP", "FLAG_OK", "ArraySource",
    "GenotypeChunk", "GenotypeSource", "Labels", "PlinkSource", "QCChunk", "QCConfig", "QCReport",
    "SampleSubset", "VCFSource", "as_source", "open_genotypes", "qc_chunks", "qc_stream", "read_labels",
]


def open_genotypes(vcf: str | Path | None = None, bfile: str | Path | None = None,
                   samples: Sequence[str] | None = None) -> GenotypeSource:
    """Open a VCF/BCF (``vcf``) or a PLINK fileset prefix (``bfile``): exactly one of them."""
    if (vcf is None) == (bfile is None):
        raise ValueError("give exactly one of vcf=... (VCF/VCF.gz/BCF) or bfile=... (PLINK prefix)")
    if vcf is not None:
        return VCFSource(vcf, samples=samples)
    if samples is not None:
        raise ValueError("samples= is only supported for VCF input; subset PLINK files with plink --keep")
    return PlinkSource(bfile)

