"""An ancestry map from a VCF in a few lines (here: a small msprime cohort written as VCF).

    python examples/ancestry_map.py --out runs/example-ancestry
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddvi.data.cohorts import msprime_1kg, write_labels, write_vcf
from ddvi.data.genotypes import VCFSource
from ddvi.tasks.ancestry import embed_samples, fit_ancestry, prepare_genotypes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/example-ancestry"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cohort = msprime_1kg(n_per_population=20, n_snps=3000, seed=1)  # synthetic: a simulation
    vcf = write_vcf(cohort, args.out / "cohort.vcf.gz")
    labels = write_labels(cohort, args.out / "labels.tsv")
    data = prepare_genotypes(VCFSource(vcf), labels, n_components=100, description=cohort.description)
    print("\n".join(data.notes))
    metrics = fit_ancestry(data, args.out / "map", epochs=args.epochs, baselines=("pca",))
    for name, s in metrics["scores"].items():
        print(name, "GMM-20 NMI vs populations:", round(s["gmm20"]["population"]["nmi"], 3))
    z, clusters = embed_samples(args.out / "map" / "model", VCFSource(vcf))  # project (new) samples
    print("projected", len(z), "samples into", len(set(clusters.tolist())), "clusters")


if __name__ == "__main__":
    main()
