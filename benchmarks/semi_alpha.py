"""Semi-supervised MNIST: how the classification weight alpha and the labelled rows per batch
decide whether the classifier (and the latent) learn the classes. Results:
benchmarks/results/semi_alpha.md. Usage (key=value arguments):

    python benchmarks/semi_alpha.py method=ddvi lb=32 alpha=1000 epochs=5 n=20000
"""

from __future__ import annotations

import json
import sys
import time

import torch

from ddvi.data import load_dataset, subset
from ddvi.metrics import knn_accuracy
from ddvi.tasks import build_semi_supervised, select_labels
from ddvi.train import Trainer


def main(argv: list[str]) -> None:
    args = dict(a.split("=", 1) for a in argv)
    method, n, epochs = args.get("method", "aevb"), int(args.get("n", 20000)), int(args.get("epochs", 5))
    lb, alpha = int(args.get("lb", 32)), float(args.get("alpha", 1000.0))
    torch.set_num_threads(1)
    (xtr, ytr), (xte, yte) = load_dataset("mnist")
    xtr, ytr = subset(xtr, ytr, n, 0)
    x = torch.from_numpy((xtr.reshape(len(xtr), -1) / 255 > 0.5).astype("float32"))
    xt = torch.from_numpy((xte[:2000].reshape(2000, -1) / 255 > 0.5).astype("float32"))
    y = torch.from_numpy(select_labels(ytr, 1000, seed=0, balanced=True))
    torch.manual_seed(0)
    kw = {"prior": "pinwheel"}
    if method == "ddvi":
        kw["sleep"] = args.get("sleep", "full")
    model = build_semi_supervised(method, 784, alpha=alpha, **kw)
    trainer = Trainer(model, epochs=epochs, batch_size=128, lr=1e-4, seed=0, verbose=False,
                      labeled_batch_size=lb)
    start = time.time()
    if method == "ddvi":
        model.pretrain_denoiser(2000, 128, 1e-3, trainer.generator)
    history = trainer.fit(x, y=y)
    model.eval()
    acc = float((model.predict(xt) == torch.from_numpy(yte[:2000])).float().mean())
    with torch.no_grad():
        z, ztr = model.transform(xt).numpy(), model.transform(x[:5000]).numpy()
    knn = knn_accuracy(ztr, ytr[:5000], z, yte[:2000])
    print(json.dumps({"args": args, "acc": acc, "knn": knn, "secs": time.time() - start,
                      "last": {k: round(v, 2) for k, v in history[-1].items()}}))


if __name__ == "__main__":
    main(sys.argv[1:])
