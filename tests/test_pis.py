"""PIS: the path-space log_q against brute force and the zero-drift case (its bound on the toy
model: the method contract in test_methods.py)."""

import math

import torch

from ddvi.likelihoods import Gaussian
from ddvi.methods import AEVB, PIS
from ddvi.nets import mlp
from ddvi.posteriors.pis import PISPosterior
from ddvi.priors import get_prior


def toy_pis(prior: str = "square", seed: int = 0, D: int = 5, **kwargs) -> PIS:
    torch.manual_seed(seed)
    opts = {"steps": 10, "context_dim": 4, "drift_hidden": 64} | kwargs
    lik = Gaussian(D)
    with torch.no_grad():
        lik.log_scale.fill_(math.log(0.3))
    return PIS(get_prior(prior), lik, mlp(2, (32,), D), PISPosterior(D, 2, (32,), **opts),
               beta_reg=1.0, prior_weight=1.0, name="pis")


def test_log_q_is_the_path_log_density_ratio_by_brute_force():
    sigma = 0.7
    q = PISPosterior(3, 2, (8,), steps=6, sigma=sigma, context_dim=2, drift_hidden=16)
    x = torch.rand(5, 3)
    z, log_q, ys = q.rsample_trajectory(x, torch.Generator().manual_seed(0))
    assert ys.shape == (7, 5, 2) and torch.equal(z, ys[-1]) and torch.equal(ys[0], torch.zeros(5, 2))
    c, dt = q.context(x), 1 / 6
    expect = torch.distributions.Normal(0.0, sigma).log_prob(z).sum(-1)  # log nu(z)
    for k in range(6):
        u = q.drift(ys[k], k + 1, c)
        assert u.abs().max() > 1e-3  # the drift is not trivially zero
        step_q = torch.distributions.Normal(ys[k] + u * dt, sigma * math.sqrt(dt))
        step_r = torch.distributions.Normal(ys[k], sigma * math.sqrt(dt))
        expect = expect + (step_q.log_prob(ys[k + 1]) - step_r.log_prob(ys[k + 1])).sum(-1)
    assert torch.allclose(log_q, expect, atol=1e-4), (log_q, expect)


def test_zero_drift_gives_the_reference_end_point():
    model = toy_pis(prior="gaussian", sigma=1.0)
    q = model.posterior
    with torch.no_grad():
        q.drift.out.weight.zero_()
        q.drift.out.bias.zero_()
    x = torch.rand(4000, 5)
    z, log_q = q.rsample(x, torch.Generator().manual_seed(0))
    assert torch.allclose(log_q, q.reference_log_prob(z), atol=1e-5)
    # the end point is N(0, sigma^2 I)
    assert z.mean(0).abs().max() < 0.06 and (z.std(0) - 1).abs().max() < 0.05
    # q = nu = p(z): the bound is exactly the reconstruction term
    t = model.elbo_terms(x[:16], torch.Generator().manual_seed(1))
    assert torch.allclose(t["log_q"], t["log_prior"], atol=1e-5)
    assert torch.allclose(t["elbo"], t["rec"], atol=1e-4)
    assert torch.allclose(q.summary(x[:3]), torch.zeros(3, 2))


def test_gradients_reach_drift_and_encoder(grads_of):
    model = toy_pis()
    assert isinstance(model, AEVB) and model.name == "pis"
    names = grads_of(model, -model.elbo_terms(torch.rand(8, 5))["elbo"].mean())
    assert any(n.startswith("posterior.drift.") for n in names)
    assert any(n.startswith("posterior.encoder.") for n in names)
    assert any(n.startswith("decoder.") for n in names)


def test_seeded_reproducibility():
    q = PISPosterior(3, 2, (8,), steps=4, context_dim=2, drift_hidden=16)
    x = torch.rand(5, 3)
    a = q.rsample(x, torch.Generator().manual_seed(7))
    b = q.rsample(x, torch.Generator().manual_seed(7))
    c = q.rsample(x, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
