"""DDVI's guided chain: the denoiser sees asinh(std * grad_z log p) at z = mean + std * u_t."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ddvi import DDVI
from ddvi.checkpoint import load_checkpoint, save_checkpoint
from ddvi.likelihoods import get_likelihood
from ddvi.methods import build_method
from ddvi.posteriors.diffusion import DiffusionPosterior
from ddvi.priors import get_prior


def guided(guidance: str = "prior", decoder=None) -> DiffusionPosterior:
    torch.manual_seed(0)
    q = DiffusionPosterior(3, 2, [8], timesteps=4, context_dim=2, denoiser_hidden=8,
                           guidance=guidance)
    q.attach_model(SimpleNamespace(prior=get_prior("gaussian"),
                                   likelihood=get_likelihood("gaussian", 3),
                                   decoder=decoder or torch.nn.Linear(2, 3)))
    with torch.no_grad():  # leave the identity start, so the denoiser's input matters
        q.denoiser.out.weight.normal_(0, 0.5)
    return q


def test_prior_feature_is_the_scaled_prior_score():
    """For N(0, I), grad log p(z) = -z: the feature is asinh(-std * (mean + std * u))."""
    q = guided()
    u, mean, std = torch.randn(5, 2), torch.randn(5, 2), torch.rand(5, 2) + 0.1
    out = q.guided(u, (torch.randn(5, 3), mean, std))
    torch.testing.assert_close(out, torch.cat([u, torch.asinh(-std * (mean + std * u))], -1))


def test_joint_feature_adds_the_likelihood_score_of_the_current_decoder():
    q = guided("joint")
    x, u, mean, std = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5, 2), torch.ones(5, 2)
    model = q.__dict__["_model"]
    model.decoder = torch.nn.Linear(2, 3)  # replaced after attaching: the new one is used
    z = (mean + u).requires_grad_(True)
    log_p = model.prior.log_prob(z) + model.likelihood.log_prob(x, model.decoder(z))
    score = torch.autograd.grad(log_p.sum(), z)[0]
    torch.testing.assert_close(q.guided(u, (x, mean, std))[:, 2:], torch.asinh(score))


def test_no_gradient_flows_through_the_score():
    """The score is a constant input: the feature's gradient reaches std (its scale) only."""
    q = guided()
    u = torch.randn(5, 2, requires_grad=True)
    mean = torch.randn(5, 2, requires_grad=True)
    std = torch.ones(5, 2, requires_grad=True)
    feature = q.guided(u, (None, mean, std))[:, 2:]
    assert feature.grad_fn is not None
    gu, gm, gs = torch.autograd.grad(feature.sum(), [u, mean, std], allow_unused=True)
    assert gu.abs().sum() == 0 and gm is None
    assert gs is not None and gs.abs().sum() > 0


def test_guided_fast_chain_equals_step_by_step_chain():
    from ddvi.diffusion import LOG_2PI

    q = guided()
    x = torch.randn(6, 3)
    z, terms, traj = q.rsample_trajectory(x, torch.Generator().manual_seed(1))
    noise = torch.randn((5, 6, 2), generator=torch.Generator().manual_seed(1))
    mean, std, context = q.encode(x)
    u, us, log_q = noise[4], [noise[4]], []
    for t in range(4, 0, -1):
        m, log_var = q.step(u, t, context, (x, mean, std))
        u = m + (0.5 * log_var).exp() * noise[t - 1]
        log_q.append(-0.5 * (noise[t - 1].pow(2) + log_var + LOG_2PI).sum(-1))
        us.append(u)
    ref = torch.stack(us[::-1])
    torch.testing.assert_close(traj, ref, rtol=1e-5, atol=1e-5)
    steps = torch.stack(log_q[::-1]) - q.schedule.forward_log_prob_steps(ref)
    torch.testing.assert_close(terms[1:], steps, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(z, mean + std * u)


def test_a_guided_chain_without_its_model_says_so():
    q = DiffusionPosterior(3, 2, [8], timesteps=2, guidance="prior")
    with pytest.raises(RuntimeError, match="attach_model"):
        q.rsample(torch.randn(2, 3))
    with pytest.raises(ValueError, match="unknown guidance 'score'.*none.*prior.*joint"):
        DiffusionPosterior(3, 2, [8], guidance="score")


def test_the_method_attaches_itself_and_copies_follow():
    model = build_method("ddvi", 4, prior="pinwheel", hidden=(8,), timesteps=3,
                         denoiser_hidden=8)
    assert model.posterior.guidance == "prior"
    assert model.posterior.__dict__["_model"] is model
    clone = copy.deepcopy(model)
    assert clone.posterior.__dict__["_model"] is clone
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in clone.parameters())
    terms = clone.elbo_terms(torch.rand(5, 4), torch.Generator().manual_seed(0))
    assert torch.isfinite(terms["elbo"]).all()


