"""Image data sets: the MNIST and Fashion-MNIST loaders and :func:`as_float`.

The loaders live in :mod:`ddvi.data.mnist` and :mod:`ddvi.data.fashion`, the IDX format in
:mod:`ddvi.data.idx`, the restricted unpickler in :mod:`ddvi.data.safe_pickle` and the
download/verify/cache code in :mod:`ddvi.data.fetch`; they are re-exported here.
"""

from __future__ import annotations

import numpy as np

from ddvi.data.fashion import load_fashion_mnist
from ddvi.data.fetch import cache_dir
from ddvi.data.idx import Split, read_idx
from ddvi.data.mnist import load_mnist
from ddvi.data.safe_pickle import RestrictedUnpickler, restricted_loads

__all__ = [
    "RestrictedUnpickler",
    "Split",
    "as_float",
    "cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "restricted_loads",
]


def as_float(x: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to float32 ``(n, d)`` scaled to ``[0, 1]`` (divides by 255)."""
    x = np.asarray(x)
    return (x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0)).astype(np.float32)
