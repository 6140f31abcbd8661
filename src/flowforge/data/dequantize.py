"""Uniform dequantization of discrete data: ``w = v + r * u``, ``u ~ U[0, 1)^D``,
with ``r`` the bin width of each dimension: 1 for pixel levels, a column's
recording resolution for grid-recorded tables (0 leaves a continuous column alone).

With bins of widths ``r``, ``E_u[-log p_W(v + r u)] >= -log P(v) + sum_j log r_j``
(Jensen), so the NLL of dequantized data minus ``sum log r`` bounds the discrete
NLL. This is the only non-bijective preprocessing step and so stays outside the flow.

A column is *recorded on a grid* of resolution ``r`` (:func:`grid_resolution`)
when every value is ``v_min + k r`` for an integer ``k`` (to 1% of ``r``) and the
grid has no more points over the column's range than the column has rows, so
that values repeat: temperatures in tenths, prices in whole dollars, counts.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["dequantize", "grid_resolution"]

#: Candidate resolutions are the smallest gap between distinct values divided by 1..MAX_DIVISOR.
MAX_DIVISOR = 10
#: A value is on the grid when it is within this fraction of ``r`` of a grid point.
CELL_TOLERANCE = 0.01


def dequantize(x: Tensor, generator: torch.Generator | None = None, width: Tensor | None = None) -> Tensor:
    """``x + width * U[0, 1)`` noise of ``x``'s shape, dtype and device; ``width``
    (1 when None) broadcasts over the trailing dimensions, e.g. ``(D,)`` per column."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu" if generator is not None else x.device)
    u = u.to(x.device)
    return x + (u if width is None else u * width)


def grid_resolution(values: np.ndarray) -> float | None:
    """The recording resolution ``r`` of one column, or None when it is continuous
    (or constant: one value has no resolution).

    ``values``: ``(N,)`` finite numbers. ``r`` is returned to 6 significant digits.
    """
    distinct = np.unique(values.astype(np.float64, copy=False))
    if distinct.size < 2:
        return None
    span = distinct[-1] - distinct[0]
    gaps = np.diff(distinct)
    gaps = gaps[gaps > 1e-9 * np.abs(distinct).max()]  # values equal up to rounding error are one value
    if gaps.size == 0:
        return None
    offsets = distinct - distinct[0]
    for divisor in range(1, MAX_DIVISOR + 1):
        r = gaps.min() / divisor
        cells = round(span / r)
        if cells + 1 > values.size:  # finer than the data can show: no repeats, nothing degenerate
            return None
        r = span / cells  # the whole range pins r down better than one gap
        k = offsets / r
        if np.abs(k - np.round(k)).max() <= CELL_TOLERANCE:
            return float(f"{r:.6g}")
    return None
