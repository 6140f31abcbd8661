"""Exact piecewise-linear evaluation of ReLU MLPs ``1 -> K -> H -> m`` (a scalar input).

A coupling layer on 2-D data feeds its conditioner one coordinate ``x``, and a
ReLU net of one number is a piecewise-linear function of it. Evaluating it
piece by piece replaces the ``B x K x H`` product (and every ``(B, H)``
activation) with tables of ``O(K H)`` entries and two lookups per sample.

Level 1. Unit ``j`` of the first layer switches at ``t_j = -b_j / w_j``.
Between consecutive sorted breakpoints (interval ``k``, ``K + 1`` of them) the
second layer's pre-activation is linear::

    relu(x w + b) @ W2 + b2 = A_k x + C_k,    [A_k, C_k] = b2-offset rows of on_k @ [w W2, b W2]

with ``on_k`` the units on in interval ``k`` (each row a fresh sum of the
dense path's own terms: no drift).

Level 2. Inside interval ``k`` the second-layer unit ``h`` switches at
``s_kh = -C_kh / A_kh``. Sorting each interval's events, the output
``relu(A_k x + C_k) @ W3 + b3 = P x + Q`` of the ``r``-th piece of interval
``k`` is its value at the interval's left end plus a prefix sum of the
changes ``+- A_kh W3[h]`` (slope) and ``+- C_kh W3[h]`` (offset) of its first
``r`` events: a table of ``(K + 1) (H + 1)`` rows. A sample needs ``k`` and ``r``:
two ``searchsorted`` calls (the rows of events, one per interval, are ordered
as the intervals are, so they form one sorted list). Sums run over at most
``H`` terms, as the dense products' do: no drift along the table.

The breakpoints move with the weights but ``relu`` is continuous there, so the
pieces have the dense path's gradients (at a kink, one of the one-sided
derivatives). Only ordinary PyTorch operations: autograd, double backward,
``torch.func`` and ``torch.compile`` see them, on any device, in any dtype.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mlp"]


def mlp(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor) -> Tensor:
    """``relu(relu(x w1 + b1) @ w2 + b2) @ w3 + b3`` for ``copies`` nets on a scalar input, exactly.

    Args:
        x: ``(B, 1)``. w1, b1: ``(copies, 1, K)``. w2: ``(copies, K, H)``, b2: ``(copies, 1, H)``.
            w3: ``(copies, H, m)``, b3: ``(copies, 1, m)``.

    Returns:
        ``(copies, B, m)``.
    """
    copies, units, width = w2.shape
    m = w3.shape[2]
    w, b = w1[:, 0], b1[:, 0]  # (copies, K)
    with torch.no_grad():  # which first-layer units are on in which interval: a 0/1 pattern
        breaks = torch.where(w != 0, -b / w, torch.inf)  # a unit with w = 0 never switches
        breaks, order = breaks.sort(dim=1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(units, device=w.device).expand(copies, -1))
        # interval k = (breaks[k-1], breaks[k]]: unit j's breakpoint lies left of it iff rank_j < k
        right_of = rank[:, None, :] < torch.arange(units + 1, device=w.device)[None, :, None]
        on = torch.where(w[:, None] > 0, right_of, torch.where(w[:, None] < 0, ~right_of, b[:, None] > 0))
        on = on.to(w2.dtype)
    slope = torch.bmm(on, w[..., None] * w2)  # (copies, K + 1, H): A
    offset = torch.baddbmm(b2, on, b[..., None] * w2)  # C
    with torch.no_grad():  # second-layer switching points inside each interval
        inf = breaks.new_full((copies, 1), torch.inf)
        lo, hi = torch.cat([-inf, breaks], 1)[..., None], torch.cat([breaks, inf], 1)[..., None]
        switch = -offset / slope
        inside = (slope != 0) & (switch > lo) & (switch < hi)
        on_left = torch.where(slope > 0, switch <= lo, torch.where(slope < 0, switch > lo, offset > 0))
        events, order = torch.where(inside, switch, lo).sort(dim=2)  # rows ordered by interval: one sorted list
        sign = torch.where(inside, slope.sign(), 0)  # +1: the unit turns on at its event, -1: off
    # per interval: slope and offset of the output at its left end, then their changes at its events
    start = torch.cat([torch.bmm(torch.where(on_left, slope, 0), w3), torch.baddbmm(b3, torch.where(on_left, offset, 0), w3)],
                      dim=2)
    step = torch.cat([(sign * slope)[..., None] * w3[:, None], (sign * offset)[..., None] * w3[:, None]], dim=3)
    step = step.gather(2, order[..., None].expand(-1, -1, -1, 2 * m))
    table = torch.cat([start[:, :, None], step], dim=2).cumsum(2)  # (copies, K + 1, H + 1, 2m)
    xs = x.reshape(1, -1).expand(copies, -1).contiguous()
    interval = torch.searchsorted(breaks, xs)  # k
    passed = torch.searchsorted(events.flatten(1), xs)  # H k + (events of interval k left of x)
    rows = passed + interval + torch.arange(copies, device=x.device)[:, None] * table[0].numel() // (2 * m)
    coef = table.reshape(-1, 2 * m)[rows]  # (copies, B, 2m)
    return torch.addcmul(coef[..., m:], coef[..., :m], x)
