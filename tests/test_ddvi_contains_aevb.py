"""DDVI's diffusion posterior contains AEVB's Gaussian: at initialisation q(z | x) is the
encoder's Gaussian and the auxiliary term vanishes, so DDVI's bound equals AEVB's."""

import math

import pytest
import torch

from ddvi.methods import StepContext, build_method
from ddvi.posteriors.diffusion import DiffusionPosterior


def log_normal(z, mean, std):
    return torch.distributions.Normal(mean, std).log_prob(z).sum(-1)


@pytest.mark.parametrize("T", [1, 5, 10, 20, 50])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_log_q_is_exactly_the_encoders_gaussian_at_init(T, kind):
    torch.manual_seed(T)
    q = DiffusionPosterior(4, 2, [16], timesteps=T, schedule=kind, context_dim=3)
    x = torch.randn(256, 4)
    with torch.no_grad():
        z, log_q = q.rsample(x, torch.Generator().manual_seed(1))
        mean, std, _ = q.encode(x)
    assert torch.allclose(log_q, log_normal(z, mean, std), atol=1e-3 * T)
    u = (z - mean) / std  # and z is distributed as N(mean, std^2): no blow-up for any T
    assert abs(float(u.mean())) < 0.15 and abs(float(u.std()) - 1) < 0.1
    assert torch.allclose(q.summary(x), mean)


def test_ddvi_elbo_equals_aevb_elbo_at_init():
    """Same encoder mean/scale weights, same decoder: the two bounds agree to MC precision."""
    torch.manual_seed(0)
    kw = dict(prior="pinwheel", likelihood="gaussian", hidden=(32,), beta_reg=1.0)
    ddvi, aevb = build_method("ddvi", 6, **kw), build_method("aevb", 6, **kw)
    aevb.decoder.load_state_dict(ddvi.decoder.state_dict())
    src, dst = ddvi.posterior.encoder.net, aevb.posterior.encoder.net
    dst[0].load_state_dict(src[0].state_dict())
    with torch.no_grad():  # the first 4 outputs are the mean and scale heads in both
        dst[-1].weight.copy_(src[-1].weight[:4])
        dst[-1].bias.copy_(src[-1].bias[:4])
    x = torch.randn(64, 6)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        e_d = torch.stack([ddvi.elbo_terms(x, g)["elbo"] for _ in range(200)])
        e_a = torch.stack([aevb.elbo_terms(x, g)["elbo"] for _ in range(200)])
    diff = float(e_d.mean() - e_a.mean())
    se = math.sqrt(float(e_d.mean(1).var() + e_a.mean(1).var()) / 200)
    assert abs(diff) < 4 * se + 1e-3, (diff, se)


def test_sleep_loss_is_the_gaussian_nll_at_init():
    torch.manual_seed(0)
    q = DiffusionPosterior(4, 2, [16], timesteps=10, context_dim=3)
    x, z = torch.randn(4096, 4), torch.randn(4096, 2)
    mean, std, _ = q.encode(x)
    loss = q.sleep_loss(x, z, torch.Generator().manual_seed(0))
    nll = -log_normal(z, mean, std)
    assert float((loss - nll).mean()) == pytest.approx(0, abs=4 * float((loss - nll).std()) / 64)


def test_chain_nll_bounds_the_marginal_nll():
    """In 1-D with T = 2 the chain's marginal q(u_0) is a 2-D integral: chain_nll >= -log q(u_0)."""
    torch.manual_seed(0)
    q = DiffusionPosterior(1, 1, [4], timesteps=2, context_dim=0, denoiser_hidden=16)
    torch.nn.init.normal_(q.denoiser.out.weight, std=1.0)
    g = torch.linspace(-8, 8, 801)
    du = float(g[1] - g[0])
    u0 = torch.tensor([[-1.5], [0.0], [0.7], [2.0]])
    with torch.no_grad():
        m2, lv2 = q.step(g[:, None], 2, None)          # q(u_1 | u_2) on the grid of u_2
        m1, lv1 = q.step(g[:, None], 1, None)          # q(u_0 | u_1) on the grid of u_1
        log_u2 = torch.distributions.Normal(0, 1).log_prob(g)
        log_u1 = torch.logsumexp(log_u2[:, None] + torch.distributions.Normal(
            m2, (0.5 * lv2).exp()).log_prob(g[None, :]), 0) + math.log(du)
        log_q0 = torch.logsumexp(log_u1[:, None] + torch.distributions.Normal(
            m1, (0.5 * lv1).exp()).log_prob(u0[:, 0][None, :]), 0) + math.log(du)
        mc = torch.stack([q.chain_nll(u0, None, torch.Generator().manual_seed(i))
                          for i in range(4000)]).mean(0)
    assert bool((mc >= -log_q0 - 0.02).all()), (mc, -log_q0)
    assert bool((mc < -log_q0 + 5).all())


def test_default_ddvi_trains_stably_for_small_and_large_T():
    """No NaN, no blow-up: 30 steps of the default wake-sleep at T = 5, 10, 20, 50."""
    x = torch.randn(128, 6)
    for T in (5, 10, 20, 50):
        torch.manual_seed(0)
        m = build_method("ddvi", 6, prior="pinwheel", likelihood="gaussian", hidden=(32,),
                         timesteps=T)
        opt, g = m.configure_optimizer(1e-3), torch.Generator().manual_seed(0)
        for _ in range(30):
            out = m.training_step(x, opt, StepContext(0, 1, g))
        assert all(bool(torch.isfinite(v)) for v in out.values()), (T, out)
        assert float(m.transform(x).abs().max()) < 10


def test_models_of_the_old_posterior_format_are_refused(tmp_path):
    import json

    import numpy as np

    from ddvi import DDVI
    from ddvi.checkpoint import load_checkpoint, save_checkpoint

    X = (np.random.default_rng(0).random((32, 8)) > 0.5).astype("float32")
    path = DDVI(prior="gaussian", hidden=(8,), epochs=1, timesteps=3, verbose=False).fit(X).save(
        tmp_path / "m")
    assert DDVI.load(path).transform(X).shape == (32, 2)
    tensors, meta = load_checkpoint(path / "model.safetensors")
    del meta["config"]["options"]["posterior_format"]  # as written before the format existed
    save_checkpoint(tmp_path / "old" / "model.safetensors", tensors, meta)
    with pytest.raises(ValueError, match="posterior format 1.*refit"):
        DDVI.load(tmp_path / "old")
    assert json.loads((path / "config.json").read_text())["options"]["posterior_format"] == 3
