"""Tests for ddvi.data.cifar on a small generated CIFAR-10 look-alike served from 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ddvi.data import load_dataset
from ddvi.data.cifar import (
    BATCH_FILES,
    CIFAR10_DIRNAME,
    CIFAR10_TARBALL,
    TRAIN_BATCHES,
    download_cifar10,
    load_cifar10,
)

N_PER_BATCH = 4


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real cache, data folders or proxies leak into a test."""
    for var in ("DDVI_CIFAR10", "DDVI_DATA", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")


def make_batches(seed: int = 0) -> dict[str, dict[bytes, object]]:
    """Batch dicts exactly like the real files: bytes keys, uint8 (n, 3072) CHW rows, int labels."""
    rng = np.random.default_rng(seed)
    return {
        name: {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, N_PER_BATCH)],
            b"data": rng.integers(0, 256, (N_PER_BATCH, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(N_PER_BATCH)],
        }
        for name in BATCH_FILES
    }


def write_folder(folder: Path, batches: dict[str, dict[bytes, object]]) -> Path:
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))  # the real files are protocol 2
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}, protocol=2))
    return folder


def make_tarball(path: Path, folder: Path, extra: list[tarfile.TarInfo] = ()) -> str:
    """Tar.gz ``folder`` as ``cifar-10-batches-py/`` (plus ``extra`` members); returns the md5."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=CIFAR10_DIRNAME)
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return hashlib.md5(path.read_bytes()).hexdigest()


def expected_arrays(batches: dict[str, dict[bytes, object]]):
    def hwc(name: str) -> np.ndarray:
        return batches[name][b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    x_train = np.concatenate([hwc(n) for n in TRAIN_BATCHES])
    y_train = np.concatenate([batches[n][b"labels"] for n in TRAIN_BATCHES])
    return (x_train, y_train), (hwc("test_batch"), np.asarray(batches["test_batch"][b"labels"]))


def assert_same(got, want) -> None:
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert gx.dtype == np.uint8 and gx.shape[1:] == (32, 32, 3) and gx.flags.c_contiguous
        assert gy.dtype == np.int64
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


@pytest.fixture
def batches() -> dict[str, dict[bytes, object]]:
    return make_batches()


@pytest.fixture
def folder(tmp_path: Path, batches) -> Path:
    return write_folder(tmp_path / "src" / CIFAR10_DIRNAME, batches)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


# ------------------------------------------------------------------- loading


def test_layout_is_hwc(folder, batches):
    (x, _), (xt, yt) = load_cifar10(folder)
    row = batches["data_batch_2"][b"data"][1]  # 1024 red, then 1024 green, then 1024 blue values
    i = N_PER_BATCH + 1
    assert x[i, 5, 7, 0] == row[5 * 32 + 7]
    assert x[i, 5, 7, 1] == row[1024 + 5 * 32 + 7]
    assert x[i, 31, 2, 2] == row[2048 + 31 * 32 + 2]
    assert len(x) == 5 * N_PER_BATCH and len(xt) == N_PER_BATCH
    assert yt.tolist() == batches["test_batch"][b"labels"]


def test_root_forms_and_env_var(tmp_path, folder, batches, monkeypatch):
    want = expected_arrays(batches)
    assert_same(load_cifar10(folder), want)  # the batches folder itself
    assert_same(load_cifar10(folder.parent), want)  # a folder holding it
    md5 = make_tarball(tmp_path / CIFAR10_TARBALL, folder)
    assert_same(load_cifar10(tmp_path / CIFAR10_TARBALL, md5=md5), want)  # the archive, in place
    assert_same(load_cifar10(tmp_path / CIFAR10_TARBALL, md5=None), want)
    with pytest.raises(ValueError, match="md5 checksum mismatch.*md5=None"):
        load_cifar10(tmp_path / CIFAR10_TARBALL)  # the official md5 does not match the fixture
    monkeypatch.setenv("DDVI_CIFAR10", str(folder.parent))
    assert_same(load_cifar10(), want)
    assert_same(load_dataset("cifar10"), want)


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` opcodes, as in the real (Python 2) CIFAR-10 files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def test_python2_pickles_load(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_DIRNAME, batches)
    for name, batch in batches.items():
        buf = io.BytesIO()
        Py2Pickler(buf, protocol=2).dump(batch)
        assert b"_codecs" not in buf.getvalue()  # keys and pixel buffer are Python 2 strings
        (folder / name).write_bytes(buf.getvalue())
    assert_same(load_cifar10(folder), expected_arrays(batches))


def test_missing_batch_is_named(folder):
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(folder)


def test_absent_folder_gives_guidance(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*\$DDVI_CIFAR10"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="DDVI_CIFAR10"):
        load_cifar10()


@pytest.mark.parametrize("change, match", [
    ({b"data": np.zeros((4, 3000), np.uint8)}, r"shape \(n, 3072\)"),
    ({b"data": np.zeros((4, 3072), np.float32)}, "uint8"),
    ({b"labels": [0, 1, 2]}, "'labels' must be 4 integers"),
    ({b"labels": [0, 1, 2, 10]}, "outside 0..9"),
])
def test_malformed_batches_are_rejected(tmp_path, batches, change, match):
    batches["data_batch_4"] = {**batches["data_batch_4"], **change}
    folder = write_folder(tmp_path / CIFAR10_DIRNAME, batches)
    with pytest.raises(ValueError, match=f"data_batch_4.*{match}"):
        load_cifar10(folder)


def test_missing_key_and_non_dict(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_DIRNAME, batches)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": batches["test_batch"][b"data"]}, 2))
    with pytest.raises(ValueError, match=r"test_batch.*lacks \['labels'\]"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch: not a readable"):
        load_cifar10(folder)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_forbidden_global_is_refused_and_never_run(tmp_path, batches):
    marker = tmp_path / "pwned"
    batches["data_batch_1"] = {**batches["data_batch_1"], b"data": _Exploit(marker)}
    folder = write_folder(tmp_path / CIFAR10_DIRNAME, batches)
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_1.*refusing.*(posix|os)\.system"):
        load_cifar10(folder)
    assert not marker.exists()


# ------------------------------------------------------------------ download


def test_download_verify_extract_load(tmp_path, folder, batches, served):
    www, base = served
    md5 = make_tarball(www / CIFAR10_TARBALL, folder)
    dest = tmp_path / "dest"
    got = download_cifar10(dest, base + CIFAR10_TARBALL, md5)
    assert got == dest / CIFAR10_DIRNAME
    assert leftovers(dest) == [CIFAR10_DIRNAME]  # no temporary folder left
    assert_same(load_cifar10(dest), expected_arrays(batches))
    # load_cifar10 downloads into root when nothing is there yet
    root = tmp_path / "root"
    assert_same(load_cifar10(root, download=True, url=base + CIFAR10_TARBALL, md5=md5),
                expected_arrays(batches))
    assert (root / CIFAR10_DIRNAME / "test_batch").is_file()
    # ... and into the cache when no root is given
    assert_same(load_cifar10(download=True, url=base + CIFAR10_TARBALL, md5=md5),
                expected_arrays(batches))
    assert (tmp_path / "cache" / "cifar10" / CIFAR10_DIRNAME / "test_batch").is_file()


def test_wrong_md5_extracts_nothing(tmp_path, folder, served):
    www, base = served
    make_tarball(www / CIFAR10_TARBALL, folder)
    dest = tmp_path / "dest"
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        download_cifar10(dest, base + CIFAR10_TARBALL, "0" * 32)
    assert leftovers(dest) == []
    with pytest.raises(ValueError, match="md5 checksum mismatch"):
        load_cifar10(dest, download=True, url=base + CIFAR10_TARBALL, md5="0" * 32)
    assert leftovers(dest) == []


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("member, match", [
    (_member("../evil"), r"unsafe archive member '\.\./evil'"),
    (_member(f"{CIFAR10_DIRNAME}/../../evil"), "unsafe archive member"),
    (_member("/tmp/evil"), "unsafe archive member"),
    (_member(f"{CIFAR10_DIRNAME}/link", tarfile.SYMTYPE, "/etc/passwd"), "links"),
    (_member(f"{CIFAR10_DIRNAME}/hard", tarfile.LNKTYPE, "/etc/passwd"), "links"),
    (_member("elsewhere/file"), "outside cifar-10-batches-py"),
])
def test_malicious_archive_is_rejected(tmp_path, folder, served, member, match):
    www, base = served
    md5 = make_tarball(www / CIFAR10_TARBALL, folder, [member])
    dest = tmp_path / "x" / "dest"
    with pytest.raises(ValueError, match=match):
        download_cifar10(dest, base + CIFAR10_TARBALL, md5)
    assert leftovers(dest) == []
    assert not (tmp_path / "x" / "evil").exists() and not (tmp_path / "evil").exists()


def test_archive_missing_a_batch_is_rejected(tmp_path, folder, served):
    www, base = served
    (folder / "data_batch_5").unlink()
    md5 = make_tarball(www / CIFAR10_TARBALL, folder)
    with pytest.raises(ValueError, match="lacks cifar-10-batches-py/ members: data_batch_5"):
        download_cifar10(tmp_path / "dest", base + CIFAR10_TARBALL, md5)
    assert leftovers(tmp_path / "dest") == []


def test_failed_download_gives_guidance(tmp_path, served):
    _, base = served  # serves an empty folder: 404
    with pytest.raises(FileNotFoundError, match=r"download from .* failed .*\$DDVI_CIFAR10"):
        load_cifar10(tmp_path / "dest", download=True, url=base + CIFAR10_TARBALL)
    assert leftovers(tmp_path / "dest") == []


def test_existing_folder_is_not_downloaded_again(tmp_path, folder):
    got = download_cifar10(folder.parent, "http://127.0.0.1:9/never", "0" * 32)
    assert got == folder
