"""Import a script of ``benchmarks/`` as a module for its tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str) -> Iterator[ModuleType]:
    """Yield ``benchmarks/<name>.py`` imported as module ``name`` (registered in sys.modules
    while in use, as dataclasses need), then unregister it: the body of a pytest fixture."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)
