"""Exact piecewise-linear evaluation of ReLU MLPs ``1 -> K -> H -> m`` (a scalar input).

A coupling layer on 2-D data feeds its conditioner one coordinate ``x``, and a
ReLU net of one number is a piecewise-linear function of it. Evaluating it
piece by piece replaces the ``B x K x H`` product (and every ``(B, H)``
activation) with a table of ``O(K H)`` rows and one lookup per sample.

Level 1. Unit ``j`` of the first layer switches at ``t_j = -b_j / w_j``.
Between consecutive sorted breakpoints (interval ``k``, ``K + 1`` of them) the
second layer's pre-activation is linear::

    relu(x w + b) @ W2 + b2 = A_k x + C_k,    A_k = on_k @ (w W2),  C_k = b2 + on_k @ (b W2)

with ``on_k`` the 0/1 row of the units on in interval ``k`` (each row a fresh
sum of the dense path's own terms: no drift).

Level 2. Inside interval ``k`` the second-layer unit ``h`` switches at
``s_kh = -C_kh / A_kh``. Sorting each interval's events, the output
``relu(A_k x + C_k) @ W3 + b3 = P x + Q`` on the piece after ``r`` events is the
sum of the terms ``(A_kh, C_kh) W3[h]`` of the units on there: those on all
along, those that rose at one of the first ``r`` events (a prefix sum) and
those that fall at a later one (a suffix sum). A table of ``(K + 1) (H + 1)``
rows; a sample finds its row with one ``searchsorted`` in the list of every
interval's left end followed by its sorted events (rows ordered as the
intervals are, so the list is sorted). Sums run over at most ``H`` terms, as
the dense products' do, and each unit enters only pieces where it is on: no
drift along the table and no cancellation in the gradients (a unit no sample
switches on gets exactly zero gradient, as in the dense path).

The breakpoints move with the weights but ``relu`` is continuous there, so the
pieces have the dense path's gradients (at a kink, one of the one-sided
derivatives). Only ordinary PyTorch operations: autograd, double backward,
``torch.func`` and ``torch.compile`` see them, on any device, in any dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
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
        always = on_left & ~inside
        events, order = torch.where(inside, switch, lo).sort(dim=2)  # rows ordered by interval: one sorted list
        rises = (inside & (slope > 0)).gather(2, order)[:, None]
        falls = (inside & (slope < 0)).gather(2, order)[:, None]
    # piece r of interval k (r events passed) sums the terms of its units that are on: those on all
    # along, those that rose at an event < r (prefix sum), those that fall at an event >= r (suffix
    # sum). A unit enters only the pieces where it is on, so its gradient is a sum of true terms
    # (exactly 0 when no sample reaches them, as in the dense path), never a difference.
    # Layout (copies, 2m, K + 1, H): the long unit axis innermost, where the sums run.
    w3t = w3.transpose(1, 2)[:, :, None]  # (copies, m, 1, H)
    terms = torch.cat([slope[:, None] * w3t, offset[:, None] * w3t], dim=1)
    const = torch.where(always[:, None], terms, 0).sum(3) + torch.cat([torch.zeros_like(b3), b3], 2).transpose(1, 2)
    terms = terms.gather(3, order[:, None].expand(-1, 2 * m, -1, -1))
    rose = F.pad(torch.where(rises, terms, 0).cumsum(3), (1, 0))
    falling = F.pad(torch.where(falls, terms, 0).flip(3).cumsum(3).flip(3), (0, 1))
    table = (const[..., None] + rose + falling).flatten(2)  # (copies, 2m, (K + 1) (H + 1))
    # one sorted list: per interval its left end, then its events (all >= it). A sample x in
    # interval k passes (H + 1) k entries of earlier intervals, the left end of its own and r of its
    # events: it reads table row (H + 1) k + r, one past its count.
    marks = torch.cat([lo, events], dim=2).flatten(1)
    passed = torch.searchsorted(marks, x.reshape(1, -1).expand(copies, -1).contiguous())
    row = (passed - 1).clamp_(min=0)  # x = -inf passes nothing and belongs to row 0
    coef = table.gather(2, row[:, None].expand(-1, 2 * m, -1)).transpose(1, 2)  # (copies, B, 2m)
    return torch.addcmul(coef[..., m:], coef[..., :m], x)
