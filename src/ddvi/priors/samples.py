"""Priors given by samples (:class:`SamplesPrior`): validation of samples, labels and
bandwidths, the exact kernel density in any dimension, and reading ``.npy``/``.npz`` files."""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ddvi.priors.base import DEFAULT_BANDWIDTHS, LOG_2PI, _check_bandwidths, _rng_device
from ddvi.priors.table import _grid, _TabulatedPrior

SAMPLES_PREFIX = "samples:"
MIN_PRIOR_SAMPLES = 100
MAX_TABLE_NODES = 2**23  # 2-D table grid nodes (64 MiB as float32 with its distance map)
_KDE_CHUNK = 2**22  # terms (rows x samples x bandwidths) per chunk of the exact kernel density


def samples_path(name: Any) -> str | None:
    """The file of a ``"samples:PATH"`` prior name, else None."""
    if isinstance(name, str) and name.strip().lower().startswith(SAMPLES_PREFIX):
        return name.strip()[len(SAMPLES_PREFIX):]
    return None


def _as_array(value: Any, what: str, source: str) -> np.ndarray:
    """numpy view of an array-like (torch tensors are copied to the host)."""
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{source}: {what} are not an array ({err})") from err


def _check_samples(samples: Any, source: str) -> np.ndarray:
    """Prior samples as float64 (n, d): numeric, 2-D, finite, at least MIN_PRIOR_SAMPLES rows."""
    x = _as_array(samples, "prior samples", source)
    if x.dtype.kind not in "iuf":
        raise ValueError(f"{source}: prior samples must be a numeric (n, d) array, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"{source}: prior samples must be a 2-D array (n, d) with one sample per "
                         f"row, got shape {x.shape} (1-D samples: x.reshape(-1, 1))")
    if x.shape[0] < MIN_PRIOR_SAMPLES:
        raise ValueError(f"{source}: {x.shape[0]} prior samples; a samples prior needs at least "
                         f"{MIN_PRIOR_SAMPLES} rows")
    x = x.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(x).all(1))
    if bad.size:
        raise ValueError(f"{source}: prior samples contain NaN or inf in {bad.size} rows (first: "
                         f"{bad[:5].tolist()})")
    return x


def _check_labels(labels: Any, n: int, source: str) -> np.ndarray:
    """Part labels as int64 (n,) using every part 0..K-1 (None: all zero, one part)."""
    if labels is None:
        return np.zeros(n, dtype=np.int64)
    y = _as_array(labels, "labels", source)
    if y.shape != (n,):
        raise ValueError(f"{source}: labels must have shape ({n},), one per sample, got {y.shape}")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{source}: labels must be integers (part indices 0..K-1), got dtype "
                         f"{y.dtype} (e.g. {y.flat[0]!r})")
    if y.min() < 0:
        raise ValueError(f"{source}: labels must be >= 0 (part indices 0..K-1), got {y.min()}")
    y = y.astype(np.int64)
    k = int(y.max()) + 1
    missing = np.flatnonzero(np.bincount(y, minlength=k) == 0) if k <= n else np.array([k - 1])
    if missing.size:
        raise ValueError(f"{source}: labels go up to {k - 1}, so every part 0..{k - 1} needs "
                         f"samples, but label(s) {missing[:10].tolist()} have none")
    return y


def _default_bandwidths(x: np.ndarray, source: str) -> tuple[float, ...]:
    """Scott's rule ``sigma n^(-1/(d+4))`` for the widest kernel, the paper's ratios below it."""
    n, d = x.shape
    sigma = float(np.sqrt(x.var(0, ddof=1).mean()))
    if not sigma > 0:
        raise ValueError(f"{source}: all prior samples are the same point; give the bandwidth")
    top = sigma * n ** (-1.0 / (d + 4))
    return tuple(top * h / max(DEFAULT_BANDWIDTHS) for h in DEFAULT_BANDWIDTHS)


