"""A restricted unpickler for the pickled numpy arrays some data sets ship (MNIST wheel, CIFAR-10).

Only the globals numpy arrays need are resolved; any other global (``os.system``, ...) is refused,
so nothing in a downloaded pickle can run code.
"""

from __future__ import annotations

import codecs
import io
import pickle

import numpy as np

__all__ = ["RestrictedUnpickler", "restricted_loads"]


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
