"""Tests for ddvi.convnets (the paper's CIFAR-10 encoder and decoder)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from ddvi.convnets import ConvDecoder, ConvEncoder, chw_to_flat, conv_trunk, flat_to_chw
from ddvi.data import as_float
from ddvi.nets import Encoder

HEADS = {"mean": 2, "scale": 2, "context": 10}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def documented_counts(doc: str) -> tuple[int, int]:
    """The two parameter counts (BatchNorm on, off) a docstring states."""
    nums = re.findall(r"(\d{1,3}(?: \d{3})+) (?:parameters|without)", " ".join(doc.split()))
    assert len(nums) == 2, nums
    on, off = (int(n.replace(" ", "")) for n in nums)
    return on, off


def test_flattened_hwc_image_maps_to_chw():
    img = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    flat = torch.from_numpy(as_float(img))  # the project's pipeline: HWC uint8 -> flat floats
    chw = flat_to_chw(flat)
    assert chw.shape == (2, 3, 32, 32)
    # pixel (row 5, column 7), green channel
    assert chw[1, 1, 5, 7].item() == pytest.approx(img[1, 5, 7, 1] / 255.0)
    assert torch.equal(chw, torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255.0)
    assert torch.equal(chw_to_flat(chw), flat)
    assert torch.equal(flat_to_chw(flat.reshape(2, 32, 32, 3)), chw)


def test_flat_to_chw_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="expected images"):
        flat_to_chw(torch.zeros(2, 3000))
    with pytest.raises(ValueError, match="expected images"):
        flat_to_chw(torch.zeros(2, 3, 32, 32))  # CHW is not the project's layout
    with pytest.raises(ValueError, match="multiple of 1024"):
        ConvEncoder(784, [1000], HEADS)
    with pytest.raises(ValueError, match="multiple of 1024"):
        ConvDecoder(2, 784)


def test_encoder_intermediate_sizes():
    trunk = conv_trunk(3)
    h = torch.rand(2, 3, 32, 32)
    sizes = []
    for block in trunk:
        h = block(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(16, 32, 32), (32, 15, 15), (64, 6, 6), (128, 1, 1)]


def test_decoder_intermediate_sizes():
    dec = ConvDecoder(2, 3072)
    h = dec.fc(torch.randn(2, 2)).view(-1, 64, 1, 1)
    sizes = []
    for block in dec.blocks:
        h = block(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(64, 5, 5), (32, 13, 13), (16, 29, 29), (3, 32, 32)]


def test_encoder_is_a_drop_in_for_the_mlp_encoder():
    torch.manual_seed(0)
    conv, mlp = ConvEncoder(3072, [1000], HEADS, 0.2), Encoder(3072, [1000], HEADS, 0.2)
    x = torch.rand(4, 3072)
    a, b = conv(x), mlp(x)
    assert list(a) == list(b) == list(HEADS)
    assert all(a[k].shape == b[k].shape == (4, v) for k, v in HEADS.items())
    # leading dims and (..., 32, 32, 3) inputs
    conv.eval()
    x3 = torch.rand(2, 3, 3072)
    out = conv(x3)["context"]
    assert out.shape == (2, 3, 10)
    torch.testing.assert_close(out[1], conv(x3[1])["context"])
    torch.testing.assert_close(conv(x3.reshape(2, 3, 32, 32, 3))["mean"], conv(x3)["mean"])
    with pytest.raises(ValueError, match="ConvEncoder expects"):
        conv(torch.rand(2, 3, 32, 32))


def test_decoder_output_layout_and_leading_dims():
    torch.manual_seed(0)
    dec = ConvDecoder(2, 3072).eval()
    z = torch.randn(3, 4, 2)
    out = dec(z)
    assert out.shape == (3, 4, 3072)
    torch.testing.assert_close(out[2], dec(z[2]))
    # the flat output is the HWC flattening of the conv net's CHW map
    h = dec.blocks(dec.fc(z[0]).view(-1, 64, 1, 1))
    torch.testing.assert_close(out[0], h.permute(0, 2, 3, 1).reshape(4, -1))
    assert isinstance(dec.blocks[-1], torch.nn.ConvTranspose2d)  # no sigmoid: logits / means
    with pytest.raises(ValueError, match="latents"):
        dec(torch.randn(3, 5))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    enc, dec = ConvEncoder(3072, [1000], HEADS, 0.2), ConvDecoder(2, 3072)
    x = torch.rand(4, 3072)
    h = enc(x)
    recon = dec(h["mean"])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(recon, x) + h["scale"].sum() \
        + h["context"].sum()
    loss.backward()
    for name, p in [*enc.named_parameters(), *dec.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls, args", [(ConvEncoder, (3072, [1000], {"mean": 2, "scale": 2})),
                                       (ConvDecoder, (2, 3072))])
def test_documented_parameter_counts(cls, args):
    on, off = documented_counts(cls.__doc__)
    assert n_params(cls(*args)) == on
    assert n_params(cls(*args, batch_norm=False)) == off


def test_grey_images_use_one_channel():
    enc, dec = ConvEncoder(1024, [64], {"mean": 2}), ConvDecoder(2, 1024)
    assert enc.channels == dec.channels == 1
    assert enc(torch.rand(2, 1024))["mean"].shape == (2, 2)
    assert dec(torch.randn(2, 2)).shape == (2, 1024)
