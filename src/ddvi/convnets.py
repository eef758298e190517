"""The paper's CIFAR-10 encoder and decoder (appendix G; the official ``transposed_conv_net.py``).

Layout: both networks speak the project's flat image layout, the one ``ddvi.data.as_float`` and
the estimator produce by flattening uint8 ``(n, 32, 32, C)`` images, i.e. **HWC order**:
``flat[(h * 32 + w) * C + c]``. Inside they work on CHW tensors (``flat_to_chw``/``chw_to_flat``).
The image size is fixed at 32x32; ``C = dim / 1024`` (3 for CIFAR-10, 1 for grey images).

They are drop-in replacements for the MLP ones in :mod:`ddvi.nets`: ``ConvEncoder(in_dim, hidden,
heads, dropout)`` has :class:`ddvi.nets.Encoder`'s signature and returns the same dict of heads,
and ``ConvDecoder(latent_dim, out_dim)`` maps ``(..., latent_dim)`` to ``(..., out_dim)``
unconstrained outputs, like ``nets.mlp``: logits for the ``bernoulli`` likelihood, means for the
``gaussian`` one (the official decoder's final sigmoid is left to the likelihood).

BatchNorm: in training mode a batch needs at least 2 examples (the last conv map is 1x1).

:func:`architecture` resolves the ``arch`` switch of :func:`ddvi.methods.build_method`
(``"mlp"`` or ``"conv"``) into an encoder factory and a decoder factory.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ddvi.nets import DecoderFactory, Encoder, EncoderFactory, mlp

__all__ = ["ARCHS", "ConvDecoder", "ConvEncoder", "architecture", "chw_to_flat", "conv_trunk",
           "flat_to_chw"]

ARCHS = ("mlp", "conv")
CONV_HIDDEN = (1000,)  # the paper's MLP head on the 128 conv features

SIDE = 32
_PLANE = SIDE * SIDE


def _channels(dim: int, what: str) -> int:
    if dim < _PLANE or dim % _PLANE:
        raise ValueError(f"{what}={dim} is not a flattened 32x32xC image (must be a multiple of 1024)")
    return dim // _PLANE


def flat_to_chw(x: Tensor, channels: int = 3) -> Tensor:
    """``(B, 32*32*C)`` HWC-flattened images (or ``(B, 32, 32, C)``) -> ``(B, C, 32, 32)``."""
    if x.dim() == 2 and x.shape[1] == _PLANE * channels:
        x = x.reshape(-1, SIDE, SIDE, channels)
    if x.dim() != 4 or x.shape[1:] != (SIDE, SIDE, channels):
        raise ValueError(f"expected images of shape (B, {_PLANE * channels}) or (B, 32, 32, {channels}), "
                         f"got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2)


def chw_to_flat(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W*C)`` in HWC order (the inverse of :func:`flat_to_chw`)."""
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(x.shape)}")
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def _block(conv: nn.Module, channels: int, batch_norm: bool) -> nn.Sequential:
    layers = [conv] + ([nn.BatchNorm2d(channels)] if batch_norm else []) + [nn.ReLU()]
    return nn.Sequential(*layers)


def conv_trunk(in_channels: int = 3, batch_norm: bool = True) -> nn.Sequential:
    """The encoder's conv stack (official ``BareConvNet``): (B, C, 32, 32) -> (B, 128, 1, 1).

    Spatial sizes after each block: 32, 15, 6, 1; channels 16, 32, 64, 128.
    """
    spec = [(in_channels, 16, 3, 1, 1), (16, 32, 4, 2, 0), (32, 64, 5, 2, 0), (64, 128, 5, 2, 0)]
    return nn.Sequential(*(_block(nn.Conv2d(i, o, k, s, p), o, batch_norm) for i, o, k, s, p in spec))


