"""Tabulated densities: a kernel density of a weighted point set on a regular grid (built by
FFT, memoised), read back by bilinear interpolation with a Gaussian tail, and
:class:`_TabulatedPrior`, the recipe prior whose ``log_prob`` is such a table."""

from __future__ import annotations

import abc
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage
import torch
from torch import Tensor

from ddvi.priors.base import _RecipePrior

TAIL_CUTOFF = 1e-12  # table values below this fraction of the peak are replaced by the kernel tail


@dataclass(frozen=True)
class _Table:
    """Density table on a regular grid: value ``density[i, j]`` at (lo_x + i*dx, lo_y + j*dx)."""

    density: Tensor  # float32 (nx, ny), CPU, spacing^2 * sum == 1
    distance: Tensor  # float32 (nx, ny): distance from each node to the nearest node of support
    log_tau: float  # log of the cut-off density where the kernel tail takes over
    lo_x: float
    lo_y: float
    spacing: float
    build_seconds: float

    @property
    def extent(self) -> float:
        """Largest |coordinate| covered by the grid."""
        nx, ny = self.density.shape
        hx, hy = self.lo_x + (nx - 1) * self.spacing, self.lo_y + (ny - 1) * self.spacing
        return max(abs(self.lo_x), abs(self.lo_y), abs(hx), abs(hy))


_TABLE_CACHE: OrderedDict[tuple, _Table] = OrderedDict()
_TABLE_CACHE_SIZE = 24


def _deposit(points: np.ndarray, weights: np.ndarray, lo: np.ndarray, spacing: float,
             shape: tuple[int, int]) -> np.ndarray:
    """Cloud-in-cell (bilinear) deposit of weighted points onto the grid nodes."""
    f = (points - lo) / spacing
    i = np.floor(f).astype(np.int64)
    t = f - i
    grid = np.zeros(shape[0] * shape[1])
    for dx in (0, 1):
        wx = t[:, 0] if dx else 1.0 - t[:, 0]
        for dy in (0, 1):
            wy = t[:, 1] if dy else 1.0 - t[:, 1]
            idx = (i[:, 0] + dx) * shape[1] + (i[:, 1] + dy)
            grid += np.bincount(idx, weights * wx * wy, minlength=grid.size)
    return grid.reshape(shape)


