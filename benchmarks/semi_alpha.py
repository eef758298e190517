"""Semi-supervised MNIST: how the classification weight alpha and the labelled rows per batch
decide whether the classifier (and the latent) learn the classes, and which pair to choose.
Results: benchmarks/results/semi_alpha.md.

Selection never sees the test set. Every configuration is scored on a **validation split carved
from the training set**: a seeded, class-stratified ``n_val`` (default 10 000) of the 60 000
training images, held out before the ``n`` training rows are drawn from the rest. The test
images are never passed to the scorer (the loader's test half is dropped unread), so a choice
made here can be reported on the test set afterwards (Table 2) without having been tuned on it.
Each run prints the split it scored.

Usage (key=value arguments; comma-separated ``lb`` / ``alpha`` values make a grid, and the
configuration with the best validation classifier accuracy wins, ties broken by kNN-20)::

    python benchmarks/semi_alpha.py method=ddvi lb=32 alpha=1000 epochs=5 n=20000
    python benchmarks/semi_alpha.py method=aevb lb=0,32,64 alpha=1,7.84,100,1000 epochs=5

Other keys: ``n_val`` (10000), ``labels`` (1000 class-balanced labels among the ``n`` rows),
``seed`` (0), ``sleep`` (DDVI, default full), ``prior`` (pinwheel).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ddvi.data import load_dataset, subset
from ddvi.metrics import knn_accuracy
from ddvi.tasks import build_semi_supervised, select_labels
from ddvi.train import Trainer

KNN_REFERENCE_ROWS = 5000  # training latents (with their labels) the kNN-20 score looks up


def validation_split(x: np.ndarray, y: np.ndarray, n_val: int, seed: int = 0
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_fit, y_fit), (x_val, y_val))``: a seeded, class-stratified ``n_val`` rows of the
    training set held out for validation, the rest left to train on (disjoint)."""
    from sklearn.model_selection import train_test_split

    if not 0 < n_val < len(x):
        raise ValueError(f"n_val must be in (0, {len(x)}), got {n_val}")
    idx_fit, idx_val = train_test_split(np.arange(len(x)), test_size=n_val, random_state=seed,
                                        stratify=y)
    return (x[idx_fit], y[idx_fit]), (x[idx_val], y[idx_val])


def load_splits(n: int, n_val: int, seed: int = 0, dataset: str = "mnist"):
    """Training rows (``n`` of them, after the validation split) and the validation split, both
    from the training half of ``dataset``; the test half is dropped without being read."""
    train, _test = load_dataset(dataset)
    del _test  # selection must never see the test set
    (x_rest, y_rest), val = validation_split(*train, n_val=n_val, seed=seed)
    fit = subset(x_rest, y_rest, n, seed)
    split = (f"validation split: {n_val} of the {len(train[0])} {dataset} training images "
             f"(seeded, class-stratified, seed {seed}), disjoint from the {len(fit[0])} training "
             "rows; the test set is not used")
    return fit, val, split


def _binary(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy((x.reshape(len(x), -1) / 255 > 0.5).astype("float32"))


def score(config: dict[str, Any], fit: tuple[np.ndarray, np.ndarray],
          val: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Train one configuration on ``fit`` (with ``labels`` class-balanced labels) and score it on
    ``val``: the classifier q(l|x)'s accuracy and kNN-20 accuracy of the 2-D latents (reference:
    the first 5 000 training latents with their labels)."""
    (x_fit, y_fit), (x_val, y_val) = fit, val
    seed = int(config.get("seed", 0))
    x, xv = _binary(x_fit), _binary(x_val)
    y = torch.from_numpy(select_labels(y_fit, int(config.get("labels", 1000)), seed=seed,
                                       balanced=True))
    torch.manual_seed(seed)
    kw: dict[str, Any] = {"prior": config.get("prior", "pinwheel")}
    if config["method"] == "ddvi":
        kw["sleep"] = config.get("sleep", "full")
    model = build_semi_supervised(config["method"], x.shape[1], alpha=float(config["alpha"]), **kw)
    trainer = Trainer(model, epochs=int(config["epochs"]), batch_size=128, lr=1e-4, seed=seed,
                      verbose=False, labeled_batch_size=int(config["lb"]))
    start = time.time()
    if config["method"] == "ddvi":
        model.pretrain_denoiser(2000, 128, 1e-3, trainer.generator)
    history = trainer.fit(x, y=y)
    model.eval()
    acc = float((model.predict(xv) == torch.from_numpy(np.asarray(y_val))).float().mean())
    ref = min(KNN_REFERENCE_ROWS, len(x))
    with torch.no_grad():
        z, zref = model.transform(xv).numpy(), model.transform(x[:ref]).numpy()
    knn = knn_accuracy(zref, y_fit[:ref], z, y_val)
    return {"acc": acc, "knn": knn, "secs": time.time() - start,
            "last": {k: round(v, 2) for k, v in history[-1].items()}}


def select(configs: Sequence[dict[str, Any]], fit, val,
           scorer: Callable[..., dict[str, Any]] = score) -> tuple[list[dict[str, Any]], dict]:
    """Score every configuration on the validation split; the best has the highest validation
    classifier accuracy (ties: kNN-20)."""
    results = [{"config": dict(c), **scorer(dict(c), fit, val)} for c in configs]
    best = max(results, key=lambda r: (r["acc"], r["knn"]))
    return results, best


def grid(args: dict[str, str]) -> list[dict[str, Any]]:
    """The configurations of the command line (comma-separated lb / alpha values: their product)."""
    base = {"method": args.get("method", "aevb"), "epochs": int(args.get("epochs", 5)),
            "labels": int(args.get("labels", 1000)), "seed": int(args.get("seed", 0)),
            "prior": args.get("prior", "pinwheel"), "sleep": args.get("sleep", "full")}
    lbs = [int(v) for v in args.get("lb", "32").split(",")]
    alphas = [float(v) for v in args.get("alpha", "1000").split(",")]
    return [{**base, "lb": lb, "alpha": a} for lb, a in itertools.product(lbs, alphas)]


def main(argv: list[str]) -> dict[str, Any]:
    args = dict(a.split("=", 1) for a in argv)
    torch.set_num_threads(1)
    fit, val, split = load_splits(int(args.get("n", 20000)), int(args.get("n_val", 10000)),
                                  int(args.get("seed", 0)))
    print(f"scored on the {split}", flush=True)
    results, best = select(grid(args), fit, val, scorer=score)
    for r in results:
        print(json.dumps({**r, "scored_on": "validation"}), flush=True)
    print(json.dumps({"best": best["config"], "validation_acc": best["acc"],
                      "validation_knn": best["knn"], "scored_on": split}), flush=True)
    return {"results": results, "best": best, "split": split}


if __name__ == "__main__":
    main(sys.argv[1:])
