"""Networks: MLPs, multi-head encoders, and the time-conditioned denoiser of appendix G."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

EncoderFactory = Callable[[int, Sequence[int], dict[str, int], float], nn.Module]
"""``(in_dim, hidden, heads, dropout) -> module`` mapping x to a dict of named heads: the MLP
:class:`Encoder` (the posteriors' default) or :class:`ddvi.convnets.ConvEncoder`."""
DecoderFactory = Callable[[int, Sequence[int], int, float], nn.Module]
"""``(latent_dim, hidden, out_dim, dropout) -> module`` mapping z to the likelihood's parameters:
:func:`mlp` or a conv decoder (see :func:`ddvi.convnets.architecture`)."""


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear -> LeakyReLU(0.2) [-> Dropout] per hidden width, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LeakyReLU(0.2)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """An MLP with named output heads, e.g. ``{"mean": 2, "scale": 2, "context": 10}``.

    Example:
        >>> enc = Encoder(784, [1000, 1000], {"mean": 2, "scale": 2})
        >>> enc(torch.zeros(3, 784))["mean"].shape
        torch.Size([3, 2])
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], heads: dict[str, int],
                 dropout: float = 0.0):
        super().__init__()
        self.heads = dict(heads)
        self.net = mlp(in_dim, hidden, sum(self.heads.values()), dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.net(x).split(list(self.heads.values()), dim=-1)
        return dict(zip(self.heads, out, strict=True))


class TimeLinear(nn.Module):
    """Linear layer plus a learned embedding of the step t added to its output."""

    def __init__(self, in_dim: int, out_dim: int, timesteps: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.embed = nn.Embedding(timesteps, out_dim)
        nn.init.normal_(self.embed.weight, std=0.1)

    def forward(self, h: Tensor, t: Tensor | int) -> Tensor:
        """``t`` in 1..T: an int (same step for the batch) or a (B,) tensor."""
        e = self.embed.weight[t - 1]
        return self.linear(h) + e


class DenoiserPass(NamedTuple):
    """Per-pass constants of :meth:`Denoiser.step` (see :meth:`Denoiser.prepare`)."""

    weights: list[Tensor]
    tables: list[Tensor]
    context: Tensor | None


class Denoiser(nn.Module):
    """The reverse-diffusion noise predictor eps(y_t, t, context): a 5-layer time-conditioned MLP.

    Appendix G: 128 hidden units, each hidden layer a time-conditioned linear layer. Conditioning
    on x enters through ``context`` (concatenated to y_t); ``context_dim=0`` is unconditional.
    With ``extra_out`` it returns ``dim + extra_out`` columns (e.g. a variance output after eps).
    With ``extra_in`` its input ``y`` has ``dim + extra_in`` columns: y_t and per-step features
    (DDVI's guidance).
    """

    def __init__(self, dim: int = 2, timesteps: int = 20, hidden: int = 128, layers: int = 5,
                 context_dim: int = 0, extra_out: int = 0, extra_in: int = 0):
        super().__init__()
        if layers < 2:
            raise ValueError("the denoiser needs at least 2 layers")
        self.dim, self.context_dim, self.in_dim = dim, context_dim, dim + extra_in
        widths = [self.in_dim + context_dim] + [hidden] * (layers - 1)
        self.hidden = nn.ModuleList(TimeLinear(a, b, timesteps) for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(hidden, dim + extra_out)

    def forward(self, y: Tensor, t: Tensor | int, context: Tensor | None = None) -> Tensor:
        h = y if context is None or self.context_dim == 0 else torch.cat([y, context], -1)
        for layer in self.hidden:
            h = torch.relu(layer(h, t))
        return self.out(h)

    def prepare(self, context: Tensor | None = None) -> DenoiserPass:
        """What :meth:`step` reuses across the T steps of one pass: each hidden layer's transposed
        weight and (T, width) table of bias plus step embedding, and the first layer's term for
        ``context`` (computed once instead of once per step)."""
        first = self.hidden[0].linear.weight
        weights = [first[:, :self.in_dim].t()] + [layer.linear.weight.t() for layer in self.hidden[1:]]
        tables = [layer.linear.bias + layer.embed.weight for layer in self.hidden]
        ctx = None
        if context is not None and self.context_dim:
            ctx = context @ first[:, self.in_dim:].t()
        return DenoiserPass(weights, tables, ctx)

    def step(self, y: Tensor, t: int, prepared: DenoiserPass) -> Tensor:
        """``forward(y, t, context)`` for one int step from :meth:`prepare`'s constants: the same
        function in fewer operations (the chain's cost is per-operation overhead, not arithmetic)."""
        weights, tables, ctx = prepared
        h = torch.addmm(tables[0][t - 1], y, weights[0])
        if ctx is not None:
            h = h + ctx
        h = torch.relu(h)
        for w, table in zip(weights[1:], tables[1:]):
            h = torch.relu(torch.addmm(table[t - 1], h, w))
        return self.out(h)
