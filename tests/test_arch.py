"""The ``arch`` switch of build_method: every method with the paper's CIFAR-10 conv networks."""

from __future__ import annotations

import io

import pytest
import torch

from ddvi.convnets import ConvDecoder, ConvEncoder
from ddvi.methods import METHODS, StepContext, build_method
from ddvi.nets import Encoder

SMALL = {"hidden": (16,), "timesteps": 3, "denoiser_hidden": 16, "prior": "gaussian"}


def conv_model(method: str, seed: int = 0, n_features: int = 3072, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_method(method, n_features, arch="conv", **{**SMALL, **kw})


def images(n: int = 4, n_features: int = 3072, binary: bool = True) -> torch.Tensor:
    x = torch.rand(n, n_features, generator=torch.Generator().manual_seed(0))
    return (x > 0.5).float() if binary else x


def x_encoders(model) -> list[torch.nn.Module]:
    return [m for m in model.posterior.modules() if isinstance(m, (ConvEncoder, Encoder))]


def conv_params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()
            if isinstance(module.get_submodule(k.rsplit(".", 1)[0]),
                          (torch.nn.Conv2d, torch.nn.ConvTranspose2d))}


@pytest.mark.parametrize("method,sleep", [(m, "full") for m in METHODS] + [("ddvi", "latent")])
def test_one_training_step_trains_the_conv_networks(method, sleep):
    model = conv_model(method, sleep=sleep, context_dim=0 if sleep == "latent" else None)
    assert isinstance(model.decoder, ConvDecoder)
    encoders = x_encoders(model)
    assert encoders and all(isinstance(e, ConvEncoder) for e in encoders)
    before = {"enc": conv_params(model.posterior), "dec": conv_params(model.decoder)}
    assert before["enc"] and before["dec"]
    x = images()
    opt = model.configure_optimizer(1e-3)
    out = model.training_step(x, opt, StepContext(0, 10, torch.Generator().manual_seed(0)))
    assert torch.isfinite(out["loss"])
    # Adam moves a parameter only if it got a non-zero gradient: every conv layer learned
    for part, module in (("enc", model.posterior), ("dec", model.decoder)):
        after = conv_params(module)
        frozen = [k for k, v in before[part].items() if torch.equal(v, after[k])]
        assert not frozen, f"{method}: no gradient reached {frozen}"
    model.eval()
    z = model.transform(x)
    assert z.shape == (4, 2) and torch.isfinite(z).all()
    if model.has_elbo:
        terms = model.elbo_terms(x, torch.Generator().manual_seed(1))
        for name in ("rec", "log_prior", "log_q", "elbo"):
            assert terms[name].shape == (4,) and torch.isfinite(terms[name]).all(), name


def test_conv_uses_the_papers_head_and_grey_images():
    model = build_method("aevb", 3072, arch="conv", prior="gaussian")
    assert model.posterior.encoder.net[0].out_features == 1000 and len(model.posterior.encoder.net) == 3
    grey = conv_model("ddvi", n_features=1024, likelihood="gaussian")
    assert grey.posterior.encoder.channels == 1 and grey.decoder.channels == 1
    x = images(3, 1024, binary=False)
    assert grey.transform(x).shape == (3, 2)
    assert grey.elbo_terms(x)["elbo"].shape == (3,)


@pytest.mark.parametrize("n_features", [784, 3000, 4096, 1])
def test_conv_rejects_non_image_widths(n_features):
    with pytest.raises(ValueError, match=f"n_features={n_features}"):
        build_method("ddvi", n_features, arch="conv", prior="gaussian")


def test_unknown_arch_is_named():
    with pytest.raises(ValueError, match="unknown arch 'resnet'"):
        build_method("aevb", 3072, arch="resnet", prior="gaussian")


@pytest.mark.parametrize("method", ["ddvi", "aaeb"])
def test_conv_state_dict_round_trips(method):
    model = conv_model(method, seed=0)
    x = images()
    opt = model.configure_optimizer(1e-3)
    model.training_step(x, opt, StepContext(0, 10, torch.Generator().manual_seed(0)))  # BN stats move
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    other = conv_model(method, seed=1)
    other.load_state_dict(torch.load(buf, weights_only=True))
    model.eval()
    other.eval()
    assert torch.equal(model.transform(x), other.transform(x))
    z = torch.randn(3, 2)
    assert torch.equal(model.decode(z), other.decode(z))


def test_task_builders_pass_arch_through():
    from ddvi.tasks import build_cluster_variable, build_semi_supervised

    semi = build_semi_supervised("ddvi", 3072, classifier_hidden=(16,), prior="pinwheel", arch="conv",
                                 hidden=(16,), timesteps=3, denoiser_hidden=16)
    clus = build_cluster_variable("aevb", 3072, 3, head_hidden=(16,), arch="conv", hidden=(16,))
    for m in (semi, clus):
        assert isinstance(m.posterior.encoder, ConvEncoder) and isinstance(m.decoder, ConvDecoder)
