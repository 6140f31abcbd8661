"""Monotonic rational-quadratic splines (Durkan et al., "Neural Spline Flows").

:func:`rational_quadratic_spline` is the pure element-wise function;
:class:`RQSplineMap` wraps it as a univariate map for :class:`Coupling` and
:class:`MaskedAutoregressive` layers (RQ-NSF (C) and RQ-NSF (AR)).

Notation: ``K`` bins on ``[-B, B]`` with knots ``(x_k, y_k)``, ``x_0 = y_0 = -B``,
``x_K = y_K = B``, derivatives ``d_k`` at the knots with ``d_0 = d_K = 1``; outside
``[-B, B]`` the map is the identity (linear tails), so it is ``C^1`` everywhere.
In bin ``k``, with ``w = x_{k+1} - x_k``, ``h = y_{k+1} - y_k``, ``s = h / w`` and
``t = (x - x_k) / w``::

    y = y_k + h (s t^2 + d_k t (1 - t)) / (s + (d_k + d_{k+1} - 2 s) t (1 - t))
    dy/dx = s^2 (d_{k+1} t^2 + 2 s t (1 - t) + d_k (1 - t)^2) / (s + (d_k + d_{k+1} - 2 s) t (1 - t))^2

The inverse solves a quadratic in ``t``, by whichever of the two forms of its
root avoids cancellation, the discriminant clamped at 0.

Every element is computed by the same ops (clamps and ``where``, no boolean
indexing, no data-dependent shapes), so the function traces, compiles and
exports; inputs outside the tails are clamped before the spline branch, so
that branch never produces the NaN gradients a discarded ``where`` branch
would otherwise leak.

References:
    Durkan et al., "Neural Spline Flows", arXiv:1906.04032.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .univariate import UnivariateMap

__all__ = ["rational_quadratic_spline", "RQSplineMap"]


def rational_quadratic_spline(
    x: Tensor,
    params: Tensor,
    tail_bound: float,
    inverse: bool = False,
    min_width: float = 1e-3,
    min_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Apply the spline (or its inverse) element-wise; raw ``params = 0`` is the identity.

    ``params[:, :K]`` and ``params[:, K:2K]`` are unnormalized bin widths and
    heights (softmax, floored at ``min_width`` / ``min_height`` of the
    interval), ``params[:, 2K:]`` the ``K - 1`` inner derivatives
    (``min_derivative + softplus(raw + c)`` with ``c`` chosen so that raw 0 gives 1).

    Args:
        x: inputs, ``(B, *shape)``.
        params: ``(B, 3K - 1, *shape)``.
        tail_bound: ``B``; the map is the identity outside ``[-B, B]``.
        inverse: apply the inverse map instead.
        min_width, min_height, min_derivative: floors keeping bins and slopes
            away from zero.

    Returns:
        ``(y, log|dy/dx|)`` (for ``inverse``, ``log|dx/dy|``), both ``(B, *shape)``.
    """
    n = params.shape[1]
    if n % 3 != 2 or n < 5:
        raise ValueError(f"params must have 3 * bins - 1 entries in dimension 1 (bins >= 2), got {n}")
    bins = (n + 1) // 3
    bound = float(tail_bound)
    # Layout: the parameter index first, (3K - 1, B, *shape), so that every reduction over
    # bins adds whole contiguous slabs and the gathered knot values come out contiguous
    # (CPU kernels are several times slower on strided or short-dimension operands).
    wh, raw_slopes = params.movedim(1, 0).contiguous().split([2 * bins, bins - 1])
    # widths and heights together, (2, K, B, *shape): a softmax over the bins, floored
    wh = wh.unflatten(0, (2, bins))
    wh = torch.exp(wh - wh.detach().amax(dim=1, keepdim=True))  # the shift is a constant for softmax
    floor = wh.new_tensor([min_width, min_height]).view(2, 1, *(1,) * x.ndim)
    wh = floor + (1 - floor * bins) / wh.sum(dim=1, keepdim=True) * wh
    # table (3, K + 1, B, *shape): x knots, y knots (exact ends -B, B), derivatives (1 at both ends)
    pad = torch.nn.functional.pad
    knots = torch.cumsum(wh[:, :-1], dim=1).flatten(2)  # pad acts on the last dimensions
    knots = pad(pad(knots, (0, 0, 1, 0), value=0.0), (0, 0, 0, 1), value=1.0) * (2 * bound) - bound
    shift = math.log(math.expm1(1 - min_derivative))  # softplus(0 + shift) + min_derivative = 1
    slopes = torch.nn.functional.softplus(raw_slopes + shift) + min_derivative
    slopes = pad(slopes.flatten(1), (0, 0, 1, 1), value=1.0)
    table = torch.cat([knots, slopes.unsqueeze(0)]).view(3, bins + 1, *x.shape)

    xc = x.clamp(-bound, bound)
    inside = xc == x
    # bin index = number of inner knots <= input: always in [0, K - 1]; +B lands in the last bin
    k = (xc >= table[int(inverse), 1:-1]).sum(dim=0)
    index = torch.stack([k, k + 1]).expand(3, 2, *x.shape)
    x0, x1, y0, y1, d0, d1 = table.gather(1, index).flatten(0, 1).unbind(0)
    w, h = x1 - x0, y1 - y0
    s = h / w
    bend = torch.add(d0 + d1, s, alpha=-2)
    if inverse:
        # a t^2 + b t - c = 0 with c = s dy >= 0; its root in [0, 1] without cancellation:
        # 2c / (b + r) for b >= 0, (r - b) / 2a for b < 0 (then a > h s > 0), r = sqrt(b^2 + 4ac)
        dy = xc - y0
        a = torch.addcmul(h * (s - d0), dy, bend)
        b = torch.addcmul(h * d0, dy, bend, value=-1)
        c = s * dy
        r = torch.addcmul(b * b, a, c, value=4).clamp(min=0).sqrt()
        plus = b >= 0
        t = torch.where(plus, 2 * c, r - b) / torch.where(plus, b + r, 2 * a)
        out = torch.addcmul(x0, t, w)
    else:
        t = (xc - x0) / w
    u = 1 - t
    denom = torch.addcmul(s, bend, t * u)
    if not inverse:
        out = torch.addcdiv(y0, h * t * torch.addcmul(s * t, d0, u), denom)
    # dy/dx = s^2 (d1 t^2 + 2 s t u + d0 u^2) / denom^2
    slope = torch.addcmul(t * torch.addcmul(d1 * t, s, u, value=2), d0 * u, u)
    ratio = s / denom
    log_abs_det = torch.log(ratio * ratio * slope)
    if inverse:
        log_abs_det = -log_abs_det
    return torch.where(inside, out, x), torch.where(inside, log_abs_det, 0.0)


