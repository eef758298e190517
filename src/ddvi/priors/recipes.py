"""The sample-only priors of the paper, each a sampling recipe plus kernel noise:
:class:`SquarePrior` (analytic density), :class:`PinwheelPrior` and :class:`SwissRollPrior`
(tabulated densities)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ddvi.priors.base import DEFAULT_BANDWIDTHS, _log_ndtr_diff, _RecipePrior
from ddvi.priors.table import _TabulatedPrior


class SquarePrior(_RecipePrior):
    """Perimeter of [-1, 1]^2 with perpendicular N(0, sigma^2) noise, plus kernel noise.

    Part i: perimeter position ``pos`` in [i/n_parts, (i+1)/n_parts) (pieces may cross corners).
    The density is analytic (segments x Gaussian-blurred uniform x perpendicular Gaussian).
    """

    name = "square"
    # (start point, unit direction) of the 4 edges, traversed by increasing pos; length 2 each
    _EDGES = (((-1.0, 1.0), (1.0, 0.0)), ((1.0, 1.0), (0.0, -1.0)),
              ((1.0, -1.0), (-1.0, 0.0)), ((-1.0, -1.0), (0.0, 1.0)))

    def __init__(
        self,
        sigma: float = 0.06,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        n_parts: int = 10,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_parts, part)
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        starts, dirs, lengths, weights = self._segments()
        dt = torch.float64
        self.register_buffer("seg_start", torch.tensor(starts, dtype=dt), persistent=False)
        self.register_buffer("seg_dir", torch.tensor(dirs, dtype=dt), persistent=False)
        self.register_buffer("seg_len", torch.tensor(lengths, dtype=dt), persistent=False)
        self.register_buffer("seg_logw", torch.tensor(weights, dtype=dt).log(), persistent=False)

    def _config(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "bandwidths": self.bandwidths, "n_parts": self.n_parts}

    def _segments(self) -> tuple[list, list, list, list]:
        """Straight pieces of the (partial) perimeter with their probability weights."""
        a, b = (0.0, 1.0) if self.part is None else (
            self.part / self.n_parts, (self.part + 1) / self.n_parts)
        starts, dirs, lengths, weights = [], [], [], []
        for e, (s0, d) in enumerate(self._EDGES):
            lo, hi = max(a, e / 4), min(b, (e + 1) / 4)
            if hi - lo <= 1e-12:
                continue
            off = 8.0 * (lo - e / 4)
            starts.append((s0[0] + off * d[0], s0[1] + off * d[1]))
            dirs.append(d)
            lengths.append(8.0 * (hi - lo))
            weights.append((hi - lo) / (b - a))
        return starts, dirs, lengths, weights

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        pos = (k.to(dt) + torch.rand(n, generator=generator, device=dev, dtype=dt)) / self.n_parts
        nz = self.sigma * torch.randn(n, generator=generator, device=dev, dtype=dt)
        one = torch.ones_like(pos)
        x = torch.where(pos < 0.25, 8 * pos - 1, torch.where(
            pos < 0.5, 1 + nz, torch.where(pos < 0.75, 1 - 8 * (pos - 0.5), -1 + nz)))
        y = torch.where(pos < 0.25, one + nz, torch.where(
            pos < 0.5, 1 - 8 * (pos - 0.25), torch.where(pos < 0.75, -one + nz, 8 * (pos - 0.75) - 1)))
        return torch.stack([x, y], -1)

    def _log_prob(self, z: Tensor) -> Tensor:
        zz = z.to(torch.float64)
        rel = zz[:, None, :] - self.seg_start  # (n, P, 2)
        d = self.seg_dir
        s = (rel * d).sum(-1)[..., None]  # along-segment coordinate (n, P, 1)
        perp = (rel[..., 1] * d[:, 0] - rel[..., 0] * d[:, 1])[..., None]
        h = torch.tensor(self.bandwidths, dtype=torch.float64, device=z.device)  # (B,)
        length = self.seg_len[:, None]
        along = _log_ndtr_diff(s / h, (s - length) / h) - torch.log(length)
        var = self.sigma**2 + h**2
        across = -0.5 * perp**2 / var - 0.5 * torch.log(2 * math.pi * var)
        terms = along + across + self.seg_logw[:, None] - math.log(len(self.bandwidths))
        return torch.logsumexp(terms.flatten(1), dim=-1).to(z.dtype)



class PinwheelPrior(_TabulatedPrior):
    """Pinwheel (official recipe): ``n_arms`` spiral arms; part i = arm i.

    arm k ~ U{0..K-1}; f1 = 1 + radial_std*e1, f2 = tangential_std*e2;
    theta = 2 pi k / K + rate * exp(f1); z = R(-theta) (f1, f2).
    """

    name = "pinwheel"

    def __init__(
        self,
        n_arms: int = 10,
        radial_std: float = 0.15,
        tangential_std: float = 0.005,
        rate: float = 0.25,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        spacing: float = 0.0025,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_arms, part, spacing)
        if radial_std < 0 or tangential_std < 0:
            raise ValueError("radial_std and tangential_std must be >= 0")
        self.radial_std, self.tangential_std = float(radial_std), float(tangential_std)
        self.rate = float(rate)

    def _config(self) -> dict[str, Any]:
        return {"n_arms": self.n_parts, "radial_std": self.radial_std,
                "tangential_std": self.tangential_std, "rate": self.rate,
                "bandwidths": self.bandwidths, "spacing": self.spacing}

    def _arm_points(self, k: np.ndarray | Tensor, f1: Any, f2: Any, lib: Any) -> tuple[Any, Any]:
        theta = 2 * math.pi * k / self.n_parts + self.rate * lib.exp(f1)
        c, s = lib.cos(theta), lib.sin(theta)
        return f1 * c + f2 * s, -f1 * s + f2 * c

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        e = torch.randn(n, 2, generator=generator, device=dev, dtype=dt)
        f1, f2 = 1 + self.radial_std * e[:, 0], self.tangential_std * e[:, 1]
        x, y = self._arm_points(k.to(dt), f1, f2, torch)
        return torch.stack([x, y], -1)

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        f1, w1 = _normal_nodes(1.0, self.radial_std, 1601)
        f2, w2 = _normal_nodes(0.0, self.tangential_std, 31)
        arms = range(self.n_parts) if self.part is None else [self.part]
        k = np.repeat(np.asarray(list(arms), dtype=np.float64), f1.size * f2.size)
        f1g = np.tile(np.repeat(f1, f2.size), len(arms))
        f2g = np.tile(np.tile(f2, f1.size), len(arms))
        w = np.tile(np.outer(w1, w2).ravel(), len(arms))
        x, y = self._arm_points(k, f1g, f2g, np)
        return np.stack([x, y], -1), w


def _normal_nodes(mean: float, std: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform nodes over mean +- 6 std with normalised normal-pdf weights."""
    if std == 0:
        return np.array([mean]), np.array([1.0])
    u = np.linspace(-6.0, 6.0, n)
    w = np.exp(-0.5 * u**2)
    return mean + std * u, w / w.sum()


