"""Data sets used by ddvi."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddvi.data.cifar import load_cifar10
from ddvi.data.images import as_float, load_fashion_mnist, load_mnist, read_idx

DATASETS = ("mnist", "fashion-mnist", "cifar10")


def load_dataset(name: str, root: str | Path | None = None):
    """((x_train, y_train), (x_test, y_test)) of a named image data set (uint8 images)."""
    if name == "mnist":
        return load_mnist(root=root)
    if name == "fashion-mnist":
        return load_fashion_mnist(root=root)
    if name == "cifar10":
        return load_cifar10(root=root)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of n rows (all rows if n is None or too large)."""
    if n is None or n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]


__all__ = ["DATASETS", "as_float", "load_dataset", "load_fashion_mnist", "load_mnist", "read_idx",
           "subset"]
