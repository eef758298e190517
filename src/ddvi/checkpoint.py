"""Safe checkpoints: one safetensors file of tensors plus a JSON header; no pickle anywhere.

Writes are atomic (temporary file, fsync, rename) and every tensor and the header's ``meta``
(the configuration a model is rebuilt from) are covered by a sha256 stored in the header, so a
truncated, corrupted or edited file is refused with a clear error. Files of header version 1
(written before the meta was covered) still load; only their tensors are checked.

A temporary is named ``.<target>.ddvi-tmp.<host>.<pid>``; one left by a killed writer (its
process is gone) is removed by the next write into the same folder or by
:func:`remove_stale_temporaries`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "ddvi-checkpoint"
VERSION = 2
"""1: sha256 over the tensors only; 2: over the tensors and the JSON meta."""

_TMP_MARK = ".ddvi-tmp."
_TMP = re.compile(r"^\.(?P<target>.+)\.ddvi-tmp\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)$")
_TMP_V1 = re.compile(r"^\.(?P<target>.+\.safetensors)\.tmp-(?P<pid>\d+)$")  # before the host


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or not a ddvi checkpoint."""


def _canonical(meta: Any) -> str:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"))


def _digest(tensors: dict[str, torch.Tensor], meta: Any = None) -> str:
    """sha256 over the tensors (sorted by name) and, for version 2, the canonical JSON meta."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    if meta is not None:
        h.update(b"\x00meta\x00" + _canonical(meta).encode())
    return h.hexdigest()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries that :func:`save_checkpoint` left in ``folder`` when its process was
    killed mid-write (this host, process gone); returns the removed paths. Other files, and the
    temporaries of live writers or of other hosts, are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed = _host(), []
    for entry in folder.iterdir():
        match = _TMP.match(entry.name) or _TMP_V1.match(entry.name)
        if match is None or not entry.is_file():
            continue
        if match.groupdict().get("host", host) != host or _pid_alive(int(match["pid"])):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write ``tensors`` and the JSON-serialisable ``meta`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = json.loads(json.dumps(meta))  # what a reader will see (tuples as lists, str keys)
    header = {"format": FORMAT, "version": VERSION, "sha256": _digest(tensors, meta), "meta": meta}
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{_host()}.{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"ddvi": json.dumps(header)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # safetensors writes 0600; a saved model is meant to be shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns (tensors, meta).

    Raises :class:`CheckpointError` for a missing, truncated, corrupted or edited file (the
    checksum covers the tensors and, from header version 2, the meta)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("ddvi")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupted or not a safetensors file: {err}") \
            from err
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file but not a ddvi checkpoint")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {path} has a corrupted header: {err}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ddvi checkpoint")
    version = header.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"checkpoint {path} has a corrupted header: version {version!r}")
    if version > VERSION:
        raise CheckpointError(f"{path} was written by a newer ddvi (format {version})")
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has a corrupted header: meta is not an object")
    if _digest(tensors, meta if version >= 2 else None) != header.get("sha256"):
        what = "tensor or header" if version >= 2 else "tensor"
        raise CheckpointError(f"checkpoint {path} is corrupted or was edited: {what} checksum "
                              "mismatch")
    return tensors, meta


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                        info: dict) -> None:
    """Inverse of :func:`flatten_optimizer`: load the state into ``opt``."""
    state: dict[int, dict[str, Any]] = {}
    for source in (tensors, info["scalars"]):
        for name, value in source.items():
            idx, key = name.split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
