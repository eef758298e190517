"""Semi-supervised extension (paper section 4.1): label selection, the M2-style bound, the
classifier, the label-conditioned AAEB, and training through Trainer."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from ddvi.methods.base import StepContext
from ddvi.tasks import SemiSupervised, SemiSupervisedAAEB, build_semi_supervised, select_labels
from ddvi.train import Trainer

D = 5


def toy_semi(method: str = "aevb", prior: str = "square", seed: int = 0, alpha: float = 1.0,
             **kwargs) -> SemiSupervised:
    torch.manual_seed(seed)
    opts = {"likelihood": "gaussian", "hidden": (32,), "timesteps": 4, "beta_reg": 1.0,
            "prior_weight": 1.0} | kwargs
    m = build_semi_supervised(method, D, alpha=alpha, classifier_hidden=(16,), prior=prior, **opts)
    with torch.no_grad():
        m.likelihood.log_scale.fill_(math.log(0.3))
    return m


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class FixedLogits(nn.Module):
    """A stand-in classifier returning given logits (for the fixed batch it is called on)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


# ----------------------------------------------------------------------------- select_labels


def test_select_labels_keeps_exactly_n_and_is_seeded():
    y = np.repeat(np.arange(10), 50)
    out = select_labels(y, 37, seed=3)
    kept = out >= 0
    assert kept.sum() == 37 and out.dtype == np.int64 and out.shape == y.shape
    assert np.array_equal(out[kept], y[kept]) and np.all(out[~kept] == -1)
    assert np.array_equal(out, select_labels(y, 37, seed=3))
    assert not np.array_equal(out, select_labels(y, 37, seed=4))
    assert np.array_equal(y, np.repeat(np.arange(10), 50))  # input untouched
    assert (select_labels(y, 0) == -1).all() and np.array_equal(select_labels(y, len(y)), y)
    # entries already unlabelled are never selected
    y2 = y.copy()
    y2[::2] = -1
    out2 = select_labels(y2, 250, seed=0)
    assert (out2 >= 0).sum() == 250 and np.array_equal(out2, y2)


def test_select_labels_balanced():
    y = np.concatenate([np.full(40, 0), np.full(30, 1), np.full(50, 2)])
    out = select_labels(y, 10, seed=1, balanced=True)
    counts = np.bincount(out[out >= 0], minlength=3)
    assert counts.tolist() == [4, 3, 3]
    assert np.array_equal(out, select_labels(y, 10, seed=1, balanced=True))
    assert np.bincount(select_labels(y, 90, balanced=True)[select_labels(y, 90, balanced=True) >= 0]
                       ).tolist() == [30, 30, 30]


