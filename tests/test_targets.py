"""VI targets: shapes, dtypes, and each built-in ``log_z`` against an independent estimate."""
import math

import pytest
import torch

from flowforge.inference.targets import (
    CallableTarget,
    GaussianMixture,
    as_target,
    available_targets,
    grid_log_z,
    make_target,
)

BUILT_IN = ["banana", "mixture", "ring", "u1", "u2", "u3", "u4"]


def test_registry_lists_the_built_ins():
    assert available_targets() == BUILT_IN
    with pytest.raises(ValueError, match="unknown target 'nope'.*banana"):
        make_target("nope")


@pytest.mark.parametrize("name", BUILT_IN)
def test_log_prob_shape_dtype(name):
    target = make_target(name)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(7, target.dim, dtype=dtype) * 3
        out = target.log_prob(x)
        assert out.shape == (7,) and out.dtype == dtype and torch.isfinite(out).all()


def _student_t_log_z(target, n: int = 200_000) -> tuple[float, float]:
    """Importance sampling from a product of Student-t(3) over the target's box.

    Heavier tails than every target, so the weights have finite variance; nothing is
    shared with how ``log_z`` was obtained (closed form or grid quadrature)."""
    (x_lo, x_hi), (y_lo, y_hi) = target.bounds
    loc = torch.tensor([(x_lo + x_hi) / 2, (y_lo + y_hi) / 2], dtype=torch.float64)
    scale = torch.tensor([(x_hi - x_lo) / 4, (y_hi - y_lo) / 4], dtype=torch.float64)
    proposal = torch.distributions.StudentT(3.0, loc, scale)
    x = proposal.sample((n,))
    log_w = target.log_prob(x) - proposal.log_prob(x).sum(1)
    w = torch.exp(log_w - log_w.max())
    return float(log_w.max() + w.mean().log()), float(w.std() / (w.mean() * math.sqrt(n)))


@pytest.mark.parametrize("name", BUILT_IN)
def test_log_z_matches_importance_sampling(name):
    target = make_target(name)
    estimate, stderr = _student_t_log_z(target)
    assert stderr < 0.02
    assert abs(estimate - target.log_z) < 5 * stderr + 1e-3, (estimate, target.log_z, stderr)


@pytest.mark.parametrize("name", ["u2", "u3", "u4", "ring", "mixture"])
def test_closed_forms_match_grid_quadrature(name):
    target = make_target(name)
    bounds = ((-20.0, 20.0), (-12.0, 12.0)) if name.startswith("u") else ((-8.0, 8.0), (-8.0, 8.0))
    assert grid_log_z(target.log_prob, bounds, n=801) == pytest.approx(target.log_z, abs=1e-9)


def test_u1_constant_is_its_quadrature():
    # the stored value was computed on a 4001^2 grid; a 1201^2 grid already agrees to 1e-9
    target = make_target("u1")
    assert grid_log_z(target.log_prob, ((-7.0, 7.0), (-7.0, 7.0)), n=1201) == pytest.approx(target.log_z, abs=1e-9)


def test_callable_wrapper_and_mixture_options():
    target = as_target(lambda x: -0.5 * (x * x).sum(1))
    assert isinstance(target, CallableTarget) and target.dim is None and target.log_z is None
    assert as_target(target) is target
    normal = as_target(torch.distributions.Normal(torch.zeros(2), 1.0), dim=2)
    assert normal.log_prob(torch.zeros(3, 2)).shape == (3, 2)  # wrapped as is; fit_target checks shapes
    mix = GaussianMixture(means=[[0.0, 0.0, 0.0]], stds=[1.0], weights=[2.0])
    assert mix.dim == 3 and mix.log_z == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="stds and weights must be positive"):
        GaussianMixture(stds=(0.6, -1.0, 0.6))
