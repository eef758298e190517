"""Tests for SamplesPrior: priors given by samples (issue 15): density, sampling, partitions,
file input and its errors, and models that keep the prior inside their saved weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from ddvi import DDVI, SemiSupervisedDDVI
from ddvi.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ddvi.methods import build_method
from ddvi.priors import (
    DEFAULT_BANDWIDTHS,
    MAX_TABLE_NODES,
    GaussianPrior,
    PinwheelPrior,
    Prior,
    SamplesPrior,
    get_prior,
)
from ddvi.tasks.semi_supervised import _PartitionedPrior

BW2 = (0.05, 0.1, 0.2)  # 2-D tests: spacing 0.025, a small table


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _blobs(n: int = 600, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three unequal Gaussian blobs (proportions 1/2, 1/3, 1/6) with their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], [n // 2, n // 3, n - n // 2 - n // 3])
    centres = rng.normal(size=(3, d)) * 1.5
    return centres[labels] + 0.3 * rng.normal(size=(n, d)), labels


def _brute(z: np.ndarray, x: np.ndarray, bandwidths: tuple[float, ...]) -> np.ndarray:
    """log of the explicit kernel density (1/n) sum_j mean_h N(z; x_j, h^2 I), float64."""
    d = x.shape[1]
    sq = ((z[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    terms = np.concatenate([-sq / (2 * h * h) - d * np.log(h) - 0.5 * d * np.log(2 * np.pi)
                            for h in bandwidths], 1)
    return special.logsumexp(terms, 1) - np.log(x.shape[0] * len(bandwidths))


def _grid_integral(prior: Prior, lo: float, hi: float, step: float) -> tuple[float, float]:
    """Riemann sums of p and of p log p over [lo, hi]^2 (offset from the table's nodes)."""
    xs = torch.arange(lo + 0.37 * step, hi, step, dtype=torch.float64)
    mass = plogp = 0.0
    for chunk in torch.split(xs, 128):
        gx, gy = torch.meshgrid(chunk, xs, indexing="ij")
        lp = prior.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)).double()
        p = lp.exp()
        mass += p.sum().item()
        plogp += torch.where(p > 0, p * lp, torch.zeros_like(p)).sum().item()
    return mass * step * step, plogp * step * step


def _line(prior: Prior, lo: float, hi: float) -> float:
    """Trapezoid integral of a 1-D prior's density over [lo, hi]."""
    z = torch.linspace(lo, hi, 20_001, dtype=torch.float64)[:, None]
    return float(np.trapezoid(prior.log_prob(z).exp().numpy(), z[:, 0].numpy()))


# ----------------------------------------------------------------------------- density


def test_samples_tensors_are_the_persistent_state():
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    assert set(prior.state_dict()) == {"samples", "labels", "widths"}
    assert torch.equal(prior.samples, torch.from_numpy(x)) and torch.equal(prior.labels,
                                                                        torch.from_numpy(y))
    assert prior.widths.tolist() == list(BW2) and prior.bandwidths == BW2
    assert prior.n_partitions == 3 and prior.dim == 2
    # numpy and torch input, float labels holding integers: the same prior
    same = Prior.from_samples(torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)), BW2)
    assert same.sha256 == prior.sha256
    assert Prior.from_samples(x, y, (0.05, 0.1)).sha256 != prior.sha256


@pytest.mark.parametrize("d", [1, 3])
def test_log_prob_is_the_exact_kernel_density_near_and_far(d):
    x, _ = _blobs(300, d)
    bw = (0.03, 0.1, 0.4)
    prior = Prior.from_samples(x, bandwidth=bw)
    rng = np.random.default_rng(1)
    near = x[rng.integers(300, size=200)] + 0.03 * rng.normal(size=(200, d))
    far = 20 * rng.normal(size=(200, d))  # log p down to thousands of nats below the peak
    for z in (near, far):
        got = prior.log_prob(torch.from_numpy(z)).numpy()
        ref = _brute(z, x, bw)
        assert np.allclose(got, ref, rtol=1e-9, atol=1e-9)
    assert _brute(far, x, bw).min() < -1000


def test_log_prob_float32_input_and_gradient():
    x, _ = _blobs(200, 3)
    prior = Prior.from_samples(x, bandwidth=(0.1, 0.3))
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(prior.log_prob, (z,))
    lp = prior.log_prob(z.detach().float())
    assert lp.dtype == torch.float32
    assert torch.allclose(lp.double(), prior.log_prob(z.detach()), atol=1e-4)