class ConvEncoder(nn.Module):
    """Conv trunk -> flatten 128 -> ``nets.mlp(128, hidden, sum(heads))`` -> named heads.

    The paper uses ``hidden=(1000,)``. With 3 channels, ``hidden=(1000,)`` and heads
    ``{"mean": 2, "scale": 2}`` it has 398 348 parameters (BatchNorm on; 397 868 without).

    Example:
        >>> enc = ConvEncoder(3072, [1000], {"mean": 2, "scale": 2})
        >>> enc(torch.rand(4, 3072))["mean"].shape
        torch.Size([4, 2])
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], heads: dict[str, int],
                 dropout: float = 0.0, batch_norm: bool = True):
        super().__init__()
        self.in_dim, self.channels = in_dim, _channels(in_dim, "in_dim")
        self.heads = dict(heads)
        if not self.heads or min(self.heads.values()) < 1:
            raise ValueError(f"heads must map names to positive sizes, got {self.heads}")
        self.trunk = conv_trunk(self.channels, batch_norm)
        self.net = mlp(128, hidden, sum(self.heads.values()), dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``(..., in_dim)`` HWC-flattened images, or ``(..., 32, 32, C)``."""
        if x.shape[-1] == self.in_dim:
            lead = x.shape[:-1]
        elif x.dim() >= 3 and x.shape[-3:] == (SIDE, SIDE, self.channels):
            lead = x.shape[:-3]
        else:
            raise ValueError(f"ConvEncoder expects (..., {self.in_dim}) or (..., 32, 32, {self.channels}) "
                             f"inputs, got {tuple(x.shape)}")
        h = torch.flatten(self.trunk(flat_to_chw(x.reshape(-1, self.in_dim), self.channels)), 1)
        out = self.net(h).reshape(*lead, -1).split(list(self.heads.values()), dim=-1)
        return dict(zip(self.heads, out, strict=True))


class ConvDecoder(nn.Module):
    """Linear(latent, 64) + ReLU -> 64x1x1 -> ConvT 64, 32, 16 (k5 s2, BN, ReLU) -> ConvT C (k4).

    Spatial sizes 1 -> 5 -> 13 -> 29 -> 32. Returns ``(..., 32*32*C)`` HWC-flattened logits (or
    means). With ``latent_dim=2`` and 3 channels it has 167 699 parameters (BatchNorm on; 167 475
    without).

    Example:
        >>> dec = ConvDecoder(2, 3072)
        >>> dec(torch.randn(4, 2)).shape
        torch.Size([4, 3072])
    """

    def __init__(self, latent_dim: int = 2, out_dim: int = 3072, batch_norm: bool = True):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim, self.out_dim = latent_dim, out_dim
        self.channels = _channels(out_dim, "out_dim")
        self.fc = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU())
        spec = [(64, 64), (64, 32), (32, 16)]
        self.blocks = nn.Sequential(
            *(_block(nn.ConvTranspose2d(i, o, 5, 2), o, batch_norm) for i, o in spec),
            nn.ConvTranspose2d(16, self.channels, 4, 1),
        )

    def forward(self, z: Tensor) -> Tensor:
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"ConvDecoder expects (..., {self.latent_dim}) latents, got {tuple(z.shape)}")
        lead = z.shape[:-1]
        h = self.fc(z.reshape(-1, self.latent_dim)).view(-1, 64, 1, 1)
        return chw_to_flat(self.blocks(h)).reshape(*lead, self.out_dim)


def _conv_decoder(latent_dim: int, hidden: Sequence[int], out_dim: int, dropout: float) -> ConvDecoder:
    """:class:`DecoderFactory` for the conv decoder (its layout is fixed: ``hidden``, ``dropout``
    are ignored)."""
    return ConvDecoder(latent_dim, out_dim)


def architecture(arch: str, n_features: int) -> tuple[EncoderFactory, DecoderFactory]:
    """``(encoder factory, decoder factory)`` for ``arch``.

    ``"mlp"``: :class:`ddvi.nets.Encoder` and :func:`ddvi.nets.mlp`, for any ``n_features``.
    ``"conv"``: :class:`ConvEncoder` and :class:`ConvDecoder`, for flattened 32x32 images with 1 to
    3 channels (``n_features`` 1024, 2048 or 3072, HWC order).

    Example:
        >>> enc, dec = architecture("conv", 3072)
        >>> enc(3072, [16], {"mean": 2}, 0.0)(torch.rand(2, 3072))["mean"].shape
        torch.Size([2, 2])
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHS}")
    if arch == "mlp":
        return Encoder, mlp
    if n_features not in (_PLANE, 2 * _PLANE, 3 * _PLANE):
        raise ValueError(f"arch='conv' needs flattened 32x32 images with 1-3 channels (n_features "
                         f"1024, 2048 or 3072, HWC order), got n_features={n_features}")
    return ConvEncoder, _conv_decoder
