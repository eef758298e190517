"""AEVB-IAF: the flow's density bookkeeping, its direction and ordering (its bound on the toy
model: the method contract in test_methods.py)."""

import math

import torch

from ddvi.likelihoods import Gaussian
from ddvi.methods import AEVBIAF
from ddvi.nets import mlp
from ddvi.posteriors.iaf import IAFPosterior
from ddvi.priors import get_prior


def toy_iaf(seed: int = 0, D: int = 5) -> AEVBIAF:
    torch.manual_seed(seed)
    lik = Gaussian(D)
    with torch.no_grad():
        lik.log_scale.fill_(math.log(0.3))
    q = IAFPosterior(D, 2, (32,))
    return AEVBIAF(get_prior("square"), lik, mlp(2, (32,), D), q, beta_reg=1.0, prior_weight=1.0,
                   name="aevb-iaf")


def sharpen(q: IAFPosterior, std: float = 0.5) -> None:
    """Randomise the MADE output layers (zero at init) so that the flow is far from the identity."""
    with torch.no_grad():
        for t in q.flow.transforms:
            t.hyper[-1].weight.normal_(0.0, std)
            t.hyper[-1].bias.normal_(0.0, std)


def test_log_q_is_base_density_minus_autograd_log_det():
    torch.manual_seed(0)
    q = IAFPosterior(4, 3, [8])
    sharpen(q)
    x = torch.rand(1, 4)
    z, log_q = q.rsample(x, torch.Generator().manual_seed(5))
    eps = torch.randn(1, 3, generator=torch.Generator().manual_seed(5))
    mean, std, ctx = q.encode(x)
    z0 = (mean + std * eps)[0].detach()
    with torch.no_grad():
        assert torch.allclose(q.flow(z0[None], ctx)[0], z, atol=1e-6)
    J = torch.autograd.functional.jacobian(lambda u: q.flow(u[None], ctx)[0][0], z0)
    expected = torch.distributions.Normal(mean[0], std[0]).log_prob(z0).sum() - torch.linalg.slogdet(J)[1]
    assert torch.allclose(log_q[0], expected, atol=1e-4), (log_q, expected)
    # the flow really moves z: the bookkeeping is not trivially the Gaussian's
    assert abs(float(torch.linalg.slogdet(J)[1])) > 0.1


def test_flow_is_invertible_and_log_prob_agrees():
    torch.manual_seed(1)
    q = IAFPosterior(4, 3, [8])
    sharpen(q)
    x = torch.rand(6, 4)
    z, log_q = q.rsample(x, torch.Generator().manual_seed(2))
    eps = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    mean, std, ctx = q.encode(x)
    with torch.no_grad():
        assert torch.allclose(q.flow.inverse(z, ctx), mean + std * eps, atol=1e-4)
        assert torch.allclose(q.log_prob(z, x), log_q, atol=1e-4)


def test_sampling_is_one_made_pass_per_transform():
    """IAF direction: z = f(z0) costs one MADE pass per transform; the inverse needs `dim` passes."""
    torch.manual_seed(0)
    q = IAFPosterior(4, 3, [8], n_transforms=4, made_hidden=(8,))
    calls = []
    for t in q.flow.transforms:
        t.hyper.register_forward_hook(lambda *_: calls.append(1))
    z, _ = q.rsample(torch.rand(2, 4))
    assert len(calls) == 4
    calls.clear()
    with torch.no_grad():
        q.flow.inverse(z, q.encode(torch.rand(2, 4))[2])
    assert len(calls) == 4 * 3


def test_ordering_alternates():
    torch.manual_seed(0)
    q = IAFPosterior(4, 3, [8], n_transforms=4, made_hidden=(16,))
    sharpen(q)
    ctx = q.encode(torch.rand(1, 4))[2].detach()
    u = torch.randn(3)
    strict_upper = torch.triu(torch.ones(3, 3, dtype=torch.bool), 1)
    for k, t in enumerate(q.flow.transforms):
        assert t.order.tolist() == ([2, 1, 0] if k % 2 else [0, 1, 2])
        J = torch.autograd.functional.jacobian(lambda v, t=t: t(ctx)(v[None])[0], u)
        zero, nonzero = (strict_upper.T, strict_upper) if k % 2 else (strict_upper, strict_upper.T)
        assert torch.all(J[zero] == 0), (k, J)
        assert torch.all(J[nonzero].abs() > 1e-6), (k, J)
    J = torch.autograd.functional.jacobian(lambda v: q.flow(v[None], ctx)[0][0], u)
    assert torch.all(J.abs() > 1e-6)  # the composition is dense


def test_density_integrates_to_one():
    torch.manual_seed(3)
    q = IAFPosterior(4, 2, [8], made_hidden=(16, 16))
    sharpen(q, 0.3)
    x = torch.rand(1, 4)
    with torch.no_grad():
        z, _ = q.rsample(x.expand(4000, -1), torch.Generator().manual_seed(0))
        lo, hi = z.min(0).values, z.max(0).values
        lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
        n = 301
        g0, g1 = torch.linspace(lo[0], hi[0], n), torch.linspace(lo[1], hi[1], n)
        zz = torch.stack(torch.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2)
        cell = float((g0[1] - g0[0]) * (g1[1] - g1[0]))
        mass = float(q.log_prob(zz, x.expand(len(zz), -1)).exp().sum()) * cell
    assert abs(mass - 1) < 0.01, mass


def test_rsample_is_reproducible_and_shapes():
    q = toy_iaf().posterior
    x = torch.rand(7, 5)
    z1, l1 = q.rsample(x, torch.Generator().manual_seed(4))
    z2, l2 = q.rsample(x, torch.Generator().manual_seed(4))
    z3, _ = q.rsample(x, torch.Generator().manual_seed(5))
    assert z1.shape == (7, 2) and l1.shape == (7,)
    assert torch.equal(z1, z2) and torch.equal(l1, l2) and not torch.equal(z1, z3)
    s = q.summary(x)
    assert s.shape == (7, 2) and torch.equal(s, q.summary(x))
    mean, _, ctx = q.encode(x)
    assert torch.allclose(s, q.flow(mean, ctx)[0])


def test_gradients_reach_encoder_and_every_flow_step(grads_of):
    model = toy_iaf()
    assert model.name == "aevb-iaf"
    names = grads_of(model, -model.elbo_terms(torch.rand(8, 5))["elbo"].mean())
    assert any(n.startswith("decoder.") for n in names)
    assert any(n.startswith("posterior.encoder.") for n in names)
    for k in range(4):
        assert any(n.startswith(f"posterior.flow.transforms.{k}.hyper.") for n in names), k