def test_2d_table_agrees_with_the_kernel_density_and_has_the_tail_beyond():
    x, _ = _blobs()
    prior = Prior.from_samples(x, bandwidth=BW2)
    rng = np.random.default_rng(2)
    z = np.concatenate([x[rng.integers(len(x), size=1000)] + s * rng.normal(size=(1000, 2))
                        for s in (0.05, 0.3)])
    ref = _brute(z, x, BW2)
    got = prior.log_prob(torch.from_numpy(z)).numpy()
    table = prior.table()
    inside = ref > table.log_tau + 5  # where the table holds the density (not its tail)
    assert inside.mean() > 0.95
    assert np.abs(got - ref)[inside].max() < 0.03  # measured 0.028 (spacing h_min / 2)
    assert np.percentile(np.abs(got - ref)[inside], 99) < 0.015
    # beyond the tabulated support: the built-in priors' Gaussian tail, finite and decreasing
    far = np.linspace(table.extent + 0.5, table.extent + 5, 10)
    lp = prior.log_prob(torch.from_numpy(np.stack([far, np.zeros(10)], 1))).numpy()
    assert np.isfinite(lp).all() and (np.diff(lp) < 0).all() and lp[0] < table.log_tau


def test_density_integrates_to_one():
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    lo, hi = x.min() - 1.5, x.max() + 1.5
    assert _grid_integral(prior, lo, hi, 0.02)[0] == pytest.approx(1.0, abs=1e-4)
    x1, y1 = _blobs(300, 1)
    prior1 = Prior.from_samples(x1, y1, (0.02, 0.2))
    assert _line(prior1, x1.min() - 3, x1.max() + 3) == pytest.approx(1.0, abs=1e-8)
    for i in range(3):
        assert _line(prior1.partition(i), x1.min() - 3, x1.max() + 3) == pytest.approx(1.0, abs=1e-8)
        assert _grid_integral(prior.partition(i), lo, hi, 0.02)[0] == pytest.approx(1.0, abs=1e-4)


def test_parts_mixed_with_log_weights_are_the_whole_prior():
    for d, bw in ((1, (0.02, 0.2)), (3, (0.05, 0.3)), (2, BW2)):
        x, y = _blobs(600, d)
        prior = Prior.from_samples(x, y, bw)
        assert torch.allclose(prior.log_weights.exp().double(),
                              torch.tensor([1 / 2, 1 / 3, 1 / 6], dtype=torch.float64), atol=1e-6)
        z = torch.from_numpy(x[::5] + 0.1 * np.random.default_rng(3).normal(size=x[::5].shape))
        parts = torch.stack([prior.partition(i).log_prob(z) for i in range(3)], 1)
        mixed = torch.logsumexp(parts + prior.log_weights.double(), 1)
        assert torch.allclose(mixed, prior.log_prob(z), atol=1e-9 if d != 2 else 1e-4)
        # the semi-supervised task's p(l) is the class proportions
        pp = _PartitionedPrior(prior)
        assert torch.equal(pp.log_label_prior(z), prior.log_weights.double())
        assert torch.allclose(pp.log_prob_given_label(z), parts)


# ----------------------------------------------------------------------------- sampling


def test_recipe_samples_are_stored_samples_in_class_proportions():
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    z, part = prior.sample(6000, _gen(), kernel_noise=False)
    dist = torch.cdist(z.double(), torch.from_numpy(x)).min(1).values
    assert dist.max() < 1e-6  # float32 copies of stored rows
    idx = torch.cdist(z.double(), torch.from_numpy(x)).argmin(1)
    assert torch.equal(torch.from_numpy(y)[idx], part)
    freq = torch.bincount(part, minlength=3).double() / 6000
    assert torch.allclose(freq, torch.tensor([1 / 2, 1 / 3, 1 / 6], dtype=torch.float64), atol=0.02)
    # a part samples only its own rows; noise-free draw = full draw minus the kernel noise
    zp, pp = prior.partition(2).sample(500, _gen(), kernel_noise=False)
    assert (pp == 0).all() and torch.equal(torch.from_numpy(y)[torch.cdist(
        zp.double(), torch.from_numpy(x)).argmin(1)], torch.full((500,), 2))
    full, _ = prior.sample(6000, _gen())
    noise = (full - z).double().norm(dim=1)
    assert 0 < noise.mean() < 3 * max(BW2)


