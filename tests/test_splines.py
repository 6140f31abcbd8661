"""The rational-quadratic spline function: edges, knots, tails, float32 inverse,
gradients, torch.func / export, and bad input. (The layers that use it are
contract cases in tests/transforms/cases.py.)"""
from __future__ import annotations

import pytest
import torch

from flowforge.transforms import RQSplineMap, rational_quadratic_spline

B = 3.0
BINS = 5


def raw_params(n: int, dim: int, dtype, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, 3 * BINS - 1, dim, generator=g, dtype=torch.float64)).to(dtype)


def knots_x(params: torch.Tensor) -> torch.Tensor:
    """The inner knots ``x_1 .. x_{K-1}`` of each spline, ``(n, K - 1, dim)``, computed
    independently of the library (softmax widths floored at 1e-3)."""
    widths = 1e-3 + (1 - 1e-3 * BINS) * params[:, :BINS].softmax(dim=1)
    return -B + 2 * B * widths.cumsum(dim=1)[:, :-1]


def spline(x, params, inverse=False):
    return rational_quadratic_spline(x, params, B, inverse=inverse)


def edge_inputs(dtype) -> torch.Tensor:
    """+-B, one ulp either side of them, 0, and points far outside the tails."""
    b = torch.tensor([-B, B], dtype=dtype)
    inf = torch.tensor([-float("inf"), float("inf")], dtype=dtype)
    big = torch.finfo(dtype).max / 4
    return torch.cat([b, torch.nextafter(b, inf), torch.nextafter(b, -inf), torch.tensor([0.0, -1e6, 1e6, -big, big],
                                                                                          dtype=dtype)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_params_are_the_identity_everywhere(dtype):
    x = torch.cat([torch.linspace(-2 * B, 2 * B, 97, dtype=dtype), edge_inputs(dtype)])[:, None]
    params = torch.zeros(len(x), 3 * BINS - 1, 1, dtype=dtype)
    for inverse in (False, True):
        y, log_abs_det = spline(x, params, inverse)
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(y, x, rtol=4 * eps, atol=16 * eps)
        assert log_abs_det.abs().max() < 16 * eps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edges_ulps_and_far_outside_are_finite_invertible_and_identity_outside(dtype):
    x = edge_inputs(dtype)[:, None].expand(-1, 4)
    params = raw_params(len(x), 4, dtype, scale=2.0)
    y, log_abs_det = spline(x, params)
    assert torch.isfinite(y).all() and torch.isfinite(log_abs_det).all()
    outside = x.abs() > B
    assert torch.equal(y[outside], x[outside]) and torch.equal(log_abs_det[outside], torch.zeros_like(y[outside]))
    # the ends of the spline meet the identity tails: +-B map to +-B (continuity)
    at_bound = x.abs() == B
    torch.testing.assert_close(y[at_bound], x[at_bound], rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    x_back, log_abs_det_inv = spline(y, params, inverse=True)
    assert torch.isfinite(x_back).all() and torch.isfinite(log_abs_det_inv).all()
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5 if dtype == torch.float32 else 1e-12)
    torch.testing.assert_close(log_abs_det_inv, -log_abs_det, rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exactly_at_the_knots(dtype):
    params = raw_params(64, 3, dtype, scale=2.0)
    x = knots_x(params)  # (64, K - 1, 3): each inner knot of each spline, as an input of that spline
    n = x.shape[1]
    rows = params.repeat_interleave(n, dim=0)
    xs = x.reshape(-1, 3)  # row r * n + j: knot j of spline r
    y, log_abs_det = spline(xs, rows)
    assert torch.isfinite(y).all() and torch.isfinite(log_abs_det).all()
    x_back, _ = spline(y, rows, inverse=True)
    torch.testing.assert_close(x_back, xs, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-5)
    # one ulp to either side may land in the neighbouring bin: the value agrees, and in
    # float64 (where an ulp is far below the scale of these steep bins) the derivative too
    for side in (-B, B):
        near, near_log_abs_det = spline(torch.nextafter(xs, torch.full_like(xs, side)), rows)
        torch.testing.assert_close(near, y, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
        if dtype == torch.float64:
            torch.testing.assert_close(near_log_abs_det, log_abs_det, rtol=0, atol=1e-9)


def test_log_abs_det_is_the_derivative_in_float64():
    x = torch.cat([torch.linspace(-B - 1, B + 1, 200, dtype=torch.float64), edge_inputs(torch.float64)[:3]])
    x = x[:, None].expand(-1, 2).clone().requires_grad_()
    params = raw_params(len(x), 2, torch.float64, scale=1.5)
    y, log_abs_det = spline(x, params)
    (dy,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_abs_det, dy.log(), rtol=0, atol=1e-10)
    assert (dy > 0).all()  # strictly monotone


def test_monotone_and_round_trip_on_a_dense_grid():
    x = torch.linspace(-B - 0.5, B + 0.5, 4001, dtype=torch.float64)[:, None]
    params = raw_params(1, 1, torch.float64, scale=2.0).expand(len(x), -1, -1)
    y, _ = spline(x, params)
    assert (y.diff(dim=0) > 0).all()
    x_back, _ = spline(y, params, inverse=True)
    assert (x_back - x).abs().max() < 1e-12


def test_float32_inverse_never_takes_the_root_of_a_negative_discriminant():
    # Steep, uneven splines (raw parameters of scale 6) evaluated at their own outputs:
    # in float32 the discriminant rounds below zero for a few of these rows (without the
    # clamp this gives NaN: nflows #87); the inverse must stay finite and accurate.
    g = torch.Generator().manual_seed(0)
    params = 6 * torch.randn(20000, 3 * BINS - 1, 1, generator=g)
    x = torch.linspace(-B, B, 20000)[:, None]
    y, _ = spline(x, params)
    x_back, log_abs_det = spline(y, params, inverse=True)
    assert torch.isfinite(x_back).all() and torch.isfinite(log_abs_det).all()
    # slopes here range over e^-16 .. e^5: each point is accurate in x (steep bins) or
    # in y (flat bins, where float32 rounding of y moves x a lot)
    error = torch.minimum((x_back - x).abs(), (spline(x_back, params)[0] - y).abs())
    assert error.max() < 1e-5


def test_gradients_are_finite_for_inputs_outside_the_tails():
    x = torch.tensor([[-1e30, -B - 1e-3, 1e4, 1e30]], dtype=torch.float32).repeat(3, 1).requires_grad_()
    params = raw_params(3, 4, torch.float32, scale=3.0).requires_grad_()
    for inverse in (False, True):
        y, log_abs_det = spline(x, params, inverse)
        gx, gp = torch.autograd.grad((y + log_abs_det).sum(), (x, params))
        assert torch.isfinite(gx).all() and torch.isfinite(gp).all()
        assert torch.equal(gx, torch.ones_like(gx)) and torch.equal(gp, torch.zeros_like(gp))


def test_round_trip_float32_moderate_parameters():
    x = 1.2 * B * torch.randn(2000, 3)
    params = raw_params(2000, 3, torch.float32)
    y, log_abs_det = spline(x, params)
    x_back, log_abs_det_inv = spline(y, params, inverse=True)
    assert (x_back - x).abs().max() < 1e-3  # float32 rounding of y over the slowest slopes
    assert (spline(x_back, params)[0] - y).abs().max() < 1e-5
    assert (log_abs_det + log_abs_det_inv).abs().max() < 1e-3


def test_torch_func_jacobian():
    x = torch.linspace(-B - 1, B + 1, 12, dtype=torch.float64).view(4, 3)
    params = raw_params(4, 3, torch.float64)
    jac = torch.func.jacrev(lambda v: spline(v, params)[0])(x)  # (4, 3, 4, 3), diagonal
    diag = torch.einsum("ijij->ij", jac)
    torch.testing.assert_close(diag.log(), spline(x, params)[1])
    assert (jac.abs().sum() - diag.abs().sum()).abs() < 1e-12


def test_exports_with_a_dynamic_batch():
    # torch.export refuses data-dependent shapes (boolean-mask indexing, normflows PR #74):
    # one graph serves every batch size and every input, inside or outside the tails
    class Spline(torch.nn.Module):
        def forward(self, x, params):
            return spline(x, params)

    batch = torch.export.Dim("batch")
    program = torch.export.export(
        Spline(), (torch.zeros(4, 3), torch.zeros(4, 3 * BINS - 1, 3)), dynamic_shapes=({0: batch}, {0: batch})
    )
    x = 2 * B * torch.randn(9, 3)
    params = raw_params(9, 3, torch.float32)
    for got, want in zip(program.module()(x, params), spline(x, params), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"bins": 1}, r"bins must be an integer >= 2, got 1"),
        ({"bins": 2.5}, r"bins must be an integer >= 2"),
        ({"tail_bound": 0.0}, r"tail_bound must be a positive finite number, got 0.0"),
        ({"tail_bound": -1.0}, r"tail_bound must be a positive finite number"),
        ({"bins": 8, "min_width": 0.2}, r"min_width must be in \(0, 1 / bins\)"),
        ({"min_derivative": 1.0}, r"min_derivative must be in \(0, 1\)"),
    ],
)
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        RQSplineMap(**options)


def test_wrong_number_of_parameters_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3 \* bins - 1 entries in dimension 1 \(bins >= 2\), got 7"):
        spline(torch.zeros(2, 3), torch.zeros(2, 7, 3))
