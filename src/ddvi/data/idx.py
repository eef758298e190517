"""The IDX file format and folders of 28x28 image splits stored in it (MNIST, Fashion-MNIST).

IDX files are parsed by hand (gzip-compressed or not); a folder holds the four standard files.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ddvi.data.fetch import Absent, NpzCache

__all__ = ["IDX_FILES", "Split", "Splits", "check_split", "read_idx", "read_idx_folder", "splits_cache"]

Split = tuple[np.ndarray, np.ndarray]
Splits = tuple[Split, Split]

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file; ``name`` is used in errors."""
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file (only {len(data)} bytes, header needs 4)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name}: bad IDX magic number 0x{data[:4].hex()} (first two bytes must be zero)"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{name}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{name}: IDX file {problem}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"found {len(data)}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def maybe_gunzip(data: bytes, name: str) -> bytes:
    """``data`` decompressed if it is gzip, else as is; ``ValueError`` naming ``name`` if corrupt."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: corrupt or truncated gzip data ({exc})") from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a native-endian numpy array.

    Raises ``ValueError`` naming the file for a bad magic number, unknown type code,
    zero dimensions, or a size that does not match the header (truncated / trailing data).
    """
    path = Path(path)
    return parse_idx(maybe_gunzip(path.read_bytes(), str(path)), str(path))


# -------------------------------------------------------------------------- splits


def check_split(x: np.ndarray, y: np.ndarray, what: str, n: int | None) -> Split:
    """``(x, y)`` as uint8 (n, 28, 28) images and int64 labels 0..9; ``n`` rows unless None."""
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise ValueError(
            f"{what}: expected uint8 images of shape (n, 28, 28), got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{what}: {len(x)} images but labels of shape {y.shape}")
    if n is not None and len(x) != n:
        raise ValueError(f"{what}: expected {n} examples, got {len(x)}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{what}: labels outside 0..9")
    return np.ascontiguousarray(x), y


def check_splits(arrays: dict[str, np.ndarray], what: str, n_train: int | None,
                 n_test: int | None) -> Splits:
    """Train and test splits from ``{train,test}_{images,labels}`` arrays, checked."""
    train = check_split(arrays["train_images"], arrays["train_labels"], f"{what} train", n_train)
    test = check_split(arrays["test_images"], arrays["test_labels"], f"{what} test", n_test)
    return train, test


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx_folder(folder: Path, n_train: int | None = None, n_test: int | None = None) -> Splits:
    """The splits in the four IDX files of ``folder`` (each may be .gz); :class:`~ddvi.data.fetch.Absent`
    naming the missing files when it does not hold them all."""
    if not folder.is_dir():
        raise Absent("does not exist")
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise Absent(f"missing {', '.join(missing)} (each may also be .gz)")
    arrays = {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]
    return check_splits(arrays, str(folder), n_train, n_test)


def splits_cache(path: Path, n_train: int | None, n_test: int | None) -> NpzCache[Splits]:
    """The checksummed npz cache of a data set's splits (arrays ``x_train``, ``y_train``, ...)."""

    def encode(s: Splits) -> dict[str, np.ndarray]:
        return {"x_train": s[0][0], "y_train": s[0][1], "x_test": s[1][0], "y_test": s[1][1]}

    def decode(z: dict[str, np.ndarray]) -> Splits:
        keys = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test",
                "test_labels": "y_test"}
        return check_splits({k: z[v] for k, v in keys.items()}, str(path), n_train, n_test)

    return NpzCache(path, encode, decode)