class SwissRollPrior(_TabulatedPrior):
    """Swiss roll: u = (U + k)/10, r = 3 sqrt(u), phi = 4.5 pi sqrt(u), z = r (cos, sin) phi.

    Part i: u in [i/n_parts, (i+1)/n_parts). ``noise`` adds isotropic N(0, noise^2) (default 0).
    """

    name = "swiss_roll"

    def __init__(
        self,
        noise: float = 0.0,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        n_parts: int = 10,
        spacing: float = 0.0025,
        nodes_per_part: int = 20000,
        part: int | None = None,
    ) -> None:
        super().__init__(bandwidths, n_parts, part, spacing)
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise, self.nodes_per_part = float(noise), int(nodes_per_part)

    def _config(self) -> dict[str, Any]:
        return {"noise": self.noise, "bandwidths": self.bandwidths, "n_parts": self.n_parts,
                "spacing": self.spacing, "nodes_per_part": self.nodes_per_part}

    def _kernel_bandwidths(self) -> tuple[float, ...]:
        return tuple(math.sqrt(h * h + self.noise**2) for h in self.bandwidths)

    @staticmethod
    def _curve(u: Any, lib: Any) -> tuple[Any, Any]:
        r, phi = 3.0 * lib.sqrt(u), 4.5 * math.pi * lib.sqrt(u)
        return r * lib.cos(phi), r * lib.sin(phi)

    def _recipe(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        n, dev, dt = k.shape[0], k.device, torch.float64
        u = (torch.rand(n, generator=generator, device=dev, dtype=dt) + k.to(dt)) / self.n_parts
        x, y = self._curve(u, torch)
        z = torch.stack([x, y], -1)
        if self.noise > 0:
            z = z + self.noise * torch.randn(n, 2, generator=generator, device=dev, dtype=dt)
        return z

    def _base_measure(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.nodes_per_part
        parts = np.arange(self.n_parts) if self.part is None else np.array([self.part])
        u = ((np.arange(m) + 0.5)[None, :] / m + parts[:, None]).ravel() / self.n_parts
        x, y = self._curve(u, np)
        return np.stack([x, y], -1), np.full(u.size, 1.0 / u.size)

