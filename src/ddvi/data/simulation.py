"""A coalescent simulation (msprime) of a SYNTHETIC cohort named after the 26 1000 Genomes
populations in their 5 super-populations, including the admixed ones."""

from __future__ import annotations

import numpy as np

from ddvi.data.cohort import G1K_POPULATIONS, G1K_SIZES, G1K_SUPER, Cohort, choose_snps

__all__ = ["MS_MUTATION_RATE", "MS_RECOMBINATION_RATE", "msprime_1kg", "msprime_demography"]

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
    keep = choose_snps(geno.shape[1], n_snps, rng)
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