def _grid(low: np.ndarray, high: np.ndarray, bandwidths: Sequence[float],
          spacing: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Lower corner and shape of the table grid over the box [low, high] (margin 6 max(h) + 3 cells)."""
    margin = 6.0 * max(bandwidths) + 3 * spacing
    lo = np.floor((low - margin) / spacing) * spacing
    hi = high + margin
    shape = tuple(scipy.fft.next_fast_len(int(np.ceil((hi[j] - lo[j]) / spacing)) + 2, real=True)
                  for j in range(2))
    return lo, shape


def _build_table(points: np.ndarray, weights: np.ndarray, bandwidths: Sequence[float],
                 spacing: float) -> _Table:
    """Tabulate ``sum_j w_j * mean_h N(z; x_j, h^2 I)`` on a grid covering the points.

    Deposit (CIC) and bilinear read-out each smooth by a variance of ~spacing^2/6 per axis, so the
    kernels applied on the grid have variance h^2 - spacing^2/3 (clipped at 0).  The Gaussian
    convolutions are done by FFT (the margin of 6*max(h) makes the periodic wrap negligible).
    """
    t0 = time.perf_counter()
    lo, shape = _grid(points.min(0), points.max(0), bandwidths, spacing)
    mass = _deposit(points, weights / weights.sum(), lo, spacing, shape)
    spec = scipy.fft.rfft2(mass, workers=-1)
    fx, fy = scipy.fft.fftfreq(shape[0]), scipy.fft.rfftfreq(shape[1])
    transfer = np.zeros(spec.shape)
    for h in bandwidths:
        s2 = max(h * h - spacing * spacing / 3.0, 0.0) / (spacing * spacing)  # in cells^2
        transfer += np.outer(np.exp(-2 * np.pi**2 * s2 * fx**2), np.exp(-2 * np.pi**2 * s2 * fy**2))
    spec *= transfer / len(bandwidths)
    dens = scipy.fft.irfft2(spec, s=shape, workers=-1)
    dens[dens < TAIL_CUTOFF * dens.max()] = 0.0  # FFT round-off (and negatives) -> exact zero
    dens /= dens.sum() * spacing**2
    dist = scipy.ndimage.distance_transform_edt(dens <= 0) * spacing
    table = torch.from_numpy(dens.astype(np.float32))
    return _Table(table, torch.from_numpy(dist.astype(np.float32)),
                  math.log(TAIL_CUTOFF * dens.max()), float(lo[0]), float(lo[1]), spacing,
                  time.perf_counter() - t0)


def _bilinear(table: Tensor, fx: Tensor, fy: Tensor) -> Tensor:
    """Bilinear interpolation of ``table`` at fractional indices; 0 outside (differentiable)."""
    nx, ny = table.shape
    ix = torch.floor(fx).clamp(0, nx - 2)
    iy = torch.floor(fy).clamp(0, ny - 2)
    tx, ty = fx - ix, fy - iy
    inside = (fx >= 0) & (fx <= nx - 1) & (fy >= 0) & (fy <= ny - 1)
    flat = table.reshape(-1)
    base = ix.long() * ny + iy.long()
    v00, v01 = flat[base].to(fx.dtype), flat[base + 1].to(fx.dtype)
    v10, v11 = flat[base + ny].to(fx.dtype), flat[base + ny + 1].to(fx.dtype)
    val = (1 - tx) * ((1 - ty) * v00 + ty * v01) + tx * ((1 - ty) * v10 + ty * v11)
    return torch.where(inside, val, torch.zeros_like(val))


class _TabulatedPrior(_RecipePrior):
    """Recipe prior whose density is tabulated from a deterministic quadrature of the recipe."""

    def __init__(self, bandwidths: Sequence[float], n_parts: int, part: int | None,
                 spacing: float) -> None:
        super().__init__(bandwidths, n_parts, part)
        if not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(f"spacing must be > 0, got {spacing}")
        self.spacing = float(spacing)
        self._meta: _Table | None = None
        self.register_buffer("_table", None, persistent=False)
        self.register_buffer("_distance", None, persistent=False)
        self.register_buffer("_score", None, persistent=False)

    @abc.abstractmethod
    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        """Quadrature (points (P, 2), weights (P,)) of the noise-free recipe (this part)."""

    def _kernel_bandwidths(self) -> tuple[float, ...]:
        """Bandwidths of the Gaussian noise added to the base measure."""
        return self.bandwidths

    def _table_key(self) -> tuple:
        """What identifies this prior's table in the memo (its class, configuration and part)."""
        return (type(self).__name__, tuple(sorted(self._config().items())), self.part)

    def table(self) -> _Table:
        """The (lazily built, memoised) density table of this prior."""
        if self._meta is None:
            key = self._table_key()
            meta = _TABLE_CACHE.get(key)
            if meta is None:
                pts, w = self._base_measure()
                meta = _build_table(pts, w, self._kernel_bandwidths(), self.spacing)
                _TABLE_CACHE[key] = meta
                while len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
                    _TABLE_CACHE.popitem(last=False)
            else:
                _TABLE_CACHE.move_to_end(key)
            self._meta = meta
        if self._table is None:
            self._table = self._meta.density.to(self.device)
            self._distance = self._meta.distance.to(self.device)
        return self._meta

    def score(self, z: Tensor) -> Tensor:
        """grad_z log p(z) (as a constant): the central differences of the log-density at the
        grid's nodes, read back bilinearly; beyond the grid, plus the Gaussian tail's pull back
        towards it. A few gathers, no autograd (DDVI's guidance calls it at every chain step)."""
        if self.dim != 2:
            return super().score(z)
        meta = self.table()
        if self._score is None:
            self._score = self._score_table(meta).to(self.device)
        nx, ny = self._table.shape
        lo = torch.tensor([meta.lo_x, meta.lo_y], dtype=z.dtype, device=z.device)
        f = (z.detach() - lo) / meta.spacing
        c = torch.minimum(f.clamp(min=0), torch.tensor([nx - 1.0, ny - 1.0], dtype=z.dtype,
                                                       device=z.device))
        i = c.floor().clamp(max=torch.tensor([nx - 2.0, ny - 2.0], device=z.device)).long()
        t = c - i
        base = i[:, 0] * ny + i[:, 1]
        table = self._score  # (nx * ny, 3): score x, score y, distance to the support
        corners = (table[base], table[base + 1], table[base + ny], table[base + ny + 1])
        tx, ty = t[:, :1], t[:, 1:]
        val = ((1 - tx) * ((1 - ty) * corners[0] + ty * corners[1])
               + tx * ((1 - ty) * corners[2] + ty * corners[3])).to(z.dtype)
        off = (f - c) * meta.spacing  # z minus its nearest grid point (0 on the grid)
        r = off.norm(dim=-1, keepdim=True)
        h = max(self._kernel_bandwidths())
        return val[:, :2] - (val[:, 2:] + r) / (h * h) * off / r.clamp(min=1e-12)

    def _score_table(self, meta: _Table) -> Tensor:
        """(nx * ny, 3): central differences of the log-density (table and tail, as
        :meth:`_log_prob` combines them) at the grid's nodes, and the distance table."""
        dens = meta.density.double()
        log_tab = torch.where(dens > 0, dens.clamp(min=1e-300).log(), torch.full_like(dens, -1e30))
        h = max(self._kernel_bandwidths())
        log_p = torch.logaddexp(log_tab, meta.log_tau - meta.distance.double().pow(2) / (2 * h * h))
        grads = torch.gradient(log_p, spacing=meta.spacing)
        return torch.stack([*grads, meta.distance.double()], -1).reshape(-1, 3).float()

    def _log_prob(self, z: Tensor) -> Tensor:
        meta = self.table()
        nx, ny = self._table.shape
        fx, fy = (z[:, 0] - meta.lo_x) / meta.spacing, (z[:, 1] - meta.lo_y) / meta.spacing
        dens = _bilinear(self._table, fx, fy)
        pos = dens > 0
        # A finite floor, not -inf: exp(-inf - -inf) would make the score's gradient NaN.
        log_tab = torch.where(pos, torch.log(torch.where(pos, dens, torch.ones_like(dens))),
                              torch.full_like(dens, -1e30))
        cx, cy = fx.clamp(0, nx - 1), fy.clamp(0, ny - 1)
        outside = ((fx - cx).pow(2) + (fy - cy).pow(2) + 1e-20).sqrt() * meta.spacing
        d = _bilinear(self._distance, cx, cy) + outside
        h = max(self._kernel_bandwidths())
        log_tail = meta.log_tau - d.pow(2) / (2 * h * h)
        top = torch.maximum(log_tab, log_tail).detach()
        return top + torch.log(torch.exp(log_tab - top) + torch.exp(log_tail - top))

