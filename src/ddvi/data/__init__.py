"""Data sets used by ddvi."""

from ddvi.data.images import as_float, load_fashion_mnist, load_mnist, read_idx

__all__ = ["as_float", "load_fashion_mnist", "load_mnist", "read_idx"]
