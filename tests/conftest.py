"""Shared fixtures: every method of the method table on a linear-Gaussian toy model whose exact
log p(x) is known in closed form, and the helpers the method tests share."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from ddvi.methods import METHOD_TABLE, SLEEP_MODES, Method, StepContext, build_method

# every method of the table; a wake-sleep objective once per sleep mode
METHOD_VARIANTS = [(name, {"sleep": sleep} if spec.wake_sleep else {})
                   for name, spec in METHOD_TABLE.items()
                   for sleep in (SLEEP_MODES if spec.wake_sleep else (None,))]


def variant_id(variant: tuple[str, dict]) -> str:
    name, opts = variant
    return "-".join([name, *opts.values()])


class LinearGaussianToy:
    """z ~ N(0, I_2), x = W z + b + N(0, diag(s^2)) in D = 5 dimensions, so that
    log p(x) = log N(x; b, W W^T + diag(s^2)) exactly. ``build`` puts any method of the table
    on it: a ``gaussian`` prior, a linear decoder (W, b) and a Gaussian likelihood of scale s;
    training moves W, b and s, and :meth:`exact_log_px` reads them off the model."""

    D, latent_dim, scale = 5, 2, 0.3

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(self.D, self.latent_dim, generator=g)
        self.b = 0.5 * torch.randn(self.D, generator=g)

    def build(self, method: str, seed: int = 0, **options) -> Method:
        torch.manual_seed(seed)
        opts = {"prior": "gaussian", "likelihood": "gaussian", "hidden": (32,), "timesteps": 6,
                "denoiser_hidden": 32, "beta_reg": 1.0, "prior_weight": 1.0,
                "fantasy": "mean"} | options
        model = build_method(method, self.D, latent_dim=self.latent_dim, **opts)
        model.decoder = nn.Linear(self.latent_dim, self.D)
        with torch.no_grad():
            model.decoder.weight.copy_(self.W)
            model.decoder.bias.copy_(self.b)
            model.likelihood.log_scale.fill_(math.log(self.scale))
        return model

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """x from the true model."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g)
        return z @ self.W.T + self.b + self.scale * torch.randn(n, self.D, generator=g)

    @staticmethod
    @torch.no_grad()
    def exact_log_px(model: Method, x: Tensor) -> Tensor:
        """log p(x) under the model's current linear decoder and likelihood scale, (n,)."""
        W, b = model.decoder.weight, model.decoder.bias
        cov = W @ W.T + torch.diag(torch.exp(2 * model.likelihood.log_scale))
        return torch.distributions.MultivariateNormal(b, cov).log_prob(x)


@pytest.fixture(params=METHOD_VARIANTS, ids=variant_id)
def method_variant(request) -> tuple[str, dict]:
    """(method name, build options): every row of the method table, DDVI once per sleep mode."""
    return request.param


@pytest.fixture
def toy() -> LinearGaussianToy:
    return LinearGaussianToy()


def _grads_of(model: nn.Module, loss: Tensor) -> set[str]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.fixture
def grads_of() -> Callable[[nn.Module, Tensor], set[str]]:
    """``grads_of(model, loss)``: names of the parameters ``loss`` gives a non-zero gradient."""
    return _grads_of


def _mc_elbo(model: Method, x: Tensor, n: int = 300, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        vals = torch.stack([model.elbo_terms(x, g)["elbo"] for _ in range(n)])
    return vals.mean(0), vals.std(0) / math.sqrt(n)


@pytest.fixture
def mc_elbo() -> Callable[..., tuple[Tensor, Tensor]]:
    """``mc_elbo(model, x, n=300)``: per-example Monte-Carlo mean of the bound and its standard
    error."""
    return _mc_elbo


def _fit_steps(model: Method, x: Tensor, steps: int = 300, lr: float = 3e-3,
               labels: Tensor | None = None) -> Method:
    opt = model.configure_optimizer(lr)
    g = torch.Generator().manual_seed(0)
    for i in range(steps):
        model.training_step(x, opt, StepContext(i, steps, g, labels))
    return model.eval()


@pytest.fixture
def fit_steps() -> Callable[..., Method]:
    """``fit_steps(model, x, steps=300, lr=3e-3)``: full-batch training, then eval mode."""
    return _fit_steps
