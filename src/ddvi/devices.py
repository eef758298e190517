"""Torch devices by name: ``auto`` (CUDA, else Apple's MPS, else the CPU), ``cpu``, ``cuda``,
``cuda:N`` or ``mps``; seeded generators that live on them.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> generator(0, "cpu").initial_seed()
    0
"""

from __future__ import annotations

import torch
from torch import nn

DEVICE_HELP = "auto (CUDA when available, else MPS, else the CPU) | cpu | cuda | cuda:N | mps"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """The device names this machine offers, e.g. ``['cpu']`` or ``['cpu', 'cuda:0', 'cuda:1']``."""
    names = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return names + ["mps"] if _mps_available() else names


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device named by ``spec`` (None means ``auto``), checked to exist on this machine.

    Raises ValueError naming the problem: an unknown name, CUDA or MPS absent, a CUDA index beyond
    the visible GPUs."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(spec.strip().lower() if isinstance(spec, str) else spec)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"unknown device {spec!r}; use {DEVICE_HELP}") from err
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r}: CUDA is not available on this machine (this torch "
                             f"is {torch.__version__}); devices here: "
                             f"{', '.join(available_devices())} (or auto)")
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {spec!r}: this machine has {torch.cuda.device_count()} "
                             f"visible GPU(s), numbered from 0; devices here: "
                             f"{', '.join(available_devices())}")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {spec!r}: Apple's MPS is not available on this machine; "
                             f"devices here: {', '.join(available_devices())} (or auto)")
        return torch.device("mps")
    raise ValueError(f"unsupported device {spec!r}; use {DEVICE_HELP}")


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (on the CPU: the stream of
    ``torch.Generator().manual_seed(seed)``; each device type has its own stream)."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (else buffers) live; the CPU for a module holding neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
