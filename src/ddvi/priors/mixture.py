"""Gaussian mixture prior (:class:`MixturePrior`) with an analytic log-density, and its
components as single-part priors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ddvi.priors.base import LOG_2PI, Prior, _check_index, _rng_device


def _gauss_mix_default() -> tuple[Tensor, Tensor]:
    """Official ``gauss_mix``: 10 rotated elongated components on a circle of radius 1.4."""
    r = 2 * math.pi * torch.arange(10, dtype=torch.float64) / 10
    means = 1.4 * torch.stack([torch.cos(r), torch.sin(r)], -1)
    rot = torch.stack(
        [torch.stack([torch.cos(r), -torch.sin(r)], -1), torch.stack([torch.sin(r), torch.cos(r)], -1)],
        -2,
    )  # (K, 2, 2)
    diag = torch.diag(torch.tensor([0.5**2, 0.1**2], dtype=torch.float64))
    return means, rot @ diag @ rot.transpose(-1, -2)


def _as_covariances(scales: Any, k: int, d: int) -> Tensor:
    """Turn ``scales`` into (K, d, d) covariances.

    float: shared isotropic std; (K,): per-component isotropic std; (K, d): per-component diagonal
    std; (K, d, d): per-component full covariance.
    """
    s = torch.as_tensor(scales, dtype=torch.float64)
    if s.dim() == 0:
        cov = (s**2 * torch.eye(d, dtype=torch.float64)).expand(k, d, d)
    elif s.shape == (k,):
        cov = s[:, None, None] ** 2 * torch.eye(d, dtype=torch.float64)
    elif s.shape == (k, d):
        cov = torch.diag_embed(s**2)
    elif s.shape == (k, d, d):
        cov = s
    else:
        raise ValueError(
            f"scales shape {tuple(s.shape)} not understood for K={k}, d={d}: expected a float, "
            f"({k},), ({k}, {d}) or ({k}, {d}, {d})"
        )
    if not bool(torch.isfinite(cov).all()):
        raise ValueError("scales must be finite")
    return cov.clone()


class MixturePrior(Prior):
    """Gaussian mixture with analytic log-density; partition i = component i.

    Args:
        means: (K, d) component means; default: the official ``gauss_mix`` (10 components).
        scales: float (shared isotropic std), (K,) isotropic stds, (K, d) diagonal stds or
            (K, d, d) full covariances. Default: ``gauss_mix``
            covariances when ``means`` is None, else isotropic std 1.
        weights: (K,) positive mixture weights (normalised); default equal.
        learn_means: make the means an ``nn.Parameter``.
    """

    name = "mixture"

    def __init__(
        self,
        means: Tensor | Sequence[Sequence[float]] | None = None,
        scales: float | Tensor | None = None,
        weights: Tensor | Sequence[float] | None = None,
        learn_means: bool = False,
    ) -> None:
        super().__init__()
        if means is None:
            mu, cov = _gauss_mix_default()
        else:
            mu = torch.as_tensor(means, dtype=torch.float64).clone()
            cov = None
        if mu.dim() != 2 or mu.shape[0] < 1 or not bool(torch.isfinite(mu).all()):
            raise ValueError(f"means must be a finite (K, d) tensor, got shape {tuple(mu.shape)}")
        k, d = mu.shape
        if scales is not None or cov is None:
            cov = _as_covariances(1.0 if scales is None else scales, k, d)
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError("component covariances must be symmetric positive definite")
        w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64
        )
        if w.shape != (k,) or not bool((w > 0).all()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be {k} positive finite numbers")
        self.dim, self.n_partitions, self.learn_means = d, k, bool(learn_means)
        dt = torch.get_default_dtype()
        if learn_means:
            self.means = nn.Parameter(mu.to(dt))
        else:
            self.register_buffer("means", mu.to(dt))
        self.register_buffer("log_weights", (w / w.sum()).log().to(dt))
        self.register_buffer("chol", chol.to(dt))
        self.register_buffer("precision", torch.cholesky_inverse(chol).to(dt))
        self.register_buffer("half_logdet", chol.diagonal(dim1=-2, dim2=-1).log().sum(-1).to(dt))

    def component_log_probs(self, z: Tensor, idx: slice | None = None) -> Tensor:
        """Per-component ``log w_k + log N(z; mu_k, Sigma_k)``, shape (n, K) (validated z)."""
        z = self._validate(z)
        return self._component_log_probs(z, slice(None) if idx is None else idx)

    def _component_log_probs(self, z: Tensor, idx: slice) -> Tensor:
        dt = z.dtype
        diff = z[:, None, :] - self.means[idx].to(dt)  # (n, K, d)
        maha = torch.einsum("nki,kij,nkj->nk", diff, self.precision[idx].to(dt), diff)
        return (
            -0.5 * maha
            - self.half_logdet[idx].to(dt)
            - 0.5 * self.dim * LOG_2PI
            + self.log_weights[idx].to(dt)
        )

    def _log_prob(self, z: Tensor) -> Tensor:
        return torch.logsumexp(self._component_log_probs(z, slice(None)), dim=-1)

    def _sample_components(self, comp: Tensor, generator: torch.Generator | None) -> Tensor:
        dev = comp.device
        eps = torch.randn(comp.shape[0], self.dim, generator=generator, device=dev)
        mu, chol = self.means.detach().to(dev), self.chol.to(dev)
        return mu[comp] + torch.einsum("nij,nj->ni", chol[comp], eps)

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        probs = self.log_weights.exp().to(dev)
        comp = torch.multinomial(probs, n, replacement=True, generator=generator) if n else (
            torch.zeros(0, dtype=torch.int64, device=dev)
        )
        return self._sample_components(comp, generator), comp

    def partition(self, i: int) -> Prior:
        """Component ``i`` as a prior (a live view: follows learnable means)."""
        return _MixtureComponent(self, _check_index(i, self.n_partitions))

    def extra_repr(self) -> str:
        return f"K={self.n_partitions}, dim={self.dim}, learn_means={self.learn_means}"


class _MixtureComponent(Prior):
    """One component of a :class:`MixturePrior` (shares the parent's parameters)."""

    def __init__(self, parent: MixturePrior, index: int) -> None:
        super().__init__()
        self.parent = parent
        self.index = index
        self.name = f"mixture[{index}]"
        self.dim = parent.dim
        self.n_partitions = 1

    def _log_prob(self, z: Tensor) -> Tensor:
        lp = self.parent._component_log_probs(z, slice(self.index, self.index + 1))
        return lp[:, 0] - self.parent.log_weights[self.index].to(z.dtype)

    def _sample(self, n: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        dev = _rng_device(generator, self.device)
        comp = torch.full((n,), self.index, dtype=torch.int64, device=dev)
        return self.parent._sample_components(comp, generator), torch.zeros_like(comp)