def test_samples_follow_the_density_1d_exact_cdf():
    x, _ = _blobs(300, 1)
    bw = (0.02, 0.2)
    prior = Prior.from_samples(x, bandwidth=bw)
    z, _ = prior.sample(20_000, _gen(4))

    def cdf(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[:, None]
        return np.mean([special.ndtr((t - x[:, 0]) / h).mean(1) for h in bw], 0)

    assert stats.kstest(z[:, 0].double().numpy(), cdf).pvalue > 1e-3


def test_samples_follow_the_density_moments_3d():
    x, _ = _blobs(400, 3)
    bw = (0.1, 0.5)
    z, _ = Prior.from_samples(x, bandwidth=bw).sample(40_000, _gen(5))
    z = z.double().numpy()
    cov = np.cov(x.T, ddof=0) + np.mean(np.square(bw)) * np.eye(3)
    se = np.sqrt(np.diag(cov) / len(z))
    assert np.all(np.abs(z.mean(0) - x.mean(0)) < 4 * se)
    assert np.allclose(np.cov(z.T, ddof=0), cov, atol=0.06)


def test_samples_follow_the_density_2d_entropy():
    """E_p[log p] from the prior's own samples equals its quadrature over the density."""
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    z, _ = prior.sample(20_000, _gen(6))
    lp = prior.log_prob(z).double()
    mass, plogp = _grid_integral(prior, x.min() - 1.5, x.max() + 1.5, 0.02)
    assert mass == pytest.approx(1.0, abs=1e-4)
    assert abs(lp.mean().item() - plogp) < 4 * lp.std().item() / math.sqrt(len(lp))


def test_same_seed_same_result():
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    a, pa = prior.sample(100, _gen(7))
    b, pb = prior.sample(100, _gen(7))
    assert torch.equal(a, b) and torch.equal(pa, pb)
    assert not torch.equal(a, prior.sample(100, _gen(8))[0])

    def sampler(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(2, size=n)
        return rng.normal(size=(n, 3)) + 4 * labels[:, None], labels

    p1, p2 = Prior.from_function(sampler, n=500, seed=3), Prior.from_function(sampler, n=500, seed=3)
    assert p1.sha256 == p2.sha256 and p1.n_partitions == 2 and p1.dim == 3
    assert Prior.from_function(sampler, n=500, seed=4).sha256 != p1.sha256


def test_pinwheel_as_samples_matches_the_builtin_pinwheel():
    pinwheel = PinwheelPrior()
    recipe, arm = pinwheel.sample(20_000, _gen(0), kernel_noise=False)
    prior = Prior.from_samples(recipe, arm, DEFAULT_BANDWIDTHS)
    assert prior.n_partitions == 10 and prior.spacing == pinwheel.spacing
    z, _ = pinwheel.sample(2000, _gen(1))
    diff = prior.log_prob(z) - pinwheel.log_prob(z)
    assert diff.abs().mean() < 0.3 and abs(diff.mean()) < 0.1


def test_default_bandwidths_are_scotts_rule_with_the_papers_ratios():
    x, _ = _blobs(1000, 3)
    prior = Prior.from_samples(x)
    sigma = math.sqrt(np.mean([np.var(x[:, j], ddof=1) for j in range(3)]))
    top = sigma * 1000 ** (-1 / 7)
    assert prior.bandwidths == pytest.approx([top * h / 0.05 for h in DEFAULT_BANDWIDTHS])
    with pytest.raises(ValueError, match="same point"):
        Prior.from_samples(np.ones((200, 2)))


# ----------------------------------------------------------------------------- files and errors


def test_get_prior_reads_npy_and_npz(tmp_path):
    x, y = _blobs(300, 3)
    np.save(tmp_path / "p.npy", x)
    np.savez(tmp_path / "p.npz", samples=x, labels=y)
    np.savez(tmp_path / "q.npz", z=x)
    a = get_prior(f"samples:{tmp_path / 'p.npy'}", bandwidth=0.2)
    b = get_prior(f"samples:{tmp_path / 'p.npz'}", bandwidth=0.2)
    c = get_prior(f"samples:{tmp_path / 'q.npz'}", bandwidth=[0.2])
    assert a.n_partitions == 1 and b.n_partitions == 3 and a.sha256 == c.sha256
    assert torch.equal(a.samples, b.samples) and a.source == str(tmp_path / "p.npy")


BAD_ARRAYS = [
    (np.arange(300.0), "2-D array"),
    (np.zeros((10, 10, 3)), "2-D array"),
    (np.zeros((300, 0)), "2-D array"),
    (np.full((300, 2), "a"), "numeric"),
    (np.zeros((99, 2)), "at least 100 rows"),
    (np.where(np.eye(300, 2) > 0, np.nan, 1.0), "NaN or inf in 2 rows"),
    (np.where(np.eye(300, 2) > 0, np.inf, 1.0), "NaN or inf"),
]


@pytest.mark.parametrize("samples,message", BAD_ARRAYS)
def test_bad_samples_are_refused_naming_the_file(tmp_path, samples, message):
    with pytest.raises(ValueError, match=message):
        Prior.from_samples(samples, bandwidth=0.1)
    np.save(tmp_path / "bad.npy", samples)
    with pytest.raises(ValueError, match=f"bad.npy: .*{message}"):
        get_prior(f"samples:{tmp_path / 'bad.npy'}", bandwidth=0.1)


@pytest.mark.parametrize("labels,message", [
    (np.zeros(299, dtype=int), r"shape \(300,\)"),
    (np.full(300, 0.5), "integers"),
    (np.array(["a"] * 300), "integers"),
    (np.r_[np.zeros(299, dtype=int), -1], ">= 0"),
    (np.r_[np.zeros(299, dtype=int), 2], r"label\(s\) \[1\] have none"),
    (np.r_[np.zeros(299, dtype=int), 10**9], "have none"),
])
def test_bad_labels_are_refused_naming_the_file(tmp_path, labels, message):
    x = np.random.default_rng(0).normal(size=(300, 2))
    np.savez(tmp_path / "bad.npz", samples=x, labels=labels)
    with pytest.raises(ValueError, match=f"bad.npz: .*{message}"):
        get_prior(f"samples:{tmp_path / 'bad.npz'}", bandwidth=0.1)


def test_bad_files_are_refused_naming_the_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 2))
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        get_prior(f"samples:{tmp_path / 'missing.npy'}")
    (tmp_path / "text.npy").write_text("1 2\n3 4\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}] * 300, dtype=object), allow_pickle=True)
    for name in ("text.npy", "empty.npy", "objects.npy"):
        with pytest.raises(ValueError, match=f"{name} is not a readable .npy or .npz file"):
            get_prior(f"samples:{tmp_path / name}")
    np.savez(tmp_path / "keys.npz", points=x, labels=np.zeros(300, int))
    with pytest.raises(ValueError, match=r"keys.npz: unknown array\(s\) \['points'\].*"
                                         r"found: 'points', 'labels'"):
        get_prior(f"samples:{tmp_path / 'keys.npz'}")
    np.savez(tmp_path / "both.npz", samples=x, z=x)
    with pytest.raises(ValueError, match="both.npz: .*one array named 'samples' or 'z'"):
        get_prior(f"samples:{tmp_path / 'both.npz'}")
    np.savez(tmp_path / "nolabels.npz", labels=np.zeros(300, int))
    with pytest.raises(ValueError, match="nolabels.npz: .*'samples' or 'z'"):
        get_prior(f"samples:{tmp_path / 'nolabels.npz'}")
    with pytest.raises(ValueError, match="names no file"):
        get_prior("samples:")
    with pytest.raises(ValueError, match="samples:FILE.npy"):
        get_prior("sample")


def test_bad_bandwidths_sampler_and_grid_are_refused():
    x = np.random.default_rng(0).normal(size=(300, 2))
    for bw in (0.0, -1.0, [0.1, math.nan], [], [[0.1]]):
        with pytest.raises(ValueError, match="bandwidths must be"):
            Prior.from_samples(x, bandwidth=bw)
    with pytest.raises(ValueError, match=f"grid nodes.*more than {MAX_TABLE_NODES}: give larger"):
        Prior.from_samples(1000 * x, bandwidth=0.01)
    with pytest.raises(ValueError, match="returned 300 samples for n=500"):
        Prior.from_function(lambda n, rng: x, n=500)
    with pytest.raises(ValueError, match="n must be a positive int"):
        Prior.from_function(lambda n, rng: x, n=0)


def test_load_state_dict_refuses_other_samples():
    x, y = _blobs()
    prior = Prior.from_samples(x, y, BW2)
    other = Prior.from_samples(x + 1, y, BW2)
    with pytest.raises(RuntimeError, match="stored prior samples .* are not this prior's"):
        prior.load_state_dict(other.state_dict())
    assert torch.equal(prior.samples, torch.from_numpy(x))  # left as it was
    prior.load_state_dict(Prior.from_samples(x, y, BW2).state_dict())


def test_build_method_takes_a_prior_object_of_the_right_dimension():
    prior = Prior.from_samples(_blobs(300, 3)[0], bandwidth=0.2)
    method = build_method("aevb", 8, prior=prior, latent_dim=3, hidden=(8,))
    assert method.prior is prior
    with pytest.raises(ValueError, match="3-dimensional but latent_dim=2"):
        build_method("aevb", 8, prior=prior, latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="prior_options"):
        build_method("aevb", 8, prior=prior, latent_dim=3, hidden=(8,), prior_options={"dim": 3})


# ----------------------------------------------------------------------------- estimator


def _data(n: int = 64, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 12)) > 0.5).astype(np.float32)


