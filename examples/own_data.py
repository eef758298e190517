"""Write the README's "your own data" example files from data bundled with scikit-learn (offline).

    python examples/own_data.py --out data/own
    ddvi fit --data data/own/wine.csv --label-column cultivar --standardize --epochs 200 --out runs/wine
    ddvi fit --data data/own/digits.h5ad --label-column digit --binarize --epochs 30 --out runs/digits
    ddvi fit --data data/own/wine.csv --label-column cultivar --standardize --prior samples:data/own/ring.npy

Files (real measurements, not synthetic, except the prior):
  wine.csv     178 wines x 13 chemical measurements, column ``cultivar`` (3 cultivars)
  digits.h5ad  1 797 8x8 handwritten digits scaled to [0, 1], obs column ``digit`` (needs anndata,
               the ``singlecell`` extra)
  ring.npy     a structured prior given by samples: three noisy concentric rings, 3 000 x 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_wine


def ring_prior(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Samples of a three-ring prior (radii 0.5, 1, 1.5), a shape none of the built-in recipes has."""
    rng = np.random.default_rng(seed)
    radius = rng.choice([0.5, 1.0, 1.5], size=n) + 0.05 * rng.standard_normal(n)
    angle = rng.uniform(0, 2 * np.pi, size=n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/own"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    wine = load_wine(as_frame=True)
    table = wine.data.assign(cultivar=[wine.target_names[i] for i in wine.target])
    table.to_csv(args.out / "wine.csv", index_label="wine_id")
    print("wrote", args.out / "wine.csv", table.shape)

    np.save(args.out / "ring.npy", ring_prior())
    print("wrote", args.out / "ring.npy")

    try:
        import anndata
    except ImportError:
        print("digits.h5ad skipped: pip install -e '.[singlecell]' for anndata")
        return
    digits = load_digits()
    obs = {"digit": [str(d) for d in digits.target]}
    adata = anndata.AnnData(X=(digits.data / 16.0).astype(np.float32), obs=obs)
    adata.obs_names = [f"digit{i}" for i in range(len(digits.target))]
    adata.write_h5ad(args.out / "digits.h5ad")
    print("wrote", args.out / "digits.h5ad", adata.shape)


if __name__ == "__main__":
    main()
