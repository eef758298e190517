"""CIFAR-10 from the standard ``cifar-10-batches-py`` folder (or its ``.tar.gz``).

The batch files are Python pickles; they are read only through the restricted unpickler of
:mod:`ddvi.data.safe_pickle`, which admits numpy arrays and nothing else, so no code from the files
ever runs. Downloads are checked against their MD5 before anything is extracted, and extraction
refuses absolute paths, ``..`` members, links and devices.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from ddvi.data.fetch import Absent, cache_dir, data_dir, env_path, fetch_url, lookup, verify
from ddvi.data.safe_pickle import restricted_loads

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_DIRNAME",
    "CIFAR10_MD5",
    "CIFAR10_TARBALL",
    "CIFAR10_URL",
    "download_cifar10",
    "load_cifar10",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_TARBALL = "cifar-10-python.tar.gz"
CIFAR10_ENV = "DDVI_CIFAR10"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCH_FILES = (*TRAIN_BATCHES, TEST_BATCH)

_SIDE, _CHANNELS = 32, 3
_PIXELS = _SIDE * _SIDE * _CHANNELS
_DOWNLOAD_TIMEOUT_S = 60.0

Split = tuple[np.ndarray, np.ndarray]


# ------------------------------------------------------------------------ batches


def _parse_batch(data: bytes, name: str) -> Split:
    """Decode one pickled batch into uint8 HWC images (n, 32, 32, 3) and int64 labels."""
    try:
        obj = restricted_loads(data, encoding="latin1")
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refusing"):  # a global other than numpy's array machinery
            raise pickle.UnpicklingError(f"{name}: {exc}") from exc
        raise ValueError(f"{name}: not a readable CIFAR-10 batch pickle ({exc})") from exc
    except Exception as exc:  # truncated or garbage bytes
        raise ValueError(f"{name}: not a readable CIFAR-10 batch pickle ({exc!r})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    missing = [k for k in ("data", "labels") if k not in batch]
    if missing:
        raise ValueError(f"{name}: batch dict lacks {missing} (keys: {sorted(map(str, batch))})")
    x, y = batch["data"], batch["labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != _PIXELS:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{name}: 'data' must be a uint8 array of shape (n, {_PIXELS}), got {got}")
    if len(x) == 0:
        raise ValueError(f"{name}: batch holds no images")
    try:
        y = np.asarray(y)
    except Exception as exc:
        raise ValueError(f"{name}: 'labels' is not a list of integers ({exc!r})") from exc
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: 'labels' must be {len(x)} integers, got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"{name}: labels outside 0..9 (min {y.min()}, max {y.max()})")
    # Rows are CHW-flattened (1024 red, 1024 green, 1024 blue values); return HWC.
    images = x.reshape(-1, _CHANNELS, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), y.astype(np.int64)


def _concat(parts: list[Split]) -> Split:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _load_batches(read: Callable[[str], bytes], where: str) -> tuple[Split, Split]:
    train = _concat([_parse_batch(read(n), f"{where}/{n}") for n in TRAIN_BATCHES])
    test = _parse_batch(read(TEST_BATCH), f"{where}/{TEST_BATCH}")
    return train, test


def _load_folder(folder: Path) -> tuple[Split, Split]:
    missing = [n for n in BATCH_FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing CIFAR-10 batch files: {', '.join(missing)}")
    return _load_batches(lambda n: (folder / n).read_bytes(), str(folder))


def _load_tarball(path: Path, md5: str | None) -> tuple[Split, Split]:
    """Read the batches straight from the archive (nothing is extracted to disk)."""
    if md5 is not None:
        try:
            verify(path, md5, "md5", str(path))
        except ValueError as exc:
            raise ValueError(f"{exc}; pass md5=None to skip the check for a repackaged archive") \
                from None
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.TarError as exc:
        raise ValueError(f"{path}: not a {CIFAR10_TARBALL} archive ({exc})") from exc
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        missing = [n for n in BATCH_FILES if f"{CIFAR10_DIRNAME}/{n}" not in members]
        if missing:
            raise FileNotFoundError(
                f"{path}: archive lacks {CIFAR10_DIRNAME}/ members: {', '.join(missing)}")

        def read(n: str) -> bytes:
            f = tar.extractfile(members[f"{CIFAR10_DIRNAME}/{n}"])
            assert f is not None  # regular file members always have data
            return f.read()

        return _load_batches(read, f"{path}:{CIFAR10_DIRNAME}")


def _locate(path: Path) -> Path | None:
    """The batches folder or tarball that ``path`` names or holds, or None if it holds neither."""
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    if (path / CIFAR10_DIRNAME).is_dir():
        return path / CIFAR10_DIRNAME
    if path.name == CIFAR10_DIRNAME or any((path / n).exists() for n in BATCH_FILES):
        return path
    if (path / CIFAR10_TARBALL).is_file():
        return path / CIFAR10_TARBALL
    return None


def _read(path: Path, md5: str | None) -> tuple[Split, Split]:
    """The data set at ``path`` (see :func:`_locate`); :class:`~ddvi.data.fetch.Absent` if none."""
    found = _locate(path)
    if found is None:
        raise Absent(f"holds neither {CIFAR10_DIRNAME}/ nor {CIFAR10_TARBALL}")
    return _load_tarball(found, md5) if found.is_file() else _load_folder(found)


# ----------------------------------------------------------------------- download


def _check_member(m: tarfile.TarInfo) -> None:
    p = PurePosixPath(m.name)
    if p.is_absolute() or ".." in p.parts or m.name.startswith(("/", "\\")):
        raise ValueError(f"unsafe archive member {m.name!r} (absolute path or '..')")
    if not (m.isfile() or m.isdir()):
        raise ValueError(f"unsafe archive member {m.name!r} (links and devices are not allowed)")
    if p.parts[0] != CIFAR10_DIRNAME:
        raise ValueError(f"unexpected archive member {m.name!r} (outside {CIFAR10_DIRNAME}/)")


def download_cifar10(dest: str | os.PathLike[str] | None = None, url: str = CIFAR10_URL,
                     md5: str = CIFAR10_MD5) -> Path:
    """Download ``cifar-10-python.tar.gz`` from ``url`` and extract it into ``dest``.

    ``dest`` defaults to ``<cache_dir()>/cifar10``. The archive's MD5 is checked before anything
    is written; every member must be a regular file or folder under ``cifar-10-batches-py/``;
    extraction goes to a temporary folder that is renamed into place only when complete, so a
    failure leaves nothing behind. Returns ``dest/cifar-10-batches-py`` (at once, without
    downloading, if that folder already exists). Raises ``OSError`` for network errors and
    ``ValueError`` for a checksum mismatch or an unsafe archive.
    """
    dest = Path(dest) if dest is not None else cache_dir() / "cifar10"
    target = dest / CIFAR10_DIRNAME
    if target.is_dir():
        return target
    if not hasattr(tarfile, "data_filter"):  # pragma: no cover - Python < 3.10.12
        raise RuntimeError("safe extraction needs tarfile filters (Python >= 3.10.12)")
    data = fetch_url(url, timeout=_DOWNLOAD_TIMEOUT_S)
    verify(data, md5, "md5", url)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            _check_member(m)
        names = {m.name for m in members if m.isfile()}
        missing = [n for n in BATCH_FILES if f"{CIFAR10_DIRNAME}/{n}" not in names]
        if missing:
            raise ValueError(f"{url}: archive lacks {CIFAR10_DIRNAME}/ members: {', '.join(missing)}")
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".cifar10-"))
        try:
            tar.extractall(tmp, members=members, filter="data")
            try:
                os.replace(tmp / CIFAR10_DIRNAME, target)
            except OSError:
                if not target.is_dir():  # else another process finished first: use its copy
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------------- loader


def _guidance(default: Path) -> str:
    return (f"Get {CIFAR10_TARBALL} from {CIFAR10_URL} (md5 {CIFAR10_MD5}) and either unpack its "
            f"{CIFAR10_DIRNAME}/ folder into {default.parent} (giving {default}), pass "
            f"root=<that folder, its parent, or the .tar.gz>, or set ${CIFAR10_ENV} to one of them.")


def load_cifar10(root: str | os.PathLike[str] | None = None, download: bool = False,
                 url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5) -> tuple[Split, Split]:
    """Load CIFAR-10 as ``((x_train, y_train), (x_test, y_test))``.

    ``x`` is uint8 ``(n, 32, 32, 3)`` (height, width, RGB), ``y`` int64 in 0..9 (names in
    ``CIFAR10_CLASSES``); the real set has 50 000 train and 10 000 test images.
    ``root`` (else ``$DDVI_CIFAR10``, else ``$DDVI_DATA/cifar10``, else ``<cache_dir()>/cifar10``)
    may be the ``cifar-10-batches-py`` folder, a folder holding it, or ``cifar-10-python.tar.gz``
    (read in place, its MD5 checked against ``md5`` unless that is None). When none exists and
    ``download`` is true, :func:`download_cifar10` fetches ``url`` into ``root`` (or the cache).
    Raises ``FileNotFoundError`` with set-up instructions when the data cannot be found.
    """
    default = cache_dir() / "cifar10"
    dest = default if root is None else Path(root).expanduser()  # also where a download goes
    places = [dest] if root is not None else [env_path(CIFAR10_ENV), data_dir("cifar10"), default]

    def fetch() -> tuple[Split, Split]:
        if md5 is None:
            raise ValueError("download=True needs the archive's md5 (it is checked before extracting)")
        return _load_folder(download_cifar10(dest, url, md5))

    data, _ = lookup("CIFAR-10", partial(_read, md5=md5), places=places, downloads=[(url, fetch)],
                     download=download, recoverable=(OSError,), hint=_guidance(default / CIFAR10_DIRNAME))
    return data