def _samples_digest(samples: Tensor, labels: Tensor, widths: Tensor) -> str:
    """sha256 of a samples prior's content (float64 samples and bandwidths, int64 labels)."""
    h = hashlib.sha256()
    for t, dt in ((samples, torch.float64), (labels, torch.int64), (widths, torch.float64)):
        a = t.detach().to("cpu", dt).contiguous()
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def _kde_log_prob(z: Tensor, points: Tensor, widths: Tensor) -> Tensor:
    """``log mean_j mean_h N(z; x_j, h^2 I)``, exact in float64, chunked over the points x_j."""
    zz, x = z.to(torch.float64), points.to(z.device)
    centre = x.mean(0)  # centred squared distances lose no precision to large offsets
    zz, x = zz - centre, x - centre
    h = widths.to(z.device)
    d = zz.shape[1]
    log_norm = -d * torch.log(h) - 0.5 * d * LOG_2PI
    z_sq = zz.pow(2).sum(1, keepdim=True)
    step = max(1, _KDE_CHUNK // max(1, zz.shape[0] * h.numel()))
    terms = []
    for xc in x.split(step):
        sq = (z_sq + xc.pow(2).sum(1) - 2 * zz @ xc.T).clamp_min(0)  # (rows, chunk)
        terms.append(torch.logsumexp((-0.5 * sq[..., None] / h.pow(2) + log_norm).flatten(1), 1))
    total = torch.logsumexp(torch.stack(terms, 1), 1) - math.log(x.shape[0] * h.numel())
    return total.to(z.dtype)


class SamplesPrior(_TabulatedPrior):
    """A prior given by samples: a stored sample drawn uniformly (within the part) plus
    ``h * N(0, I)``, ``h`` uniform over the bandwidths -- appendix F's kernel density, exact.

    ``samples``: (n, d), n >= 100, numpy or torch. ``labels``: (n,) integers 0..K-1 (default: one
    part); part i is the samples labelled i (renormalised), ``log_weights`` the log of the class
    proportions p(l), so the parts mixed with these weights are the whole prior. ``bandwidth``: a
    float, a sequence of floats, or None: the widest kernel is Scott's rule
    ``sigma * n^(-1/(d+4))`` (sigma: root-mean-square standard deviation of the coordinates; the
    mean-squared-error optimal single bandwidth for near-Gaussian data, tied to the samples' own
    scale) and the others follow :data:`DEFAULT_BANDWIDTHS`' ratios (0.1, 0.16, 0.2, 0.6, 1), so
    thin structures (arms, curves) stay resolved as in the paper's priors.

    ``log_prob``: in 2-D the tabulated density of the recipe priors (base measure: the samples,
    equal weights; grid spacing half the smallest bandwidth, at most ``MAX_TABLE_NODES`` nodes,
    else a ValueError at construction) with its Gaussian tail; with several bandwidths it is within
    ~0.03 nats of the exact kernel density where tabulated (a single narrow bandwidth around
    isolated samples is coarser, up to ~0.5 nats a few bandwidths away); in other dimensions the kernel
    density evaluated exactly (float64 logsumexp over the samples, in chunks; cost rows x n x
    bandwidths per call). ``samples``, ``labels`` and ``widths`` (the bandwidths) are persistent
    buffers, so a model's ``state_dict`` holds the whole prior; loading a state whose tensors are
    not this prior's (``sha256``) is refused.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(500, 3))
        >>> prior = Prior.from_samples(x, bandwidth=0.2)
        >>> prior.log_prob(torch.zeros(4, 3)).shape
        torch.Size([4])
    """

    name = "samples"

    def __init__(self, samples: Any, labels: Any = None,
                 bandwidth: float | Sequence[float] | None = None, *, part: int | None = None,
                 source: str = "samples") -> None:
        x = _check_samples(samples, source)
        y = _check_labels(labels, x.shape[0], source)
        if bandwidth is None:
            bw = _default_bandwidths(x, source)
        else:
            b = np.asarray(_as_array(bandwidth, "bandwidths", source), dtype=np.float64)
            try:
                bw = _check_bandwidths(b.reshape(-1).tolist() if b.ndim <= 1 else [])
            except ValueError as err:
                raise ValueError(f"{source}: {err}") from err
        super().__init__(bw, int(y.max()) + 1, part, min(bw) / 2)
        self.dim, self.source = x.shape[1], str(source)
        self.register_buffer("samples", torch.from_numpy(x))
        self.register_buffer("labels", torch.from_numpy(y))
        self.register_buffer("widths", torch.tensor(bw, dtype=torch.float64))
        self.sha256 = _samples_digest(self.samples, self.labels, self.widths)
        counts = np.bincount(y, minlength=self.n_parts)
        order = np.argsort(y, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.register_buffer("log_weights", torch.from_numpy(np.log(counts / x.shape[0])).to(
            torch.get_default_dtype()), persistent=False)
        self.register_buffer("_order", torch.from_numpy(order), persistent=False)
        self.register_buffer("_offsets", torch.from_numpy(offsets), persistent=False)
        self.register_buffer("_counts", torch.from_numpy(counts), persistent=False)
        own = x if part is None else x[order[offsets[self.part]:offsets[self.part] + counts[self.part]]]
        self.register_buffer("_points", torch.from_numpy(own), persistent=False)
        if self.dim == 2:
            self._check_grid(own, source)

    @classmethod
    def from_file(cls, path: str | Path, bandwidth: float | Sequence[float] | None = None
                  ) -> SamplesPrior:
        """Prior from a ``.npy`` file (an (n, d) array) or a ``.npz`` file (array ``samples`` or
        ``z``, optional ``labels``); never unpickles. Errors name the file."""
        samples, labels = _read_samples_file(Path(path))
        return cls(samples, labels, bandwidth, source=str(path))

    def spec(self) -> dict[str, Any]:
        """What identifies this prior: rows, dim, parts, bandwidths and the sha256 of its tensors."""
        return {"rows": int(self.samples.shape[0]), "dim": self.dim, "parts": self.n_parts,
                "bandwidths": list(self.bandwidths), "sha256": self.sha256}

    def _check_grid(self, points: np.ndarray, source: str) -> None:
        _, shape = _grid(points.min(0), points.max(0), self.bandwidths, self.spacing)
        nodes = shape[0] * shape[1]
        if nodes > MAX_TABLE_NODES:
            raise ValueError(
                f"{source}: the 2-D density table would need {shape[0]} x {shape[1]} grid nodes "
                f"(spacing {self.spacing:.3g}, half the smallest bandwidth, over samples spanning "
                f"{np.ptp(points, 0).round(3).tolist()}), more than {MAX_TABLE_NODES}: give "
                f"larger bandwidths (about {math.sqrt(nodes / MAX_TABLE_NODES):.2g} times or "
                "more) or samples over a smaller range")

    def _config(self) -> dict[str, Any]:
        return {"samples": self.samples, "labels": self.labels, "bandwidth": self.bandwidths,
                "source": self.source}

    def _table_key(self) -> tuple:
        return (type(self).__name__, self.sha256, self.spacing, self.part)

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        pts = self._points.cpu().numpy()
        return pts, np.ones(pts.shape[0])

    def _sample_recipe(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if self.part is not None:
            return super()._sample_recipe(n, generator)
        dev = _rng_device(generator, self.device)
        k = torch.multinomial(self.log_weights.exp().to(dev), n, replacement=True,
                              generator=generator) if n else torch.zeros(0, dtype=torch.int64,
                                                                         device=dev)
        return self._recipe(k, generator), k

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        """A stored sample of part ``k[i]``, uniformly, for each i."""
        dev = k.device
        u = torch.rand(k.shape[0], generator=generator, device=dev, dtype=torch.float64)
        count = self._counts.to(dev)[k]
        pick = torch.minimum((u * count).long(), count - 1)
        return self.samples.to(dev)[self._order.to(dev)[self._offsets.to(dev)[k] + pick]]

    def _log_prob(self, z: Tensor) -> Tensor:
        if self.dim == 2:
            return super()._log_prob(z)
        return _kde_log_prob(z, self._points, self.widths)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        keys = [prefix + k for k in ("samples", "labels", "widths")]
        if all(k in state_dict for k in keys):
            digest = _samples_digest(*(state_dict[k] for k in keys))
            if digest != self.sha256:
                args[-1].append(  # error_msgs
                    f"{prefix}samples: the stored prior samples (sha256 {digest[:12]}) are not "
                    f"this prior's (sha256 {self.sha256[:12]}); build the prior from them instead")
                return
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (f"n={self.samples.shape[0]}, dim={self.dim}, parts={self.n_parts}, "
                f"bandwidths={tuple(round(h, 6) for h in self.bandwidths)}, part={self.part}, "
                f"source={self.source!r}")


def _read_samples_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(samples, labels or None) from a .npy or .npz file, with errors that name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"prior samples file {path} does not exist (expected a .npy array "
                                "(n, d), or a .npz with 'samples' and optional 'labels')")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npy or .npz file ({err})") from err
    if isinstance(data, np.ndarray):
        return data, None
    with data:
        keys = list(data.files)
        found = ", ".join(map(repr, keys)) or "none"
        unknown = [k for k in keys if k not in ("samples", "z", "labels")]
        if unknown:
            raise ValueError(f"{path}: unknown array(s) {unknown} in the .npz file, which may hold "
                             f"'samples' (or 'z') and optionally 'labels' (arrays found: {found})")
        names = [k for k in ("samples", "z") if k in keys]
        if len(names) != 1:
            raise ValueError(f"{path}: the .npz file needs one array named 'samples' or 'z' "
                             f"(arrays found: {found})")
        try:
            return data[names[0]], data["labels"] if "labels" in keys else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read the arrays of the .npz file ({err})") from err

