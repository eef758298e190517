"""The reverse chain's fast path (per-pass constants, Python step scalars, batched log q) computes
the same function, log-ratio terms and gradients as the plain per-step path it replaced."""

from __future__ import annotations

import pytest
import torch

from ddvi.diffusion import LOG_2PI
from ddvi.posteriors.diffusion import DiffusionPosterior


def plain_trajectory(q: DiffusionPosterior, x: torch.Tensor, noise: torch.Tensor):
    """The straightforward chain: ``q.step`` (the denoiser's ``forward``) once per step."""
    mean, std, context = q.encode(x)
    T = q.timesteps
    u = noise[T]
    us, log_q = [u], []
    for t in range(T, 0, -1):
        m, log_var = q.step(u, t, context)
        u = m + (0.5 * log_var).exp() * noise[t - 1]
        log_q.append(-0.5 * (noise[t - 1].pow(2) + log_var + LOG_2PI).sum(-1))
        us.append(u)
    traj = torch.stack(us[::-1])
    end = -0.5 * (noise[T].pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)
    steps = torch.stack(log_q[::-1]) - q.schedule.forward_log_prob_steps(traj)
    return mean + std * u, torch.cat([end[None], steps]), traj


def perturbed(timesteps: int, context_dim: int, learn_variance: bool) -> DiffusionPosterior:
    torch.manual_seed(0)
    q = DiffusionPosterior(6, 2, [16], timesteps=timesteps, context_dim=context_dim,
                           denoiser_hidden=16, learn_variance=learn_variance)
    with torch.no_grad():  # leave the identity start, so the residuals matter
        q.denoiser.out.weight.normal_(0, 0.5)
        q.denoiser.out.bias.normal_(0, 0.5)
    return q


@pytest.mark.parametrize("timesteps", [1, 5, 20])
@pytest.mark.parametrize("context_dim", [0, 3])
@pytest.mark.parametrize("learn_variance", [True, False])
def test_fast_chain_equals_plain_chain(timesteps, context_dim, learn_variance):
    q = perturbed(timesteps, context_dim, learn_variance)
    x = torch.randn(7, 6)
    g = torch.Generator().manual_seed(3)
    z, terms, traj = q.rsample_trajectory(x, g)
    noise = torch.randn((timesteps + 1, 7, 2), generator=torch.Generator().manual_seed(3))
    z_ref, terms_ref, traj_ref = plain_trajectory(q, x, noise)
    torch.testing.assert_close(traj, traj_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z, z_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms, terms_ref, rtol=1e-5, atol=1e-4)

    grads = torch.autograd.grad(terms.sum() + z.pow(2).sum(), list(q.parameters()), allow_unused=True)
    refs = torch.autograd.grad(terms_ref.sum() + z_ref.pow(2).sum(), list(q.parameters()),
                               allow_unused=True)
    for (name, _), a, b in zip(q.named_parameters(), grads, refs, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            scale = 1 + float(b.abs().max())
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_fast_summary_equals_plain_means():
    q = perturbed(5, 3, True)
    x = torch.randn(4, 6)
    mean, std, context = q.encode(x)
    u = torch.zeros_like(mean)
    for t in range(5, 0, -1):
        u = q.step(u, t, context)[0]
    torch.testing.assert_close(q.summary(x), (mean + std * u).detach(), rtol=1e-5, atol=1e-6)


def test_compiled_chain_equals_plain_chain():
    """``compile_chain``: the torch.compile'd chain gives the same samples, terms and gradients,
    serves only the first batch size it trains on, and leaves the module copyable."""
    import copy

    q = perturbed(3, 3, True)
    x = torch.randn(7, 6)
    z_ref, terms_ref, _ = q.rsample_trajectory(x, torch.Generator().manual_seed(1))
    refs = torch.autograd.grad(terms_ref.sum() + z_ref.pow(2).sum(), list(q.parameters()))
    z5_ref = q.rsample_trajectory(x[:5], torch.Generator().manual_seed(1))[0]
    q.compile_chain()
    z, terms, _ = q.rsample_trajectory(x, torch.Generator().manual_seed(1))
    grads = torch.autograd.grad(terms.sum() + z.pow(2).sum(), list(q.parameters()))
    torch.testing.assert_close(z, z_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms, terms_ref, rtol=1e-5, atol=1e-4)
    for a, b in zip(grads, refs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert q.__dict__["_compiled_chain"][1] == 7
    with torch.no_grad():  # evaluation and other batch sizes take the plain chain
        z5, _, _ = q.rsample_trajectory(x[:5], torch.Generator().manual_seed(1))
    torch.testing.assert_close(z5, z5_ref, rtol=1e-5, atol=1e-5)
    clone = copy.deepcopy(q)
    assert "_compiled_chain" not in clone.__dict__
    torch.testing.assert_close(clone.rsample_trajectory(x, torch.Generator().manual_seed(1))[0],
                               z_ref, rtol=1e-5, atol=1e-5)