class RQSplineMap(UnivariateMap):
    """Rational-quadratic spline with ``bins`` bins on ``[-tail_bound, tail_bound]``,
    identity outside (:func:`rational_quadratic_spline`); ``3 * bins - 1`` parameters
    per coordinate, all zero = the identity.

    Args:
        bins: number of bins ``K >= 2``.
        tail_bound: ``B > 0``.
        min_width, min_height, min_derivative: floors of the bin widths and
            heights (fractions of ``2B``) and of the knot derivatives.
    """

    def __init__(
        self,
        bins: int = 8,
        tail_bound: float = 5.0,
        min_width: float = 1e-3,
        min_height: float = 1e-3,
        min_derivative: float = 1e-3,
    ):
        super().__init__()
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
        if not tail_bound > 0 or not math.isfinite(tail_bound):
            raise ValueError(f"tail_bound must be a positive finite number, got {tail_bound!r}")
        for name, value in (("min_width", min_width), ("min_height", min_height)):
            if not 0 < value * bins < 1:
                raise ValueError(f"{name} must be in (0, 1 / bins) = (0, {1 / bins:g}), got {value!r}")
        if not 0 < min_derivative < 1:
            raise ValueError(f"min_derivative must be in (0, 1), got {min_derivative!r}")
        self.bins, self.tail_bound = bins, float(tail_bound)
        self.min_width, self.min_height, self.min_derivative = min_width, min_height, min_derivative
        self.n_params = 3 * bins - 1

    def _spline(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(
            x, params, self.tail_bound, inverse, self.min_width, self.min_height, self.min_derivative
        )

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(x, params, inverse=False)

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(y, params, inverse=True)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, tail_bound={self.tail_bound}"
