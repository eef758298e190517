"""AAEB: optimizer routing, the noise schedule, the discriminator, and training through Trainer."""

import math

import pytest
import torch

from ddvi.likelihoods import Gaussian
from ddvi.methods.aaeb import AAEB
from ddvi.methods.base import StepContext
from ddvi.nets import mlp
from ddvi.posteriors.deterministic import DeterministicPosterior
from ddvi.priors import get_prior
from ddvi.train import Trainer


def small_aaeb(seed: int = 0, D: int = 5, prior: str = "gaussian", **kwargs) -> AAEB:
    torch.manual_seed(seed)
    return AAEB(get_prior(prior), Gaussian(D), mlp(2, (16,), D), DeterministicPosterior(D, 2, (16,)),
                discriminator_hidden=(16, 16), **kwargs)


def changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    after = model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_deterministic_posterior_has_no_density():
    q = DeterministicPosterior(4, 2, (8,))
    x = torch.rand(3, 4)
    z, log_q = q.rsample(x)
    assert torch.equal(z, q.summary(x)) and bool(log_q.isnan().all()) and log_q.shape == (3,)


def test_each_phase_updates_only_its_own_parameters():
    model = small_aaeb()
    opts = model.configure_optimizer(1e-2)
    x, g = torch.rand(16, 5), torch.Generator().manual_seed(0)
    before = snapshot(model)
    model.reconstruction_step(x, opts["ae"])
    ae = changed(model, before)
    assert any(k.startswith("posterior.") for k in ae) and any(k.startswith("decoder.") for k in ae)
    assert "likelihood.log_scale" in ae
    assert all(k.startswith(("posterior.", "decoder.", "likelihood.")) for k in ae), ae

    before = snapshot(model)
    model.discriminator_step(x, opts["disc"], 0.3, g)
    disc = changed(model, before)
    assert disc and all(k.startswith("discriminator.") for k in disc), disc

    before = snapshot(model)
    model.generator_step(x, opts["gen"], 0.3, g)
    gen = changed(model, before)
    assert gen and all(k.startswith("posterior.") for k in gen), gen
    assert all(p.grad is None for p in model.discriminator.parameters())

    names = {id(p): n for n, p in model.named_parameters()}
    groups = {k: {names[id(p)].split(".")[0] for grp in o.param_groups for p in grp["params"]}
              for k, o in opts.items()}
    assert groups == {"ae": {"decoder", "likelihood", "posterior"}, "disc": {"discriminator"},
                      "gen": {"posterior"}}


def test_training_step_returns_detached_terms_and_lr_override():
    model = small_aaeb(lr=2e-4)
    opts = model.configure_optimizer(1e-3)
    assert all(o.param_groups[0]["lr"] == 2e-4 for o in opts.values())
    out = model.training_step(torch.rand(8, 5), opts, StepContext(0, 10, torch.Generator()))
    assert set(out) == {"loss", "rec", "disc", "gen"}
    assert all(not v.requires_grad and v.ndim == 0 and torch.isfinite(v) for v in out.values())


def test_noise_schedule():
    model = small_aaeb()
    got = [model.noise_std(e, 200) for e in (0, 49, 50, 99, 100, 149, 150, 199)]
    assert got == pytest.approx([0.3, 0.3, 0.2, 0.2, 0.1, 0.1, 0.0, 0.0])
    assert model.noise_std(150, 200) == 0.0
    assert small_aaeb(noise_start=0.0).noise_std(0, 200) == 0.0


def test_discriminator_separates_prior_from_a_shifted_cloud():
    torch.manual_seed(0)
    model = AAEB(get_prior("gaussian"), Gaussian(2), mlp(2, (4,), 2), DeterministicPosterior(2, 2, ()),
                 discriminator_hidden=(32, 32))
    with torch.no_grad():  # identity encoder: the codes are the data
        lin = model.posterior.encoder[0]
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    opt = model.configure_optimizer(3e-3)["disc"]
    g = torch.Generator().manual_seed(0)
    shift = torch.tensor([4.0, 4.0])

    def cloud(n):
        return torch.randn(n, 2, generator=g) + shift

    with torch.no_grad():
        first = float(model.discriminator_loss(cloud(256), 0.3, g))
    for _ in range(300):
        model.discriminator_step(cloud(128), opt, 0.3, g)
    with torch.no_grad():
        last = float(model.discriminator_loss(cloud(512), 0.3, g))
        real = model.discriminator(model.prior.sample(512, g)[0]).squeeze(-1)
        fake = model.discriminator(cloud(512)).squeeze(-1)
    acc = 0.5 * (float((real > 0).float().mean()) + float((fake < 0).float().mean()))
    assert acc > 0.97 and last < 0.25 < first, (acc, first, last)


def test_fit_through_trainer_with_checkpoint_resume(tmp_path):
    x = torch.rand(40, 5, generator=torch.Generator().manual_seed(1))
    kw = {"epochs": 4, "batch_size": 16, "lr": 1e-3, "verbose": False}

    straight = small_aaeb(prior="square")
    hist = Trainer(straight, run_dir=tmp_path / "a", **kw).fit(x)
    assert len(hist) == 4 and {"loss", "rec", "disc", "gen"} <= set(hist[0])
    assert all(math.isfinite(row["loss"]) for row in hist)

    interrupted = small_aaeb(prior="square")
    step = interrupted.training_step

    def stop_at_epoch_two(batch, opt, ctx):
        if ctx.epoch == 2:
            raise KeyboardInterrupt
        return step(batch, opt, ctx)

    interrupted.training_step = stop_at_epoch_two
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, run_dir=tmp_path / "b", **kw).fit(x)

    resumed = small_aaeb(seed=5, prior="square")  # different init: everything must come from disk
    trainer = Trainer(resumed, run_dir=tmp_path / "b", **kw)
    trainer.fit(x, resume=True)
    assert trainer.epoch == 4 and len(trainer.history) == 4
    ref = straight.state_dict()
    for k, v in resumed.state_dict().items():
        assert torch.allclose(v, ref[k], atol=1e-6), k
    for name, opt in trainer.optimizer.items():
        assert opt.state, name


def test_elbo_terms_raises():
    model = small_aaeb()
    assert model.has_elbo is False and model.name == "aaeb"
    with pytest.raises(ValueError, match="AAEB has no ELBO"):
        model.elbo_terms(torch.rand(4, 5))
