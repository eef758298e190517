import math

import pytest
import torch

from ddvi.diffusion import NoiseSchedule, make_betas


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [5, 10, 20, 40, 50, 100])
def test_endpoint_is_close_to_standard_normal(kind, T):
    s = NoiseSchedule(T, kind)
    # signal left in y_T: sqrt(abar_T) * z; the official 1e-4..0.02 schedule keeps 0.904 at T=20
    assert float(s.alpha_bar[-1].sqrt()) < 0.1
    assert bool((s.beta > 0).all() and (s.beta < 1).all())


def test_official_schedule_is_not_close_to_normal():
    beta = make_betas(20, "linear", 1e-4, 0.02)
    assert abs(float(torch.cumprod(1 - beta, 0)[-1].sqrt()) - 0.904) < 1e-3


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule(10, "quadratic")


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
        assert abs(float(s.reverse_variance[t - 1]) - var_bf) < 1e-6
    assert float(s.reverse_variance[0]) == pytest.approx(float(s.beta[0]))


def test_forward_log_prob_matches_torch_distributions():
    s = NoiseSchedule(6)
    ys = torch.randn(7, 4, 2, generator=torch.Generator().manual_seed(1))
    expected = torch.zeros(4)
    for t in range(1, 7):
        b = s.beta[t - 1]
        dist = torch.distributions.Normal((1 - b).sqrt() * ys[t - 1], b.sqrt())
        expected += dist.log_prob(ys[t]).sum(-1)
    assert torch.allclose(s.forward_log_prob(ys), expected, atol=1e-4)


def test_reverse_mean_with_true_noise_is_posterior_mean():
    """With the true eps, the epsilon-parameterised mean equals the posterior mean."""
    s = NoiseSchedule(10)
    g = torch.Generator().manual_seed(2)
    y0, eps = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    for t in range(1, 11):
        yt = s.q_sample(y0, t, eps)
        mean, _ = s.posterior(y0, yt, t)
        assert torch.allclose(s.reverse_mean(yt, eps, t), mean, atol=1e-4)
        # DDIM with the true eps recovers the deterministic forward point at t-1
        expected = s.alpha_bar_prev[t - 1].sqrt() * y0 + (1 - s.alpha_bar_prev[t - 1]).sqrt() * eps
        assert torch.allclose(s.ddim_step(yt, eps, t), expected, atol=1e-4)


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
    assert torch.allclose(s.prior_endpoint_kl(z, mean, std), expected, atol=1e-5)
