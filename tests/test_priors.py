"""Tests for ddvi.priors: recipes, exact densities, partitions, gradients, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ddvi.priors import (
    DEFAULT_BANDWIDTHS,
    PRIORS,
    GaussianPrior,
    MixturePrior,
    PinwheelPrior,
    Prior,
    SquarePrior,
    SwissRollPrior,
    get_prior,
)

BW = np.asarray(DEFAULT_BANDWIDTHS)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _grid_integral(prior: Prior, lo: float, hi: float, step: float) -> float:
    """Riemann sum of exp(log_prob) over [lo, hi]^2 (grid offset from any table nodes)."""
    xs = torch.arange(lo + 0.37 * step, hi, step, dtype=torch.float64)
    total = 0.0
    for chunk in torch.split(xs, 256):
        gx, gy = torch.meshgrid(chunk, xs, indexing="ij")
        z = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1).float()
        total += prior.log_prob(z).double().exp().sum().item()
    return total * step * step


def _kernel_mix_2d(dx: np.ndarray, dy: np.ndarray, var_x: np.ndarray, var_y: np.ndarray):
    """Equal-weight mixture over bandwidths of N(dx; var_x + h^2) N(dy; var_y + h^2)."""
    out = 0.0
    for h in BW:
        vx, vy = var_x + h * h, var_y + h * h
        out = out + np.exp(-0.5 * dx**2 / vx - 0.5 * dy**2 / vy) / (2 * np.pi * np.sqrt(vx * vy))
    return out / len(BW)


# ----------------------------------------------------------------------------- references


def _pinwheel_reference(z: np.ndarray, arms: list[int]) -> np.ndarray:
    """Exact pinwheel density: given f1 the point is Gaussian along the tangent direction."""
    f1 = np.linspace(1 - 8 * 0.15, 1 + 8 * 0.15, 60001)
    w1 = stats.norm.pdf(f1, 1, 0.15) * (f1[1] - f1[0])
    out = np.zeros(len(z))
    for k in arms:
        th = 2 * np.pi * k / 10 + 0.25 * np.exp(f1)
        u = np.stack([np.cos(th), -np.sin(th)], -1)  # direction of f1
        v = np.stack([np.sin(th), np.cos(th)], -1)  # direction of f2
        for j, p in enumerate(z):
            along = u @ p - f1
            across = v @ p
            out[j] += np.sum(w1 * _kernel_mix_2d(along, across, 0.0, 0.005**2))
    return out / len(arms)


def _swiss_reference(z: np.ndarray, u_lo: float = 0.0, u_hi: float = 1.0) -> np.ndarray:
    """Exact swiss-roll density: integral over u (substituting u = v^2) of the kernel."""
    n = 200000
    v_lo, v_hi = math.sqrt(u_lo), math.sqrt(u_hi)
    v = v_lo + (np.arange(n) + 0.5) / n * (v_hi - v_lo)
    w = 2 * v * (v_hi - v_lo) / n / (u_hi - u_lo)
    r, phi = 3 * v, 4.5 * np.pi * v
    cx, cy = r * np.cos(phi), r * np.sin(phi)
    return np.array([np.sum(w * _kernel_mix_2d(p[0] - cx, p[1] - cy, 0.0, 0.0)) for p in z])


def _square_reference(z: np.ndarray, a: float = 0.0, b: float = 1.0) -> np.ndarray:
    """Brute-force square density from the recipe: integral over pos of a 2-D Gaussian."""
    n = 100000
    pos = a + (np.arange(n) + 0.5) / n * (b - a)
    s2 = 0.06**2
    q = [pos < 0.25, (pos >= 0.25) & (pos < 0.5), (pos >= 0.5) & (pos < 0.75), pos >= 0.75]
    cx = np.select(q, [8 * pos - 1, 1.0, 1 - 8 * (pos - 0.5), -1.0])
    cy = np.select(q, [1.0, 1 - 8 * (pos - 0.25), -1.0, 8 * (pos - 0.75) - 1])
    horizontal = q[0] | q[2]  # noise is on y for horizontal edges
    vx = np.where(horizontal, 0.0, s2)
    vy = np.where(horizontal, s2, 0.0)
    return np.array([np.mean(_kernel_mix_2d(p[0] - cx, p[1] - cy, vx, vy)) for p in z])


def _square_pos(z: np.ndarray) -> np.ndarray:
    """Perimeter position of points near the square (project to the nearest edge)."""
    x, y = z[:, 0], z[:, 1]
    top, bottom = (y >= np.abs(x)), (-y >= np.abs(x))
    right = ~top & ~bottom & (x > 0)
    return np.select(
        [top, right, bottom],
        [(x + 1) / 8, 0.25 + (1 - y) / 8, 0.5 + (1 - x) / 8],
        0.75 + (y + 1) / 8,
    ) % 1.0


def _near_part(x: np.ndarray, k: np.ndarray, tol: float, circular: bool = False) -> np.ndarray:
    """Whether x in [0, 1) lies within tol of the interval [k/10, (k+1)/10)."""
    d = x - (k + 0.5) / 10
    if circular:
        d = (d + 0.5) % 1.0 - 0.5
    return np.abs(d) <= 0.05 + tol


# ----------------------------------------------------------------------------- factory / API


def test_factory_names_and_unknown():
    assert PRIORS == ("gaussian", "mixture", "pinwheel", "swiss_roll", "square")
    for name in PRIORS:
        p = get_prior(name)
        assert isinstance(p, Prior) and p.name == name and p.dim == 2
    assert get_prior("pinwheel").n_partitions == 10
    assert get_prior("gaussian", dim=5).dim == 5
    with pytest.raises(ValueError, match="swiss_roll"):
        get_prior("moons")


@pytest.mark.parametrize("name", PRIORS)
def test_sample_shapes_reproducible(name):
    p = get_prior(name)
    z1, k1 = p.sample(500, _gen(3))
    z2, k2 = p.sample(500, _gen(3))
    z3, _ = p.sample(500, _gen(4))
    assert z1.dtype == torch.float32 and z1.shape == (500, 2)
    assert k1.dtype == torch.int64 and k1.shape == (500,)
    assert torch.equal(z1, z2) and torch.equal(k1, k2)
    assert not torch.equal(z1, z3)
    assert int(k1.min()) >= 0 and int(k1.max()) < p.n_partitions
    assert not z1.requires_grad
    assert p.sample(0)[0].shape == (0, 2)


@pytest.mark.parametrize("name", PRIORS)
def test_bad_inputs_raise(name):
    p = get_prior(name)
    with pytest.raises(ValueError, match="2-D"):
        p.log_prob(torch.zeros(2))
    with pytest.raises(ValueError, match="last dim"):
        p.log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="non-finite"):
        p.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="non-finite"):
        p.log_prob(torch.tensor([[float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="out of range"):
        p.partition(p.n_partitions)
    with pytest.raises(ValueError):
        p.sample(-1)


@pytest.mark.parametrize("name", PRIORS)
def test_recipe_only_samples(name):
    """``kernel_noise=False``: the recipe alone (what the official ``prior.sample`` returns and the
    latent NLL protocol scores); with the same seed it is the full draw minus its kernel noise."""
    p = get_prior(name)
    z, k = p.sample(4000, _gen(5))
    r, kr = p.sample(4000, _gen(5), kernel_noise=False)
    assert r.dtype == torch.float32 and r.shape == (4000, 2) and torch.equal(k, kr)
    assert torch.equal(r, p.sample(4000, _gen(5), kernel_noise=False)[0])
    if name in ("gaussian", "mixture"):  # no kernel noise to leave out
        assert torch.equal(z, r)
        return
    noise = (z - r).double()
    assert float(noise.abs().max()) < 6 * BW.max()
    # the kernel noise is h * N(0, I), h uniform over the bandwidths: E[noise^2] = mean(h^2)
    assert float(noise.pow(2).mean()) == pytest.approx(float(np.mean(BW**2)), rel=0.15)
    part = p.partition(3)
    zp, kp = part.sample(500, _gen(1), kernel_noise=False)
    assert torch.equal(kp, torch.zeros(500, dtype=torch.int64))
    assert torch.equal(zp, part.sample(500, _gen(1), kernel_noise=False)[0])
    with pytest.raises(ValueError, match="kernel_noise"):
        p.sample(3, kernel_noise=None)


def test_pinwheel_recipe_only_is_the_official_recipe():
    """Tangential spread of the recipe alone is the official 0.005 (the kernel noise adds ~0.03)."""
    z, _ = PinwheelPrior().sample(50000, _gen(2), kernel_noise=False)
    z = z.double().numpy()
    r = np.hypot(z[:, 0], z[:, 1])
    # z = R(-theta) (f1, f2): undo the rotation of each point's own arm to recover f2
    k = np.round((-np.arctan2(z[:, 1], z[:, 0]) - 0.25 * np.exp(r)) * 10 / (2 * np.pi)) % 10
    theta = 2 * np.pi * k / 10 + 0.25 * np.exp(r)
    f2 = z[:, 0] * np.sin(theta) + z[:, 1] * np.cos(theta)
    assert np.std(f2) == pytest.approx(0.005, rel=0.1)
    assert np.mean(r) == pytest.approx(np.mean(np.hypot(1 + 0.15 * np.random.default_rng(0)
                                                        .standard_normal(50000), 0)), abs=0.005)


@pytest.mark.parametrize("name", PRIORS)
def test_gradients_finite_everywhere(name):
    p = get_prior(name)
    z0, _ = p.sample(128, _gen(1))
    far = torch.tensor([[50.0, -40.0], [0.05, 0.02], [1.0, 0.0], [2.9, -2.9], [-7.0, 0.3]])
    z = torch.cat([z0, far]).requires_grad_(True)
    lp = p.log_prob(z)
    assert lp.shape == (133,) and torch.isfinite(lp).all()
    lp.sum().backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad.abs().sum(-1) > 0).all()


def test_state_dict_and_partition_interface():
    p = PinwheelPrior()
    assert "_table" not in p.state_dict()
    part = p.partition(3)
    assert isinstance(part, PinwheelPrior) and part.n_partitions == 1
    assert part.partition(0) is part
    z, k = part.sample(100, _gen())
    assert (k == 0).all()
    m = MixturePrior(learn_means=True)
    assert "means" in dict(m.named_parameters())
    assert set(m.state_dict()) >= {"means", "log_weights", "chol"}


# ----------------------------------------------------------------------------- recipes


def test_pinwheel_sample_statistics():
    z, k = PinwheelPrior().sample(100000, _gen(0))
    z, k = z.double().numpy(), k.numpy()
    # independent numpy implementation of recipe + kernel noise
    rng = np.random.default_rng(1)
    n = 400000
    f1 = 1 + 0.15 * rng.standard_normal(n)
    f2 = 0.005 * rng.standard_normal(n)
    h = rng.choice(BW, n)
    ref_r = np.hypot(f1 + h * rng.standard_normal(n), f2 + h * rng.standard_normal(n))
    r = np.hypot(z[:, 0], z[:, 1])
    se = ref_r.std() / math.sqrt(len(r))
    assert abs(r.mean() - ref_r.mean()) < 5 * se
    assert abs(r.std() - ref_r.std()) < 0.01
    assert stats.ks_2samp(r, ref_r).pvalue > 1e-3
    # arm angle: z = R(-theta) (f1, f2) with f1 ~ |z| -> recover the arm index
    theta = -np.arctan2(z[:, 1], z[:, 0])
    arm = np.round((theta - 0.25 * np.exp(r)) * 10 / (2 * np.pi)).astype(int) % 10
    assert np.mean(arm == k) > 0.99
    counts = np.bincount(k, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_swiss_roll_sample_statistics():
    z, k = SwissRollPrior().sample(100000, _gen(0))
    z, k = z.double().numpy(), k.numpy()
    u = (z**2).sum(1) / 9  # = u up to kernel noise
    assert stats.kstest(u, "uniform").statistic < 0.01
    assert np.mean(np.floor(10 * u).clip(0, 9) == k) > 0.9
    assert np.mean(_near_part(u, k, 0.05)) > 0.995
    counts = np.bincount(k, minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-4
    # angle is tied to the radius: phi = 1.5 pi r
    r = np.sqrt(9 * u)
    dphi = np.angle(np.exp(1j * (np.arctan2(z[:, 1], z[:, 0]) - 1.5 * np.pi * r)))
    assert np.mean(np.abs(dphi) < 0.5) > 0.95


def test_square_sample_statistics():
    p = SquarePrior()
    z, k = p.sample(100000, _gen(0))
    z, k = z.double().numpy(), k.numpy()
    assert np.mean(np.abs(z).max(1) > 1.3) < 1e-3 and np.abs(z).max() < 1.7
    assert np.abs(np.abs(z).max(1) - 1).std() < 0.1  # concentrated on the perimeter
    top = (np.abs(z[:, 0]) < 0.8) & (z[:, 1] > 0.5)  # interior of the top edge
    var = 0.06**2 + np.mean(BW**2)  # perpendicular noise + kernel noise
    assert abs(np.var(z[top, 1] - 1) / var - 1) < 0.03
    pos = _square_pos(z)
    assert stats.kstest(pos, "uniform").statistic < 0.01
    assert np.mean(np.floor(10 * pos) == k) > 0.95
    assert np.mean(_near_part(pos, k, 0.02, circular=True)) > 0.995
    assert stats.chisquare(np.bincount(k, minlength=10)).pvalue > 1e-4
    for i in (0, 2, 7):  # 2 and 7 cross corners
        zi, _ = p.partition(i).sample(5000, _gen(i))
        pi = _square_pos(zi.double().numpy())
        assert np.mean(_near_part(pi, np.full(len(pi), i), 0.02, circular=True)) > 0.995


def test_mixture_sample_statistics():
    p = MixturePrior()
    z, k = p.sample(50000, _gen(0))
    for i in (0, 3):
        zi = z[k == i].double()
        r = 2 * math.pi * i / 10
        assert torch.allclose(zi.mean(0), 1.4 * torch.tensor([math.cos(r), math.sin(r)],
                                                             dtype=torch.float64), atol=0.03)
        rot = torch.tensor([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]],
                           dtype=torch.float64)
        cov = rot @ torch.diag(torch.tensor([0.25, 0.01], dtype=torch.float64)) @ rot.T
        assert torch.allclose(torch.cov(zi.T), cov, atol=0.02)


# ----------------------------------------------------------------------------- densities


def test_gaussian_sample_statistics():
    z, k = GaussianPrior(dim=3, std=2.0).sample(50000, _gen())
    assert z.shape == (50000, 3) and (k == 0).all()
    assert torch.allclose(z.std(0), torch.full((3,), 2.0), atol=0.03)
    assert torch.allclose(z.mean(0), torch.zeros(3), atol=0.03)


def test_gaussian_log_prob():
    p = GaussianPrior(dim=3, std=2.0)
    z = torch.randn(10, 3, generator=_gen())
    ref = stats.multivariate_normal(np.zeros(3), 4 * np.eye(3)).logpdf(z.double().numpy())
    np.testing.assert_allclose(p.log_prob(z).numpy(), ref, rtol=1e-5)


def test_mixture_log_prob_matches_scipy():
    p = MixturePrior()
    z = 2 * torch.randn(50, 2, generator=_gen())
    comps = []
    for i in range(10):
        r = 2 * np.pi * i / 10
        rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
        cov = rot @ np.diag([0.25, 0.01]) @ rot.T
        mean = 1.4 * np.array([np.cos(r), np.sin(r)])
        comps.append(stats.multivariate_normal(mean, cov).logpdf(z.double().numpy()))
    ref = np.logaddexp.reduce(comps, axis=0) - np.log(10)
    np.testing.assert_allclose(p.log_prob(z).numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(p.partition(4).log_prob(z).numpy(), comps[4],
                               rtol=1e-4, atol=1e-4)

    means = torch.tensor([[0.0, 0.0], [2.0, 1.0], [-1.0, 3.0]])
    q = MixturePrior(means=means, scales=torch.tensor([0.5, 1.0, 2.0]), weights=[1.0, 2.0, 1.0])
    ref = np.log(sum(w * stats.multivariate_normal(m.numpy(), s**2 * np.eye(2)).pdf(z.numpy())
                     for w, m, s in zip([0.25, 0.5, 0.25], means, [0.5, 1.0, 2.0], strict=True)))
    np.testing.assert_allclose(q.log_prob(z).numpy(), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="scales"):
        MixturePrior(means=means, scales=torch.ones(4))


def test_mixture_learn_means_gradients():
    p = MixturePrior(means=torch.zeros(3, 2) + torch.arange(3.0)[:, None], scales=0.5,
                     learn_means=True)
    z = torch.randn(64, 2, generator=_gen())
    p.log_prob(z).sum().backward()
    assert p.means.grad is not None and torch.isfinite(p.means.grad).all()
    assert (p.means.grad.abs() > 0).all()
    part = p.partition(1)  # live view shares the parameter
    with torch.no_grad():
        p.means[1] += 10.0
    assert part.sample(200, _gen())[0].mean(0)[0] > 9.0


@pytest.mark.parametrize(
    ("factory", "lo", "hi", "step"),
    [
        (lambda: GaussianPrior(), -7.0, 7.0, 0.02),
        (lambda: MixturePrior(), -3.5, 3.5, 0.01),
        (lambda: MixturePrior().partition(2), -3.5, 3.5, 0.01),
        (lambda: SquarePrior(), -1.6, 1.6, 0.005),
        (lambda: SquarePrior().partition(2), -1.6, 1.6, 0.005),
        (lambda: PinwheelPrior(), -2.3, 2.3, 0.002),
        (lambda: PinwheelPrior().partition(5), -2.3, 2.3, 0.002),
        (lambda: SwissRollPrior(), -3.3, 3.3, 0.003),
        (lambda: SwissRollPrior().partition(0), -1.3, 1.3, 0.002),
    ],
)
def test_density_integrates_to_one(factory, lo, hi, step):
    assert abs(_grid_integral(factory(), lo, hi, step) - 1.0) < 1e-2


def test_square_analytic_matches_brute_force():
    p = SquarePrior()
    z = torch.cat([p.sample(20, _gen(5))[0], torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.1, -0.5]])])
    ours = p.log_prob(z).double().exp().numpy()
    np.testing.assert_allclose(ours, _square_reference(z.double().numpy()), rtol=1e-3, atol=1e-8)
    part = p.partition(2)  # pos in [0.2, 0.3): crosses the corner (1, 1)
    z2 = torch.cat([part.sample(10, _gen(6))[0], torch.tensor([[1.0, 1.0], [0.5, 1.0]])])
    ours = part.log_prob(z2).double().exp().numpy()
    np.testing.assert_allclose(ours, _square_reference(z2.double().numpy(), 0.2, 0.3),
                               rtol=1e-3, atol=1e-8)


def _check_close(ours: np.ndarray, ref: np.ndarray) -> None:
    rel = np.abs(ours / ref - 1)
    assert np.median(rel) < 0.01, rel
    assert rel.max() < 0.03, rel


def test_pinwheel_table_matches_exact_density():
    p = PinwheelPrior()
    z = p.sample(25, _gen(7))[0]
    _check_close(p.log_prob(z).double().exp().numpy(),
                 _pinwheel_reference(z.double().numpy(), list(range(10))))
    part = p.partition(3)
    z3 = part.sample(10, _gen(8))[0]
    _check_close(part.log_prob(z3).double().exp().numpy(),
                 _pinwheel_reference(z3.double().numpy(), [3]))


def test_swiss_roll_table_matches_exact_density():
    p = SwissRollPrior()
    z = p.sample(25, _gen(9))[0]
    _check_close(p.log_prob(z).double().exp().numpy(), _swiss_reference(z.double().numpy()))
    part = p.partition(6)
    z6 = part.sample(10, _gen(10))[0]
    _check_close(part.log_prob(z6).double().exp().numpy(),
                 _swiss_reference(z6.double().numpy(), 0.6, 0.7))


@pytest.mark.parametrize("name", ["pinwheel", "swiss_roll", "square", "mixture"])
def test_log_prob_agrees_with_sample_histogram(name):
    """Total variation between a 200k-sample histogram and the binned density is small."""
    p = get_prior(name)
    z = p.sample(200000, _gen(11))[0].double().numpy()
    # bins of 0.1; density averaged on sub x sub points per bin (fine for the thin priors)
    lim, nb, sub = 3.4, 68, (40 if name in ("pinwheel", "swiss_roll") else 10)
    hist, _, _ = np.histogram2d(z[:, 0], z[:, 1], bins=nb, range=[[-lim, lim]] * 2)
    hist /= len(z)
    step = 2 * lim / (nb * sub)
    xs = torch.arange(-lim + step / 2, lim, step, dtype=torch.float64)
    mass = np.zeros((nb, nb))
    for i, chunk in enumerate(torch.split(xs, sub)):
        gx, gy = torch.meshgrid(chunk, xs, indexing="ij")
        pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1).float()
        d = p.log_prob(pts).double().exp().reshape(sub, nb, sub).sum((0, 2)).numpy()
        mass[i] = d * step * step
    tv = 0.5 * np.abs(hist - mass).sum()
    assert tv < 0.03, tv
    # a wrong density (e.g. another partition) is clearly detected by the same statistic
    if p.n_partitions > 1:
        zk = p.partition(0).sample(20000, _gen(12))[0]
        assert p.partition(0).log_prob(zk).mean() > p.partition(5).log_prob(zk).mean() + 3