@pytest.mark.parametrize("sleep", ["latent", "full"])
def test_guided_sleep_losses_are_finite_and_reach_the_denoiser(sleep):
    model = build_method("ddvi", 4, prior="pinwheel", hidden=(8,), timesteps=3, denoiser_hidden=8,
                         sleep=sleep)
    g = torch.Generator().manual_seed(0)
    loss = (model.latent_sleep_loss(16, g) if sleep == "latent"
            else model.full_sleep_loss(16, g))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.posterior.denoiser.out.weight.grad.abs().sum() > 0


def test_auto_guidance_is_the_prior_score_unless_the_prior_is_gaussian():
    from ddvi.methods import resolve_guidance
    from ddvi.tasks.clustering import build_mixture_clustering

    def guidance(**kw):
        return build_method("ddvi", 4, hidden=(8,), timesteps=2, **kw).posterior.guidance

    assert guidance(prior="pinwheel") == "prior"
    assert guidance(prior="gaussian") == "none"
    assert guidance(prior="gaussian", guidance="joint") == "joint"
    assert build_mixture_clustering("ddvi", 4, 3, hidden=(8,), timesteps=2).posterior.guidance \
        == "prior"
    with pytest.raises(ValueError, match="unknown guidance 'yes'.*auto"):
        resolve_guidance("yes", get_prior("gaussian"))


def data() -> np.ndarray:
    return (np.random.default_rng(0).random((32, 6)) > 0.5).astype("float32")


def test_saved_guided_model_round_trips(tmp_path):
    model = DDVI(prior="pinwheel", hidden=(8,), epochs=1, timesteps=3, denoiser_hidden=8,
                 verbose=False).fit(data())
    loaded = DDVI.load(model.save(tmp_path / "m"))
    assert loaded.guidance == "auto" and loaded.config_.diffusion.guidance == "auto"
    assert loaded.method_.posterior.guidance == "prior"
    np.testing.assert_allclose(loaded.transform(data()), model.transform(data()), atol=1e-6)


def test_a_format_2_model_loads_unguided(tmp_path):
    """Files written before guidance existed (posterior format 2) hold an unguided chain."""
    model = DDVI(prior="pinwheel", hidden=(8,), epochs=1, timesteps=3, denoiser_hidden=8,
                 verbose=False, guidance="none").fit(data())
    path = model.save(tmp_path / "m")
    tensors, meta = load_checkpoint(path / "model.safetensors")
    config = meta["config"]
    config["options"]["posterior_format"] = 2
    del config["model"]["diffusion"]["guidance"], config["params"]["guidance"]
    save_checkpoint(tmp_path / "old" / "model.safetensors", tensors, meta)
    loaded = DDVI.load(tmp_path / "old")
    assert loaded.guidance == "none" and loaded.config_.diffusion.guidance == "none"
    np.testing.assert_allclose(loaded.transform(data()), model.transform(data()), atol=1e-6)
    assert json.loads((path / "config.json").read_text())["model"]["diffusion"]["guidance"] == "none"


@pytest.mark.parametrize("name", ["pinwheel", "swiss_roll"])
def test_tabulated_score_matches_autograd_of_the_log_density(name):
    """The table's score (node differences read back bilinearly) is the log-density's gradient
    up to the grid's resolution; far from the grid it still points back towards the prior."""
    prior = get_prior(name)
    g = torch.Generator().manual_seed(0)
    z = torch.cat([prior.sample(1000, g)[0], torch.randn(1000, 2, generator=g)])
    zz = z.clone().requires_grad_(True)
    ref = torch.autograd.grad(prior.log_prob(zz).sum(), zz)[0]
    score = prior.score(z)
    err = (score - ref).norm(dim=-1) / (ref.norm(dim=-1) + 1)
    assert err.median() < 0.1
    assert (torch.nn.functional.cosine_similarity(score, ref, dim=-1) > 0.9).float().mean() > 0.9
    far = torch.tensor([[8.0, 0.0], [0.0, -9.0], [-7.0, 7.0]])
    assert (prior.score(far) * far).sum(-1).lt(0).all()  # towards the origin
    assert torch.isfinite(prior.score(far)).all()


def test_analytic_and_autograd_scores():
    z = torch.randn(6, 2)
    torch.testing.assert_close(get_prior("gaussian").score(z), -z)
    square = get_prior("square")
    zz = z.clone().requires_grad_(True)
    ref = torch.autograd.grad(square.log_prob(zz).sum(), zz)[0]
    torch.testing.assert_close(square.score(z), ref)
