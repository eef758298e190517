"""Safe checkpoints: one safetensors file of tensors plus a JSON header; no pickle anywhere.

Writes are atomic (temporary file, fsync, rename) and every tensor is covered by a sha256 stored
in the header, so a truncated or corrupted file is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "ddvi-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or not a ddvi checkpoint."""


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write ``tensors`` and the JSON-serialisable ``meta`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    header = {"format": FORMAT, "version": VERSION, "sha256": _digest(tensors), "meta": meta}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"ddvi": json.dumps(header)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # safetensors writes 0600; a saved model is meant to be shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns (tensors, meta)."""
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
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ddvi checkpoint")
    if header.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer ddvi (format {header['version']})")
    if _digest(tensors) != header.get("sha256"):
        raise CheckpointError(f"checkpoint {path} is corrupted: tensor checksum mismatch")
    return tensors, header["meta"]


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
