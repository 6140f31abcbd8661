"""Bits per dimension in the original discrete space: pinned by closed forms.

Data units are the discrete levels (bins of width 1); the flow's log_prob
includes every preprocessing log-det; bits/dim = NLL / (D ln 2).
"""
from __future__ import annotations

import math

import pytest
import torch

from flowforge.data import load_dataset
from flowforge.distributions import BaseDensity, Flow, StandardLogistic, StandardNormal
from flowforge.models import build
from flowforge.training import bits_per_dim, evaluate_nll
from flowforge.transforms import Compose, Logit, Rescale


class UniformCentred(BaseDensity):
    """Uniform on [-1/2, 1/2)^D: log p = 0 inside."""

    def log_prob(self, z):
        self._check(z)
        inside = (z.abs() <= 0.5).flatten(1).all(1)
        return torch.where(inside, z.new_zeros(z.shape[0]), z.new_full((z.shape[0],), -math.inf))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_model_uniform_on_the_dequantized_cube_gives_log2_levels(digits):
    flow = Flow(Compose([Rescale(17)]), UniformCentred((1, 8, 8)))
    result = evaluate_nll(flow, digits.test.double(), digits, noise_draws=3)  # no parameters: dtype of x
    assert result["bits_per_dim"] == pytest.approx(math.log2(17), abs=1e-12)
    assert result["nll"] == pytest.approx(64 * math.log(17), abs=1e-9)


def test_logit_with_logistic_base_is_uniform_up_to_the_alpha_margin(digits):
    # logistic base in logit space = uniform density (1 - 2 alpha) / levels on [0, levels)
    alpha = 0.05
    flow = Flow(Compose([Logit(17, alpha)]), StandardLogistic((1, 8, 8))).double()
    result = evaluate_nll(flow, digits.test.double(), digits)
    assert result["bits_per_dim"] == pytest.approx(math.log2(17) - math.log2(1 - 2 * alpha), abs=1e-9)


def test_dequantized_density_integrates_to_the_discrete_probability_per_bin():
    # one pixel, N(0, 1) in logit space: integral of p_W over [v, v + 1) = Phi(y(v + 1)) - Phi(y(v))
    levels, alpha = 17, 0.05
    flow = Flow(Compose([Logit(levels, alpha)]), StandardNormal((1,))).double()
    n = 4000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n

    def y(w):
        s = alpha + (1 - 2 * alpha) * w / levels
        return math.log(s / (1 - s))

    total = 0.0
    for v in range(levels):
        integral = flow.log_prob((v + u)[:, None]).exp().mean().item()  # bin width 1
        exact = 0.5 * (math.erf(y(v + 1) / math.sqrt(2)) - math.erf(y(v) / math.sqrt(2)))
        assert integral == pytest.approx(exact, rel=1e-5)
        total += integral
    assert total == pytest.approx(1 - 2 * (0.5 - 0.5 * math.erf(y(levels) / math.sqrt(2))), rel=1e-6)


def test_bits_per_dim_of_a_trained_image_model_counts_its_preprocessing(digits):
    flow = build("glow", shape=[1, 8, 8], layers=1, hidden=4, preprocess=[{"type": "logit", "levels": 17}]).double()
    x = digits.test[:16].double() + torch.rand(16, 1, 8, 8, dtype=torch.float64)
    z, log_abs_det = flow.transform(x)
    nll = -(flow.base.log_prob(z) + log_abs_det).mean().item()
    assert -flow.log_prob(x).mean().item() == pytest.approx(nll)
    # the logit's log-det alone is part of it: removing it changes the number by its mean
    logit_ld = flow.transform[0](x)[1].mean().item()
    assert abs(logit_ld) > 10
    assert bits_per_dim(nll, 64) == pytest.approx(nll / (64 * math.log(2)))
