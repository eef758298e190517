"""H-AEVB: the auxiliary-variable bound term by brute force, the links between levels (its bound
on the toy model: the method contract in test_methods.py)."""

import math

import torch

from ddvi.likelihoods import Gaussian
from ddvi.methods import HAEVB
from ddvi.nets import mlp
from ddvi.posteriors.hierarchical import HierarchicalPosterior
from ddvi.priors import get_prior


def toy_h(seed: int = 0, D: int = 5) -> HAEVB:
    torch.manual_seed(seed)
    lik = Gaussian(D)
    with torch.no_grad():
        lik.log_scale.fill_(math.log(0.3))
    q = HierarchicalPosterior(D, 2, (32,))
    return HAEVB(get_prior("square"), lik, mlp(2, (32,), D), q, beta_reg=1.0, prior_weight=1.0,
                 name="h-aevb")


def randomise_flows(q: HierarchicalPosterior, std: float = 0.5) -> None:
    """The flows start as the identity; make them non-trivial."""
    with torch.no_grad():
        for flow in (q.flow_a, q.flow_z):
            for t in flow.transforms:
                t.hyper[-1].weight.normal_(0.0, std)
                t.hyper[-1].bias.normal_(0.0, std)


def flow_log_density(flow, base_mean, base_std, y, context):
    """log density of y = flow(base) with base ~ N(mean, std): inverse + autograd Jacobian."""
    y0 = flow.inverse(y[None], context[None])[0].detach()
    J = torch.autograd.functional.jacobian(lambda u: flow(u[None], context[None])[0][0], y0)
    return torch.distributions.Normal(base_mean, base_std).log_prob(y0).sum() - torch.linalg.slogdet(J)[1]


def test_log_q_is_the_auxiliary_bound_term():
    """log_q = log q(a|x) + log q(z|a,x) - log r(a|z,x), each recomputed from scratch."""
    torch.manual_seed(0)
    q = HierarchicalPosterior(4, 3, [8], aux_dim=2, made_hidden=(16,), aux_hidden=(16,))
    randomise_flows(q)
    x = torch.rand(3, 4)
    parts = q.rsample_parts(x, torch.Generator().manual_seed(1))
    z, log_q = q.rsample(x, torch.Generator().manual_seed(1))
    assert torch.equal(z, parts["z"])
    h = q.encoder(x)
    for i in range(3):
        a_i, z_i = parts["a"][i].detach(), z[i].detach()
        feats, ctx = h["features"][i], h["context"][i]
        std_a = torch.nn.functional.softplus(h["scale_a"][i]) + 1e-4
        lqa = flow_log_density(q.flow_a, h["mean_a"][i], std_a, a_i, ctx)
        mz, rz = q.z_net(torch.cat([feats, a_i])).chunk(2)
        lqz = flow_log_density(q.flow_z, mz, torch.nn.functional.softplus(rz) + 1e-4, z_i,
                               torch.cat([ctx, a_i]))
        mr, rr = q.reverse(torch.cat([z_i, feats])).chunk(2)
        lr = torch.distributions.Normal(mr, torch.nn.functional.softplus(rr) + 1e-4).log_prob(a_i).sum()
        assert torch.allclose(parts["log_qa"][i], lqa, atol=1e-4)
        assert torch.allclose(parts["log_qz"][i], lqz, atol=1e-4)
        assert torch.allclose(parts["log_r"][i], lr, atol=1e-4)
        assert torch.allclose(log_q[i], lqa + lqz - lr, atol=1e-4)


def test_z_depends_on_a():
    """The two levels are linked: moving a moves q(z | a, x) (the official code's levels are not)."""
    torch.manual_seed(0)
    q = HierarchicalPosterior(4, 2, [8], made_hidden=(16,), aux_hidden=(16,))
    enc = q.encode(torch.rand(1, 4))
    a = torch.zeros(1, 2, requires_grad=True)
    mean_z, std_z = q.z_params(enc, a)
    z, _ = q.flow_z(mean_z + std_z, q.z_context(enc, a))
    (grad,) = torch.autograd.grad(z.sum(), a)
    assert grad.abs().min() > 0


def test_rsample_is_reproducible_and_shapes():
    q = toy_h().posterior
    x = torch.rand(7, 5)
    z1, l1 = q.rsample(x, torch.Generator().manual_seed(4))
    z2, l2 = q.rsample(x, torch.Generator().manual_seed(4))
    z3, _ = q.rsample(x, torch.Generator().manual_seed(5))
    assert z1.shape == (7, 2) and l1.shape == (7,)
    assert torch.equal(z1, z2) and torch.equal(l1, l2) and not torch.equal(z1, z3)
    parts = q.rsample_parts(x)
    assert parts["a"].shape == (7, 2) and all(parts[k].shape == (7,) for k in ("log_qa", "log_qz", "log_r"))
    s = q.summary(x)
    assert s.shape == (7, 2) and torch.equal(s, q.summary(x))


def test_gradients_reach_encoder_flows_and_reverse_model(grads_of):
    model = toy_h()
    assert model.name == "h-aevb"
    x = torch.rand(8, 5)
    names = grads_of(model, -model.elbo_terms(x)["elbo"].mean())
    for prefix in ("decoder.", "posterior.encoder.", "posterior.z_net.", "posterior.reverse.",
                   "posterior.flow_a.transforms.0.hyper.", "posterior.flow_a.transforms.1.hyper.",
                   "posterior.flow_z.transforms.0.hyper.", "posterior.flow_z.transforms.1.hyper."):
        assert any(n.startswith(prefix) for n in names), prefix
    # the reconstruction alone reaches the a-level through z (levels linked)
    rec = grads_of(model, -model.elbo_terms(x)["rec"].mean())
    assert any(n.startswith("posterior.flow_a.") for n in rec)