def test_select_labels_errors():
    y = np.array([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="exceeds"):
        select_labels(y, 6)
    with pytest.raises(ValueError, match=">= 0"):
        select_labels(y, -1)
    with pytest.raises(ValueError, match="class 0"):
        select_labels(y, 5, balanced=True)  # 3 + 2: class 0 has only 2
    with pytest.raises(ValueError):
        select_labels(y.reshape(5, 1), 2)
    with pytest.raises(ValueError, match="integer"):
        select_labels(np.array([0.5, 1.0]), 1)


# ----------------------------------------------------------------------------- the bound


def labelled_by_hand(m: SemiSupervised, x: torch.Tensor, labels: torch.Tensor, seed: int):
    """rec + log p(z|l) + log p(l) - log_q from the base model's pieces, same z."""
    z, log_q = m.posterior.rsample(x, gen(seed))
    rec = m.likelihood.log_prob(x, m.decoder(z))
    lp = torch.stack([m.prior.partition(int(l)).log_prob(z[i:i + 1])[0] for i, l in enumerate(labels)])
    return rec, lp - math.log(m.prior.n_partitions), log_q


def test_all_labels_observed_gives_the_labelled_objective():
    m = toy_semi(prior_weight=2.0, alpha=0.7)
    x = torch.randn(12, D)
    labels = torch.arange(12) % 10
    rec, log_pzl, log_q = labelled_by_hand(m, x, labels, seed=5)
    t = m.elbo_terms(x, gen(5), labels)
    assert torch.allclose(t["elbo"], rec + log_pzl - log_q, atol=1e-5)
    assert torch.allclose(t["log_prior"], log_pzl, atol=1e-5)
    # the training loss: base weights (beta_reg, prior_weight 2) plus alpha * CE
    ctx = StepContext(0, 1, gen(5), labels)
    loss = m.loss_terms(x, ctx)
    ce = nn.functional.cross_entropy(m.classifier(x), labels)
    expected = -(rec + m.beta_reg * (2.0 * log_pzl - log_q)).mean() + 0.7 * ce
    assert float(loss["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(loss["cls"].detach()) == pytest.approx(float(ce.detach()), rel=1e-5)


def test_one_hot_classifier_makes_unlabelled_equal_labelled():
    m = toy_semi()
    x = torch.randn(10, D)
    labels = torch.tensor([3, 0, 9, 9, 1, 5, 2, 7, 4, 6])
    logits = torch.full((10, 10), -1e4)
    logits[torch.arange(10), labels] = 0.0
    m.classifier = FixedLogits(logits)
    unl = m.elbo_terms(x, gen(1))["elbo"]
    lab = m.elbo_terms(x, gen(1), labels)["elbo"]
    assert torch.allclose(unl, lab, atol=1e-4)
    # and a mixed batch: each row follows its own case
    mixed = labels.clone()
    mixed[::2] = -1
    assert torch.allclose(m.elbo_terms(x, gen(1), mixed)["elbo"], lab, atol=1e-4)


def test_analytic_marginalisation_equals_brute_force_sum():
    """ELBO_U = sum_l q(l|x) [ELBO_L(x, l) - log q(l|x)] for the same z."""
    m = toy_semi(seed=2)
    with torch.no_grad():
        for p in m.classifier.parameters():
            p.mul_(5.0)  # a peaked but non-degenerate q(l | x)
    x = torch.randn(7, D)
    with torch.no_grad():
        unl = m.elbo_terms(x, gen(4))["elbo"]
        log_ql = m.classifier_log_probs(x)
        per_label = torch.stack([m.elbo_terms(x, gen(4), torch.full((7,), l))["elbo"]
                                 for l in range(10)], -1)
    brute = (log_ql.exp() * (per_label - log_ql)).sum(-1)
    assert torch.allclose(unl, brute, atol=1e-4)
    # the bound on log p(x) is the log-sum-exp over labels minus a KL, hence below it
    assert bool((unl <= torch.logsumexp(per_label, -1) + 1e-5).all())


def quadrature(m, x: torch.Tensor, log_prior_grid: torch.Tensor, zz: torch.Tensor, cell: float):
    with torch.no_grad():
        out = m.decoder(zz)
        return torch.stack([torch.logsumexp(m.likelihood.log_prob(xi.expand(len(zz), -1), out)
                                            + log_prior_grid, 0) for xi in x]) + cell


def test_bound_holds_and_partitions_recompose_the_prior():
    m = toy_semi()
    g = gen(3)
    with torch.no_grad():
        z, part = m.prior.sample(64, g)
        x = m.likelihood.sample(m.decoder(z), g)
    labels = part.clone()
    labels[32:] = -1
    opt = m.configure_optimizer(3e-3)
    for i in range(150):
        m.training_step(x, opt, StepContext(i, 150, g, labels))
    m.eval()

    grid = torch.linspace(-1.6, 1.6, 321)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    cell = math.log(float(grid[1] - grid[0]) ** 2)
    with torch.no_grad():
        log_pzl = m.log_prob_given_label(zz) + m.log_label_prior(zz)  # (N, K) log p(z, l)
        log_pz = m.prior.log_prob(zz)
    # sum_l p(l) p(z|l) = p(z) (equal-mass parts, uniform p(l)) ...
    assert torch.allclose(torch.logsumexp(log_pzl, -1), log_pz, atol=1e-4)
    xs, ls = x[:6], part[:6]
    exact = quadrature(m, xs, log_pz, zz, cell)
    # ... hence the semi-supervised marginal p(x) = sum_l p(l) p(x|l) is the unsupervised one
    per_label = torch.stack([quadrature(m, xs, log_pzl[:, l], zz, cell) for l in range(10)], -1)
    assert torch.allclose(torch.logsumexp(per_label, -1), exact, atol=1e-4)
    exact_joint = per_label.gather(1, ls[:, None])[:, 0]  # log p(x, l)

    n = 300
    with torch.no_grad():
        unl = torch.stack([m.elbo_terms(xs, gen(100 + s))["elbo"] for s in range(n)])
        lab = torch.stack([m.elbo_terms(xs, gen(100 + s), ls)["elbo"] for s in range(n)])
    for est, ref in ((unl, exact), (lab, exact_joint)):
        mean, se = est.mean(0), est.std(0) / math.sqrt(n)
        assert bool((mean <= ref + 4 * se + 1e-3).all()), mean - ref
        assert float((ref - mean).mean()) >= 0


# ----------------------------------------------------------------------------- gradients


def test_classifier_gradients_come_from_unlabelled_prior_and_ce_only(grads_of):
    m = toy_semi()
    x = torch.randn(8, D)
    labels = torch.arange(8)
    none = torch.full((8,), -1)
    # labelled rows: the bound does not involve q(l|x)
    g = grads_of(m, -m.elbo_terms(x, gen(0), labels)["elbo"].mean())
    assert g and not any(n.startswith("classifier.") for n in g)
    m.alpha = 0.0
    g = grads_of(m, m.loss_terms(x, StepContext(0, 1, gen(0), labels))["loss"])
    assert not any(n.startswith("classifier.") for n in g)
    # unlabelled rows: the classifier gets gradients through the prior part (and the entropy)
    g = grads_of(m, m.loss_terms(x, StepContext(0, 1, gen(0), none))["loss"])
    assert any(n.startswith("classifier.") for n in g) and any(n.startswith("decoder.") for n in g)
    # the CE term reaches the classifier only
    m.alpha = 1.0
    g = grads_of(m, m.loss_terms(x, StepContext(0, 1, gen(0), labels))["cls"])
    assert g and all(n.startswith("classifier.") for n in g)
    # the unlabelled part alone does not touch the classifier when log p(z|l) + log p(l) and H
    # are zeroed out: with beta = 0 (warm-up start) only rec and CE remain
    m.warmup_fraction = 1.0
    g = grads_of(m, m.loss_terms(x, StepContext(0, 10, gen(0), none))["loss"])
    assert not any(n.startswith("classifier.") for n in g)


def test_parameters_are_not_duplicated():
    m = toy_semi("ddvi")
    keys = list(m.state_dict())
    assert not any(k.startswith("base.") for k in keys)
    assert any(k.startswith("classifier.") for k in keys)
    assert any(k.startswith("posterior.denoiser.") for k in keys)
    names = [n for n, _ in m.named_parameters()]
    assert len(names) == len(set(names)) == len(list(m.parameters()))
    assert m.base.decoder is m.decoder and m.base.posterior is m.posterior
    m.eval()
    assert not m.base.training
    assert m.transform(torch.randn(3, D)).shape == (3, 2)


# ----------------------------------------------------------------------------- learning


def test_classifier_learns_from_ten_percent_labels():
    rng = torch.Generator().manual_seed(0)
    centres = torch.zeros(2, D)
    centres[0, :2], centres[1, :2] = 2.0, -2.0
    y = torch.arange(200) % 2
    x = centres[y] + 0.7 * torch.randn(200, D, generator=rng)
    labels = torch.from_numpy(select_labels(y.numpy(), 20, seed=0, balanced=True))
    means = [[-1.5, 0.0], [1.5, 0.0]]
    torch.manual_seed(0)
    m = build_semi_supervised("aevb", D, classifier_hidden=(16,), prior="mixture",
                              prior_options={"means": means, "scales": 0.3}, likelihood="gaussian",
                              hidden=(32,), beta_reg=1.0, prior_weight=1.0)
    assert m.n_classes == 2
    opt = m.configure_optimizer(3e-3)
    g = gen(0)
    for i in range(150):
        m.training_step(x, opt, StepContext(i, 150, g, labels))
    acc = float((m.predict(x) == y).float().mean())
    assert acc > 0.9, acc
    proba = m.predict_proba(x)
    assert proba.shape == (200, 2) and torch.allclose(proba.sum(-1), torch.ones(200))


@pytest.mark.parametrize("method", ["aevb", "ddvi", "aaeb"])
def test_trainer_runs_with_partial_labels(method):
    m = toy_semi(method, hidden=(16,))
    x = torch.randn(48, D)
    y = torch.from_numpy(select_labels(np.arange(48) % 10, 12, seed=0))
    hist = Trainer(m, epochs=2, batch_size=16, lr=1e-3, verbose=False).fit(x, y=y)
    assert len(hist) == 2 and "cls" in hist[-1]
    assert all(math.isfinite(v) for v in hist[-1].values())
    if method == "ddvi":
        assert "sleep" in hist[-1] and m.base.sleep == "full"
    assert m.predict(x).shape == (48,)
    # unlabelled data (no y) trains too
    Trainer(m, epochs=1, batch_size=16, lr=1e-3, verbose=False).fit(x)


def test_full_sleep_semi_supervised_ddvi():
    """sleep='full' (the official final stage): the wake step, then sleep steps on phi only."""
    m = toy_semi("ddvi", sleep="full", fantasy="mean")
    opt = m.configure_optimizer(1e-3)
    x, labels = torch.randn(16, D, generator=gen(1)), torch.tensor([0, 3] + [-1] * 14)
    out = m.training_step(x, opt, StepContext(0, 1, gen(2), labels))
    assert torch.isfinite(out["sleep"]) and torch.isfinite(out["loss"])
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m._step(opt, m.base.full_sleep_loss(16, gen(3)))
    changed = {k for k, v in m.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith("posterior.") for k in changed), changed


def test_errors():
    with pytest.raises(ValueError, match="partition"):
        toy_semi(prior="gaussian")
    m = toy_semi()
    with pytest.raises(ValueError, match="labels"):
        m.elbo_terms(torch.randn(3, D), labels=torch.tensor([0, 10, -1]))
    with pytest.raises(ValueError, match="labels"):
        m.elbo_terms(torch.randn(3, D), labels=torch.tensor([0, -2, 1]))
    with pytest.raises(ValueError, match="unknown method"):
        build_semi_supervised("pca", D)
    assert not toy_semi("aaeb").has_elbo


# ----------------------------------------------------------------------------- AAEB


def test_semi_aaeb_discriminator_conditioning():
    m = toy_semi("aaeb")
    assert isinstance(m, SemiSupervisedAAEB) and m.n_classes == 10
    assert m.discriminator[0].in_features == 2 + 11
    z = torch.zeros(3, 2)
    cond = m._condition(z, torch.tensor([0, -1, 9]))
    assert cond.shape == (3, 13)
    assert cond[:, 2:].argmax(-1).tolist() == [0, 10, 9] and torch.equal(cond[:, 2:].sum(-1),
                                                                        torch.ones(3))
    part = torch.arange(100) % 10
    real = m._real_labels(part, gen(0))
    hidden = real == -1
    assert int(hidden.sum()) == 50 and torch.equal(real[~hidden], part[~hidden])


def test_semi_aaeb_phases_touch_their_parameters():
    m = toy_semi("aaeb")
    opts = m.configure_optimizer(1e-2)
    assert set(opts) == {"ae", "disc", "gen", "cls"}
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.randn(16, D)
    m.training_step(x, opts, StepContext(0, 4, gen(0), torch.full((16,), -1)))
    changed = {k for k in before if not torch.equal(before[k], m.state_dict()[k])}
    assert not any(k.startswith("classifier.") for k in changed)  # no labels: no classifier step
    assert any(k.startswith("discriminator.") for k in changed)
    out = m.training_step(x, opts, StepContext(0, 4, gen(0), torch.arange(16) % 10))
    changed = {k for k in before if not torch.equal(before[k], m.state_dict()[k])}
    assert any(k.startswith("classifier.") for k in changed)
    assert set(out) == {"loss", "rec", "disc", "gen", "cls"}
