"""The method contract (every method of the table on a toy whose log p(x) is known) and the
update rules of each method."""

import math

import pytest
import torch
from torch import nn

from ddvi.checkpoint import load_checkpoint, save_checkpoint
from ddvi.likelihoods import Gaussian
from ddvi.methods import AEVB, DDVI, StepContext, build_method
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.posteriors.gaussian import GaussianPosterior
from ddvi.priors import get_prior


def toy_model(method: str, prior: str = "square", sleep: str = "full", seed: int = 0, D: int = 5):
    torch.manual_seed(seed)
    m = build_method(method, D, prior=prior, likelihood="gaussian", hidden=(32,), sleep=sleep,
                     timesteps=8, beta_reg=1.0, prior_weight=1.0, fantasy="mean")
    with torch.no_grad():
        m.likelihood.log_scale.fill_(math.log(0.3))
    return m


def test_aevb_elbo_is_exact_for_the_true_posterior():
    """Linear-Gaussian model with orthogonal decoder columns: the posterior is a diagonal Gaussian;
    plugging it into the encoder must give ELBO == log p(x) for every sample."""
    D, s = 4, 0.5
    W = torch.tensor([[1.5, 0.0], [0.0, 0.7], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([0.1, -0.2, 0.3, 0.0])
    decoder = nn.Linear(2, D)
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    lik = Gaussian(D)
    with torch.no_grad():
        lik.log_scale.fill_(math.log(s))
    q = GaussianPosterior(D, 2, [8])
    model = AEVB(get_prior("gaussian"), lik, decoder, q)
    S = torch.linalg.inv(torch.eye(2) + W.T @ W / s**2)
    q.params = lambda x: (((x - b) @ W / s**2) @ S, S.diagonal().sqrt().expand(len(x), 2))
    x = torch.randn(6, D, generator=torch.Generator().manual_seed(0))
    cov = W @ W.T + s**2 * torch.eye(D)
    exact = torch.distributions.MultivariateNormal(b, cov).log_prob(x)
    for seed in range(3):
        elbo = model.elbo_terms(x, torch.Generator().manual_seed(seed))["elbo"]
        assert torch.allclose(elbo, exact, atol=1e-4)


# ---------------------------------------------------------------------------- the contract

# parameters each loss must reach (to the depth its names give) and nothing else
WAKE = {"loss": {"decoder", "likelihood", "posterior"}}
REACH = {"ddvi-latent": WAKE | {"sleep": {"posterior.denoiser"}},
         "ddvi-full": WAKE | {"sleep": {"posterior.encoder", "posterior.denoiser"}},
         "aaeb": {"rec": {"decoder", "likelihood", "posterior"}, "disc": {"discriminator"},
                  "gen": {"discriminator", "posterior"}}}
AAEB_OPTIMIZERS = {"ae": {"decoder", "likelihood", "posterior"}, "disc": {"discriminator"},
                   "gen": {"posterior"}}


def reached(names, like: set[str]) -> set[str]:
    depth = max(n.count(".") for n in like) + 1
    return {".".join(n.split(".")[:depth]) for n in names}


def named_losses(model, x: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The losses a training step descends (for AAEB its three phases)."""
    if not model.has_elbo:
        rec = -model.likelihood.log_prob(x, model.decoder(model.posterior(x))).mean()
        return {"rec": rec, "disc": model.discriminator_loss(x, 0.2, g),
                "gen": model.generator_loss(x, 0.2, g)}
    terms = model.loss_terms(x, StepContext(9, 10, g))  # past any KL warm-up
    return {k: v for k, v in terms.items() if k in ("loss", "sleep")}


def outputs(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    z = model.transform(x)
    out = {"z": z, "x": model.decode(z)}
    if model.has_elbo:
        out |= model.elbo_terms(x, torch.Generator().manual_seed(7))
    else:
        out["disc"] = model.discriminator(z)
    return out


def test_method_contract(method_variant, toy, grads_of, mc_elbo, fit_steps, tmp_path):
    """Every method of the table: shapes, the parameters each loss reaches, a save/load round
    trip, and, trained on the linear-Gaussian toy, a Monte-Carlo bound below the exact log p(x)."""
    name, opts = method_variant
    key = "-".join([name, *opts.values()])
    model = toy.build(name, **opts)
    assert model.name == name and model.has_elbo == (name != "aaeb")
    x = toy.sample(64, seed=3)
    g = torch.Generator().manual_seed(0)

    # shapes
    out = outputs(model, x[:7])
    assert out["z"].shape == (7, toy.latent_dim) and out["x"].shape == (7, toy.D)
    if model.has_elbo:
        assert all(out[k].shape == (7,) for k in ("rec", "log_prior", "log_q", "elbo"))
    else:
        with pytest.raises(ValueError, match="no ELBO"):
            model.elbo_terms(x)
    step = model.training_step(x, model.configure_optimizer(1e-4), StepContext(0, 10, g))
    assert "loss" in step and all(v.ndim == 0 and not v.requires_grad for v in step.values())
    assert ("sleep" in step) == (opts.get("sleep") in ("latent", "full"))

    # each loss reaches exactly its parameters
    expected = REACH.get(key, WAKE)
    assert set(named_losses(model, x, g)) == set(expected)
    for term, like in expected.items():
        assert reached(grads_of(model, named_losses(model, x, g)[term]), like) == like, term
    if not model.has_elbo:
        params = {id(p): n for n, p in model.named_parameters()}
        opt = model.configure_optimizer(1e-3)
        assert {k: reached((params[id(p)] for grp in o.param_groups for p in grp["params"]),
                           AAEB_OPTIMIZERS[k]) for k, o in opt.items()} == AAEB_OPTIMIZERS

    # the saved weights give the same model (same outputs, same generator draws)
    model.eval()
    save_checkpoint(tmp_path / "m.safetensors", model.state_dict(), {})
    other = toy.build(name, seed=1, **opts).eval()
    other.load_state_dict(load_checkpoint(tmp_path / "m.safetensors")[0])
    with torch.no_grad():
        mine, theirs = outputs(model, x), outputs(other, x)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)

    # trained, the bound stays below the exact log-likelihood (up to Monte-Carlo error)
    if model.has_elbo:
        untrained = float(mc_elbo(model, x[:8], n=50)[0].mean())
        fit_steps(model.train(), x, steps=200)
        exact = toy.exact_log_px(model, x[:8])
        est, se = mc_elbo(model, x[:8])
        assert bool((est <= exact + 4 * se + 1e-3).all()), est - exact
        assert untrained < float(est.mean()) <= float(exact.mean()) + 4 * float(se.max())
        print(f"{key}: mean log p(x) {float(exact.mean()):.3f}, bound {float(est.mean()):.3f}")


# ---------------------------------------------------------------------------- per method


def test_ddvi_full_wake_and_sleep_reach_the_right_parameters(grads_of):
    model = toy_model("ddvi", sleep="full")
    x = torch.rand(16, 5)
    g = torch.Generator().manual_seed(0)
    wake = grads_of(model, model.wake_loss(x, g)["loss"])
    assert any(n.startswith("decoder.") for n in wake)
    assert any(n.startswith("posterior.encoder.") for n in wake)
    assert any(n.startswith("posterior.denoiser.") for n in wake)
    assert "likelihood.log_scale" in wake
    sleep = grads_of(model, model.full_sleep_loss(16, g))
    assert sleep and all(n.startswith("posterior.") for n in sleep)
    assert any(n.startswith("posterior.denoiser.") for n in sleep)
    assert any(n.startswith("posterior.encoder.") for n in sleep)  # context and y_T heads


def test_ddvi_latent_sleep_trains_only_the_denoiser(grads_of):
    model = toy_model("ddvi", sleep="latent")
    assert model.posterior.context_dim == 0
    sleep = grads_of(model, model.latent_sleep_loss(16, torch.Generator().manual_seed(0)))
    assert sleep and all(n.startswith("posterior.denoiser.") for n in sleep)


def test_full_sleep_step_leaves_generative_model_unchanged():
    model = toy_model("ddvi", sleep="full")
    opt = model.configure_optimizer(1e-2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model._step(opt, model.full_sleep_loss(16, torch.Generator().manual_seed(0)))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("posterior.denoiser.") for k in changed)
    assert all(k.startswith("posterior.") for k in changed), changed


def test_aevb_gradients_and_warmup(grads_of):
    model = toy_model("aevb")
    assert isinstance(model, AEVB)
    names = grads_of(model, -model.elbo_terms(torch.rand(8, 5))["elbo"].mean())
    assert any(n.startswith("decoder.") for n in names) and any(n.startswith("posterior.") for n in names)
    m = build_method("aevb", 784, prior="gaussian", hidden=(8,))
    assert m.beta_reg == pytest.approx(0.01 * 784) and m.prior_weight == 5.0


def test_ddvi_log_q_is_the_auxiliary_bound_term():
    """log_q = log q(y,z|x) - log r(y|z,x) recomputed from the trajectory by brute force, with
    non-zero residuals (y_t = mean + std * u_t: r and q both in z-space)."""
    torch.manual_seed(0)
    q = DiffusionPosterior(3, 2, [8], timesteps=4, context_dim=2)
    torch.nn.init.normal_(q.denoiser.out.weight, std=0.5)
    x = torch.rand(5, 3)
    z, log_q, us = q.rsample_trajectory(x, torch.Generator().manual_seed(0))
    mean, std, ctx = q.encode(x)
    ys = mean + std * us
    s = q.schedule
    lq = torch.distributions.Normal(mean, std).log_prob(ys[-1]).sum(-1)
    lr = torch.zeros(5)
    for t in range(4, 0, -1):
        out = q.denoiser(us[t], t, ctx)
        b = s.beta[t - 1]
        m = mean + std * ((1 - b).sqrt() * us[t] + b.sqrt() * out[:, :2])
        var = b * torch.exp(5 * torch.tanh(out[:, 2:] / 5))
        lq += torch.distributions.Normal(m, std * var.sqrt()).log_prob(ys[t - 1]).sum(-1)
        fwd = torch.distributions.Normal(mean + (1 - b).sqrt() * (ys[t - 1] - mean), std * b.sqrt())
        lr += fwd.log_prob(ys[t]).sum(-1)
    assert torch.allclose(z, ys[0], atol=1e-6)
    assert torch.allclose(log_q.sum(0), lq - lr, atol=1e-3)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown method"):
        build_method("vae", 10)
    with pytest.raises(ValueError, match="unknown sleep"):
        build_method("ddvi", 10, sleep="deep")
    with pytest.raises(ValueError):
        build_method("ddvi", 10, prior="banana")
    with pytest.raises(ValueError, match="unconditional"):
        DDVI(get_prior("gaussian"), Gaussian(3), nn.Linear(2, 3),
             DiffusionPosterior(3, 2, [4], timesteps=2, context_dim=2), sleep="latent")


def test_adam_is_fused_on_the_cpu_and_takes_the_same_step():
    from ddvi.methods.base import adam

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, 3))
    v = torch.nn.Parameter(w.detach().clone())
    fused, plain = adam([w], 1e-2), torch.optim.Adam([v], lr=1e-2)
    assert fused.defaults["fused"] is True
    for _ in range(3):
        for p, opt in ((w, fused), (v, plain)):
            opt.zero_grad()
            (p.sin().sum() + p.pow(2).sum()).backward()
            opt.step()
    torch.testing.assert_close(w, v, rtol=1e-6, atol=1e-6)
