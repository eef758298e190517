"""Observation models: data-dependent initialisation and the isotropic (shared-scale) Gaussian."""

import math

import pytest
import torch
from torch.distributions import Normal

from ddvi.likelihoods import (
    LIKELIHOODS,
    Bernoulli,
    Gaussian,
    IsotropicGaussian,
    Likelihood,
    get_likelihood,
)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_gaussian_init_from_data_is_log_std_per_feature_floored():
    x = torch.randn(500, 4, generator=gen(0)) * torch.tensor([3.0, 0.5, 0.01, 0.0])
    lik = Gaussian(4)
    lik.init_from_data(x)
    std = x.std(0)
    want = torch.log(torch.tensor([float(std[0]), float(std[1]), float(std[2]), 1e-3]))
    assert torch.allclose(lik.log_scale, want, atol=1e-5)
    assert lik.log_scale[3].item() == pytest.approx(math.log(1e-3))
    lik.init_from_data(x, floor=0.1)
    assert lik.log_scale[2].item() == pytest.approx(math.log(0.1))
    assert lik.log_scale[0].item() == pytest.approx(math.log(float(std[0])), abs=1e-5)


def test_init_from_data_single_row_and_default_noop():
    lik = Gaussian(3)
    lik.init_from_data(torch.randn(1, 3))
    assert torch.equal(lik.log_scale.detach(), torch.zeros(3))
    b = Bernoulli()
    Likelihood.init_from_data(b, torch.ones(5, 3))  # default: nothing to do, nothing raised
    assert list(b.parameters()) == []


def test_isotropic_log_prob_matches_closed_form():
    lik = IsotropicGaussian(5)
    with torch.no_grad():
        lik.shared_log_scale.fill_(math.log(0.7))
    x, out = torch.randn(8, 5, generator=gen(1)), torch.randn(8, 5, generator=gen(2))
    want = Normal(out, 0.7).log_prob(x).sum(-1)
    got = lik.log_prob(x, out)
    assert got.shape == (8,)
    assert torch.allclose(got, want, atol=1e-5)
    # closed form of N(x; mu, s^2 I)
    sq = ((x - out) ** 2).sum(-1)
    closed = -0.5 * sq / 0.49 - 5 * math.log(0.7) - 2.5 * math.log(2 * math.pi)
    assert torch.allclose(got, closed, atol=1e-5)


def test_isotropic_has_one_parameter_and_shares_its_scale():
    lik = IsotropicGaussian(7)
    params = list(lik.parameters())
    assert len(params) == 1 and params[0].shape == () and params[0] is lik.shared_log_scale
    assert list(dict(lik.named_parameters())) == ["shared_log_scale"]
    assert lik.log_scale.shape == (7,)
    with torch.no_grad():
        lik.shared_log_scale.fill_(0.3)
    assert torch.equal(lik.log_scale, torch.full((7,), 0.3))
    assert set(lik.state_dict()) == {"shared_log_scale"}


def test_isotropic_init_is_rms_feature_std():
    x = torch.randn(400, 3, generator=gen(3)) * torch.tensor([2.0, 1.0, 0.1])
    lik = IsotropicGaussian(3)
    lik.init_from_data(x)
    rms = x.var(0).mean().sqrt()
    assert lik.shared_log_scale.item() == pytest.approx(math.log(float(rms)), abs=1e-5)
    assert lik.shared_log_scale.item() != pytest.approx(math.log(float(x.std(0).mean())), abs=1e-3)
    lik.init_from_data(torch.zeros(10, 3))
    assert lik.shared_log_scale.item() == pytest.approx(math.log(1e-3))


def test_isotropic_gradients_reach_shared_scale_and_sample_scale():
    lik = IsotropicGaussian(4)
    x, out = torch.randn(16, 4, generator=gen(4)) * 3, torch.zeros(16, 4)
    lik.log_prob(x, out).sum().backward()
    g = lik.shared_log_scale.grad
    assert g is not None and g.shape == ()
    # d/ds sum_i [-0.5 r_i^2 e^{-2s} - s] at s = 0: sum r^2 - n*d
    assert g.item() == pytest.approx(float((x**2).sum() - 16 * 4), rel=1e-5)
    with torch.no_grad():
        lik.shared_log_scale.fill_(math.log(2.0))
    s = lik.sample(torch.zeros(20000, 4), generator=gen(5))
    assert s.std().item() == pytest.approx(2.0, rel=0.03)
    assert torch.equal(lik.mean(out), out)


def test_get_likelihood_names():
    assert "gaussian-iso" in LIKELIHOODS
    lik = get_likelihood("gaussian-iso", 6)
    assert isinstance(lik, IsotropicGaussian) and lik.name == "gaussian-iso" and lik.dim == 6
    assert type(get_likelihood("gaussian", 6)) is Gaussian
    assert isinstance(get_likelihood("bernoulli", 6), Bernoulli)
    with pytest.raises(ValueError) as err:
        get_likelihood("poisson", 6)
    msg = str(err.value)
    assert "poisson" in msg and all(name in msg for name in LIKELIHOODS)


def test_estimator_initialises_the_isotropic_scale_from_data():
    """DDVI(likelihood='gaussian-iso') calls init_from_data before training: after 0 useful
    steps (lr tiny) the scale is the data's RMS standard deviation."""
    import numpy as np

    from ddvi import DDVI

    X = (np.random.default_rng(0).standard_normal((64, 5)) * 0.05).astype(np.float32)
    m = DDVI(method="aevb", prior="gaussian", likelihood="gaussian-iso", hidden=(8,), epochs=1,
             batch_size=64, lr=1e-12, verbose=False, binarize=False).fit(X)
    rms = float(np.sqrt(X.var(0, ddof=1).mean()))
    assert m.method_.likelihood.shared_log_scale.item() == pytest.approx(math.log(rms), abs=1e-4)