TINY = dict(hidden=(8,), epochs=1, verbose=False, denoiser_hidden=8, timesteps=2, threads=1)


def test_fitted_model_saves_the_prior_and_loads_without_the_file(tmp_path):
    x, _ = _blobs(300, 3)
    np.save(tmp_path / "prior.npy", x)
    X = _data()
    model = DDVI(method="ddvi", prior=f"samples:{tmp_path / 'prior.npy'}", latent_dim=3, **TINY)
    model.fit(X)
    model.save(tmp_path / "model")
    (tmp_path / "prior.npy").unlink()
    loaded = DDVI.load(tmp_path / "model")
    assert np.array_equal(loaded.transform(X), model.transform(X))
    assert loaded.prior == f"samples:{tmp_path / 'prior.npy'}"
    assert loaded.options_.prior_samples == model.method_.prior.spec()
    assert torch.equal(loaded.method_.prior.samples, torch.from_numpy(x))
    z1, _ = model.sample(5, seed=1)
    z2, _ = loaded.sample(5, seed=1)
    assert np.array_equal(z1, z2)


def test_a_prior_object_round_trips_through_clone_save_and_load(tmp_path):
    from sklearn.base import clone

    prior = Prior.from_samples(*_blobs(300, 2), bandwidth=BW2)
    X = _data()
    model = DDVI(method="aevb", prior=prior, **TINY).fit(X)
    assert model.method_.prior is not prior and model.method_.prior.sha256 == prior.sha256
    again = clone(model).fit(X)
    assert np.array_equal(again.transform(X), model.transform(X))  # same seed, same result
    model.save(tmp_path / "model")
    loaded = DDVI.load(tmp_path / "model")
    assert isinstance(loaded.prior, SamplesPrior) and loaded.prior.sha256 == prior.sha256
    assert loaded.get_params()["prior"] is loaded.prior
    assert np.array_equal(loaded.transform(X), model.transform(X))
    from ddvi.report import evaluate

    report = json.loads(json.dumps(evaluate(model, X[:32], x_train=X, mmd_samples=32,
                                            nll_prior_samples=64)))  # JSON-ready with a prior object
    assert report["prior"] == model.method_.prior.name and np.isfinite(report["elbo"])
    with pytest.raises(ValueError, match="GaussianPrior object cannot be saved"):
        DDVI(method="aevb", prior=GaussianPrior(), **TINY).fit(X)
    with pytest.raises(ValueError, match="part 1 of a SamplesPrior"):
        DDVI(method="aevb", prior=prior.partition(1), **TINY).fit(X)


