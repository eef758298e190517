import math

import pytest
import torch

from ddvi.diffusion import NoiseSchedule, make_betas


@pytest.mark.parametrize("kind", ["linear", "geometric", "cosine"])
def test_every_beta_is_well_conditioned_for_every_T(kind):
    """No beta_t above 0.5 for any T in 1..1000 (the last reverse step never divides by ~0)."""
    for T in range(1, 1001):
        b = make_betas(T, kind)
        assert b.shape == (T,) and bool((b > 0).all()) and float(b.max()) <= 0.5, T


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [10, 20, 50, 100])
def test_forward_process_mixes_for_moderate_T(kind, T):
    """With T >= 10 little of y_0 is left in y_T (sqrt(abar_T) < 0.25)."""
    assert float(NoiseSchedule(T, kind).alpha_bar[-1].sqrt()) < 0.25


def test_official_schedule_is_not_close_to_normal():
    beta = make_betas(20, "linear", 1e-4, 0.02)
    assert abs(float(torch.cumprod(1 - beta, 0)[-1].sqrt()) - 0.904) < 1e-3


def test_end_points_are_used():
    b = make_betas(10, "linear", 0.01, 0.3)
    assert float(b[0]) == pytest.approx(0.01) and float(b[-1]) == pytest.approx(0.3)
    assert float(make_betas(1, "linear", beta_end=0.2)[0]) == pytest.approx(0.2)
    assert float(make_betas(50, "cosine", beta_end=0.1).max()) == pytest.approx(0.1)


@pytest.mark.parametrize("args, match", [
    ((10, "quadratic"), "unknown noise schedule"),
    ((0,), "timesteps must be an integer >= 1"),
    ((2.5,), "timesteps must be an integer >= 1"),
    ((10, "linear", None, 1.0), r"beta_end must be in \(0, 0.5\]"),
    ((10, "linear", None, 0.7), r"beta_end must be in \(0, 0.5\]"),
    ((10, "linear", 0.3, 0.2), r"beta_start must be in \(0, beta_end"),
    ((10, "linear", 0.0, 0.2), r"beta_start must be in \(0, beta_end"),
    ((10, "cosine", None, -0.1), r"beta_end must be in \(0, 0.5\]"),
])
def test_bad_schedule_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        NoiseSchedule(*args)


def test_marginal_equals_composed_transitions():
    """r(y_t | y_0) from the closed form equals composing t forward transitions (by moments)."""
    s = NoiseSchedule(8)
    g = torch.Generator().manual_seed(0)
    y0 = torch.tensor([[0.7, -1.2]]).repeat(200_000, 1)
    y = y0.clone()
    for t in range(1, 9):
        y = (1 - s.beta[t - 1]).sqrt() * y + s.beta[t - 1].sqrt() * torch.randn(y.shape, generator=g)
        closed = s.q_sample(y0[:1], t, torch.zeros(1, 2))
        assert torch.allclose(y.mean(0), closed[0], atol=0.01)
        assert torch.allclose(y.var(0), 1 - s.alpha_bar[t - 1].expand(2), atol=0.01)


def test_posterior_matches_gaussian_conditioning():
    """r(y_{t-1} | y_t, y_0) by brute-force conditioning of the joint Gaussian."""
    s = NoiseSchedule(10)
    y0, yt = torch.tensor([[0.3, -0.5]]), torch.tensor([[1.1, 0.4]])
    for t in range(2, 11):
        ab_prev, a = float(s.alpha_bar_prev[t - 1]), float(s.alpha[t - 1])
        # (y_{t-1}, y_t) | y_0 jointly Gaussian per coordinate
        var_prev = 1 - ab_prev
        cov = math.sqrt(a) * var_prev
        var_t = a * var_prev + (1 - a)
        m_prev, m_t = math.sqrt(ab_prev) * y0, math.sqrt(ab_prev * a) * y0
        mean_bf = m_prev + cov / var_t * (yt - m_t)
        var_bf = var_prev - cov**2 / var_t
        mean, var = s.posterior(y0, yt, t)
        assert torch.allclose(mean, mean_bf, atol=1e-5)
        assert abs(float(var) - var_bf) < 1e-6
        assert abs(float(s.posterior_variance[t - 1]) - var_bf) < 1e-6
    assert float(s.posterior_variance[0]) == 0.0


def test_forward_log_prob_matches_torch_distributions():
    s = NoiseSchedule(6)
    ys = torch.randn(7, 4, 2, generator=torch.Generator().manual_seed(1))
    expected = torch.zeros(6, 4)
    for t in range(1, 7):
        b = s.beta[t - 1]
        dist = torch.distributions.Normal((1 - b).sqrt() * ys[t - 1], b.sqrt())
        expected[t - 1] = dist.log_prob(ys[t]).sum(-1)
    assert torch.allclose(s.forward_log_prob_steps(ys), expected, atol=1e-4)
    assert torch.allclose(s.forward_log_prob(ys), expected.sum(0), atol=1e-4)


def test_standard_normal_is_stationary_and_self_reversing():
    """y_0 ~ N(0, I): every r(y_t) is N(0, I) and r(y_{t-1} | y_t) = N(sqrt(alpha_t) y_t, beta_t)."""
    s = NoiseSchedule(5)
    g = torch.Generator().manual_seed(3)
    y = torch.randn(400_000, 1, generator=g)
    for t in range(1, 6):
        prev = y
        y = s.alpha[t - 1].sqrt() * y + s.beta[t - 1].sqrt() * torch.randn(y.shape, generator=g)
        assert abs(float(y.var()) - 1) < 0.01
        slope = float((prev * y).mean() / (y * y).mean())  # regression of y_{t-1} on y_t
        resid = prev - slope * y
        assert slope == pytest.approx(float(s.alpha[t - 1].sqrt()), abs=0.01)
        assert float(resid.var()) == pytest.approx(float(s.beta[t - 1]), abs=0.01)


def test_per_sample_steps_broadcast():
    s = NoiseSchedule(10)
    y0, eps = torch.randn(4, 2), torch.randn(4, 2)
    t = torch.tensor([1, 3, 5, 10])
    batched = s.q_sample(y0, t, eps)
    for i in range(4):
        assert torch.allclose(batched[i], s.q_sample(y0[i:i + 1], int(t[i]), eps[i:i + 1])[0])


def test_endpoint_kl_matches_torch():
    s = NoiseSchedule(20)
    z, mean, std = torch.randn(3, 2), torch.randn(3, 2), torch.rand(3, 2) + 0.5
    ab = s.alpha_bar[-1]
    p = torch.distributions.Normal(ab.sqrt() * z, (1 - ab).sqrt())
    q = torch.distributions.Normal(mean, std)
    expected = torch.distributions.kl_divergence(p, q).sum(-1)
    assert torch.allclose(s.endpoint_kl(z, mean, std), expected, atol=1e-5)
