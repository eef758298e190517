"""The hierarchical variational posterior of H-AEVB (Ranganath, Tran & Blei 2016, "Hierarchical
Variational Models"), the paper's auxiliary-variable baseline.

    a ~ q(a | x)      Gaussian from the encoder, then an IAF with context c(x)
    z ~ q(z | a, x)   diagonal Gaussian from an MLP on [h(x), a], then an IAF with context [c(x), a]
    r(a | z, x)       diagonal Gaussian from an MLP on [z, h(x)] (the reverse model)

with h(x) a small feature head of the same encoder trunk. The bound is the auxiliary-variable ELBO

    log p(x) >= E_q(a, z | x)[log p(x, z) + log r(a | z, x) - log q(a | x) - log q(z | a, x)],

i.e. ``log_q = log q(a | x) + log q(z | a, x) - log r(a | z, x)``. (The official HVM code drops the
link between the levels, which does not give a bound; here z genuinely depends on a and r is the
learned reverse model.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ddvi.nets import Encoder, EncoderFactory, mlp
from ddvi.posteriors.base import Posterior, diag_normal_log_prob, positive_scale
from ddvi.posteriors.iaf import IAFFlow


class HierarchicalPosterior(Posterior):
    """q(a, z | x) = q(a | x) q(z | a, x) with the reverse model r(a | z, x).

    One encoder pass gives the heads ``mean_a``, ``scale_a``, ``context`` (flow context, if
    ``context_dim > 0``) and ``features`` (``features_dim`` columns fed to the z-level MLP and
    to r). Both the z-level MLP and r use ``aux_hidden`` hidden widths. ``encoder`` builds that
    encoder (see :class:`ddvi.posteriors.gaussian.GaussianPosterior`).

    Example:
        >>> q = HierarchicalPosterior(4, 2, [8], made_hidden=(8,), aux_hidden=(8,))
        >>> z, log_q = q.rsample(torch.zeros(5, 4))
        >>> z.shape, log_q.shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int], aux_dim: int = 2,
                 n_transforms: int = 2, made_hidden: Sequence[int] = (64, 64), context_dim: int = 10,
                 aux_hidden: Sequence[int] = (128, 128), dropout: float = 0.0,
                 features_dim: int = 32, encoder: EncoderFactory | None = None):
        super().__init__()
        self.latent_dim, self.aux_dim, self.context_dim = latent_dim, aux_dim, context_dim
        heads = {"mean_a": aux_dim, "scale_a": aux_dim, "features": features_dim}
        if context_dim:
            heads["context"] = context_dim
        self.encoder = (encoder or Encoder)(in_dim, hidden, heads, dropout)
        self.flow_a = IAFFlow(aux_dim, n_transforms, made_hidden, context_dim)
        self.z_net = mlp(features_dim + aux_dim, aux_hidden, 2 * latent_dim)
        self.flow_z = IAFFlow(latent_dim, n_transforms, made_hidden, context_dim + aux_dim)
        self.reverse = mlp(latent_dim + features_dim, aux_hidden, 2 * aux_dim)

    # ---- the pieces --------------------------------------------------------------------------
    def encode(self, x: Tensor) -> dict[str, Tensor]:
        """One encoder pass: ``mean_a``, ``std_a``, ``features`` and ``context`` (or None)."""
        h = self.encoder(x)
        return {"mean_a": h["mean_a"], "std_a": positive_scale(h["scale_a"]),
                "features": h["features"], "context": h.get("context")}

    def z_context(self, enc: dict[str, Tensor], a: Tensor) -> Tensor:
        """Context of the z-level flow: [c(x), a]."""
        c = enc["context"]
        return a if c is None else torch.cat([c, a], -1)

    def z_params(self, enc: dict[str, Tensor], a: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of the Gaussian base of q(z | a, x)."""
        mean, raw = self.z_net(torch.cat([enc["features"], a], -1)).chunk(2, -1)
        return mean, positive_scale(raw)

    def reverse_params(self, enc: dict[str, Tensor], z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of the reverse model r(a | z, x)."""
        mean, raw = self.reverse(torch.cat([z, enc["features"]], -1)).chunk(2, -1)
        return mean, positive_scale(raw)

    # ---- sampling ----------------------------------------------------------------------------
    def rsample_parts(self, x: Tensor, generator: torch.Generator | None = None
                      ) -> dict[str, Tensor]:
        """Samples and the three log densities: ``a``, ``z``, ``log_qa`` = log q(a|x),
        ``log_qz`` = log q(z|a,x), ``log_r`` = log r(a|z,x)."""
        enc = self.encode(x)
        mean_a, std_a = enc["mean_a"], enc["std_a"]
        shape = (*mean_a.shape[:-1], self.aux_dim + self.latent_dim)
        noise = torch.randn(shape, generator=generator, device=mean_a.device, dtype=mean_a.dtype)
        eps_a, eps_z = noise.split([self.aux_dim, self.latent_dim], -1)
        a, ladj_a = self.flow_a(mean_a + std_a * eps_a, enc["context"])
        mean_z, std_z = self.z_params(enc, a)
        z, ladj_z = self.flow_z(mean_z + std_z * eps_z, self.z_context(enc, a))
        mean_r, std_r = self.reverse_params(enc, z)
        log_r = diag_normal_log_prob((a - mean_r) / std_r, std_r)
        return {"a": a, "z": z, "log_qa": diag_normal_log_prob(eps_a, std_a) - ladj_a,
                "log_qz": diag_normal_log_prob(eps_z, std_z) - ladj_z, "log_r": log_r}

    def rsample(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        p = self.rsample_parts(x, generator)
        return p["z"], p["log_qa"] + p["log_qz"] - p["log_r"]

    def summary(self, x: Tensor) -> Tensor:
        """The deterministic pass with all noise set to 0."""
        enc = self.encode(x)
        a, _ = self.flow_a(enc["mean_a"], enc["context"])
        mean_z, _ = self.z_params(enc, a)
        return self.flow_z(mean_z, self.z_context(enc, a))[0]