def test_loading_refuses_a_prior_that_does_not_match_the_header(tmp_path):
    prior = Prior.from_samples(*_blobs(300, 2), bandwidth=BW2)
    DDVI(method="aevb", prior=prior, **TINY).fit(_data()).save(tmp_path / "model")
    file = tmp_path / "model" / "model.safetensors"
    (tmp_path / "model" / "config.json").unlink()
    tensors, meta = load_checkpoint(file)

    def rewrite(edit) -> None:
        t, m = {k: v.clone() for k, v in tensors.items()}, json_copy(meta)
        edit(t, m["config"]["options"])
        save_checkpoint(file, t, m)

    rewrite(lambda t, o: o["prior_samples"].update(sha256="0" * 64))
    with pytest.raises(CheckpointError, match="is not the one in its header"):
        DDVI.load(file)
    rewrite(lambda t, o: t["model.prior.samples"].add_(1e-9))
    with pytest.raises(CheckpointError, match="is not the one in its header"):
        DDVI.load(file)
    rewrite(lambda t, o: o.pop("prior_samples"))
    with pytest.raises(CheckpointError, match="options.prior_samples must be given exactly"):
        DDVI.load(file)
    rewrite(lambda t, o: o["prior_samples"].pop("rows"))
    with pytest.raises(CheckpointError, match="options.prior_samples.rows is missing"):
        DDVI.load(file)
    rewrite(lambda t, o: t.pop("model.prior.widths"))
    with pytest.raises(CheckpointError, match="lack the tensors .*model.prior.widths"):
        DDVI.load(file)
    rewrite(lambda t, o: t["model.prior.labels"].fill_(-1))
    with pytest.raises(CheckpointError, match="samples prior stored in .*labels must be >= 0"):
        DDVI.load(file)


