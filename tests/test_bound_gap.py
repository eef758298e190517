"""benchmarks/bound_gap.py: exact log p(x) by quadrature, and a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from benchmark_scripts import load_script
from torch import nn

from ddvi.likelihoods import get_likelihood
from ddvi.priors import get_prior


@pytest.fixture(scope="module")
def bound_gap():
    yield from load_script("bound_gap")


def test_quadrature_matches_linear_gaussian_closed_form(bound_gap):
    A = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.7, -0.2]])
    b = torch.tensor([0.2, -0.1, 0.4])
    s = 0.5
    decoder = nn.Linear(2, 3)
    with torch.no_grad():
        decoder.weight.copy_(A)
        decoder.bias.copy_(b)
    likelihood = get_likelihood("gaussian", 3)
    with torch.no_grad():
        likelihood.log_scale.fill_(math.log(s))
    x = torch.tensor([[0.0, 0.0, 0.0], [1.5, -0.7, 0.9], [-2.0, 1.0, 0.3]])
    exact = torch.distributions.MultivariateNormal(b.double(), (A @ A.T + s * s * torch.eye(3)).double())
    with torch.no_grad():
        model = bound_gap.Generative(get_prior("gaussian"), decoder, likelihood)
        quad = bound_gap.log_evidence(model, x, 6.0, 401)
    torch.testing.assert_close(quad, exact.log_prob(x.double()), atol=1e-3, rtol=0)


def test_tiny_run_gives_a_lower_bound_and_writes_the_report(bound_gap, tmp_path):
    out = tmp_path / "gap.md"
    results = bound_gap.main(["--steps", "10", "--seeds", "0", "--cases", "gaussian",
                              "--methods", "aevb,ddvi-latent", "--protocols", "frozen,joint",
                              "--draws", "16", "--out", str(out)])
    assert len(results["fits"]) == 4
    for fit in results["fits"]:
        assert math.isfinite(fit["gap"]) and fit["gap"] >= -0.05, fit
        assert math.isfinite(fit["log_px"])
    assert results["cases"]["gaussian"]["quadrature_error"] < 1e-3
    text = out.read_text()
    assert "## Protocol `frozen`" in text and "## Protocol `joint`" in text and "ddvi-latent" in text
    assert json.loads(out.with_suffix(".json").read_text())["fits"] == results["fits"]