def json_copy(value):
    import json

    return json.loads(json.dumps(value))


def test_semi_supervised_fit_uses_the_labelled_samples_prior(tmp_path):
    x, y = _blobs(600, 2)
    np.savez(tmp_path / "prior.npz", samples=x, labels=y)
    X = _data(96)
    classes = np.full(96, -1)
    classes[:12] = np.arange(12) % 3
    model = SemiSupervisedDDVI(method="aevb", prior=f"samples:{tmp_path / 'prior.npz'}",
                               classifier_hidden=(8,), **TINY)
    model.fit(X, classes)
    proba = model.predict_proba(X)
    assert proba.shape == (96, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    pp = model.method_._partitions
    assert pp.k == 3
    assert torch.allclose(pp.log_label_prior(torch.zeros(1)).exp(),
                          torch.tensor([1 / 2, 1 / 3, 1 / 6]), atol=1e-6)
    model.save(tmp_path / "model")
    (tmp_path / "prior.npz").unlink()
    assert np.array_equal(DDVI.load(tmp_path / "model").predict_proba(X), proba)
    with pytest.raises(ValueError, match="labels go up to 3 but .* 3 partitions"):
        SemiSupervisedDDVI(method="aevb", prior=Prior.from_samples(x, y, BW2),
                           classifier_hidden=(8,), **TINY).fit(X, np.r_[3, classes[1:]])


def test_cli_fits_with_a_samples_prior_file_and_names_a_missing_one(tmp_path, monkeypatch, capsys):
    from typer.testing import CliRunner

    from ddvi.cli import app, main

    np.save(tmp_path / "blobs.npy", _blobs(300, 2)[0])
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["fit", "--method", "aevb", "--prior",
                                      f"samples:{tmp_path / 'blobs.npy'}", "--epochs", "1",
                                      "--n-train", "64", "--no-evaluate", "-q", "--threads", "1",
                                      "--out", str(run)])
    assert result.exit_code == 0, result.output
    (tmp_path / "blobs.npy").unlink()
    assert DDVI.load(run / "model").method_.prior.sha256 == Prior.from_samples(
        _blobs(300, 2)[0]).sha256
    monkeypatch.setattr("sys.argv", ["ddvi", "fit", "--prior", f"samples:{tmp_path / 'gone.npy'}",
                                     "--n-train", "64", "--epochs", "1", "-q", "--out",
                                     str(tmp_path / "r")])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == 2 and "gone.npy does not exist" in capsys.readouterr().err


def test_resume_needs_the_same_prior_samples(tmp_path):
    from ddvi.estimator import ResumeMismatchError

    file = tmp_path / "prior.npy"
    np.save(file, _blobs(300, 2)[0])
    X = _data()
    params = dict(method="aevb", prior=f"samples:{file}", run_dir=str(tmp_path / "run"), **TINY)
    DDVI(**params).fit(X)
    resumed = DDVI(**{**params, "epochs": 2}).fit(X, resume=True)
    assert len(resumed.history_) == 2
    np.save(file, _blobs(300, 2, seed=1)[0])
    with pytest.raises(ResumeMismatchError, match="prior_samples"):
        DDVI(**{**params, "epochs": 3}).fit(X, resume=True)
