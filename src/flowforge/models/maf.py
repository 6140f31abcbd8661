"""Masked Autoregressive Flow (Papamakarios et al., arXiv:1705.07057) for vectors.

A stack of MADE-conditioned affine autoregressive layers whose order changes
between consecutive layers (reversed, or a random permutation), optionally with
batch norm between layers as in the MAF paper. :func:`autoregressive_stack` is
shared with the IAF model (:mod:`flowforge.models.iaf`), whose layers are the
same ones inverted.

The order change is folded into each MADE's degrees rather than done by a
:class:`~flowforge.transforms.Permutation` layer between MADEs: for a
permutation ``P`` listing the order ``pi``, ``M o P = P o M_pi`` (``M_pi`` the
same layer made autoregressive in ``pi``), so the stack equals the
permutation-layer stack up to a fixed relabelling of the latent coordinates
(immaterial for the standard normal base, absorbed by a learnable one), and
costs no gather or scatter per step.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ..distributions import Flow
from ..nets import MADE
from ..nets.made import random_order
from ..transforms import AffineMap, BatchNorm, Compose, Inverse, MaskedAutoregressive, Transform, UnivariateMap
from .bases import make_base
from .realnvp import _check_positive
from .registry import register

__all__ = ["maf", "autoregressive_stack"]


def autoregressive_stack(
    dim: int,
    layers: int,
    hidden: int,
    hidden_layers: int,
    permutation: str,
    residual: bool,
    univariate: Callable[[], UnivariateMap],
    context_dim: int,
    seed: int,
    inverse: bool = False,
    between: Callable[[], Transform] | None = None,
) -> Compose:
    """``layers`` MAF layers (IAF layers with ``inverse=True``) in the normalizing
    order, each with the order ``permutation`` gives it and its own element-wise
    map ``univariate()``, optionally a layer ``between()`` (batch norm, linear
    mixing) between consecutive ones."""
    _check_positive(dim=dim, layers=layers, hidden=hidden)
    if not isinstance(hidden_layers, int) or hidden_layers < 0:
        raise ValueError(f"hidden_layers must be a non-negative integer, got {hidden_layers!r}")
    orders = {
        "reverse": lambda i: torch.arange(dim).flip(0) if i % 2 else torch.arange(dim),
        "random": lambda i: random_order(dim, seed + i) if i else torch.arange(dim),
        "none": lambda i: torch.arange(dim),
    }
    if permutation not in orders:
        raise ValueError(f"unknown permutation {permutation!r}; choose from {sorted(orders)}")
    made = partial(MADE, hidden=hidden, hidden_layers=hidden_layers, residual=residual, zero_init=True)
    stack: list[Transform] = []
    for i in range(layers):
        if i > 0 and between is not None:
            stack.append(between())
        layer = MaskedAutoregressive(orders[permutation](i), univariate(), made, context_dim=context_dim)
        stack.append(Inverse(layer) if inverse else layer)
    return Compose(stack, event_shape=(dim,))


@register("maf")
def maf(
    dim: int = 2,
    layers: int = 5,
    hidden: int = 128,
    hidden_layers: int = 2,
    permutation: str = "reverse",
    batch_norm: bool = False,
    residual: bool = False,
    scale_bound: float | None = 0.5,
    context_dim: int = 0,
    base: str = "normal",
    seed: int = 0,
) -> Flow:
    """MAF on ``(B, dim)`` vectors.

    Args:
        dim: data dimension.
        layers: number of MADE layers.
        hidden, hidden_layers: MADE width and number of hidden ReLU layers.
        permutation: ``"reverse"`` the order from one layer to the next, give
            layer ``i > 0`` a ``"random"`` order (drawn from ``seed + i``), or ``"none"``.
        batch_norm: a batch-norm bijection between layers (MAF paper, Sec. 3.4).
        residual: residual connections between the MADE's hidden layers.
        scale_bound: log-scales are ``b * tanh(raw / b)``; ``None`` for unbounded.
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"normal"``, ``"logistic"`` or ``"diag_normal"``.
        seed: seed of the random permutations.
    """
    transform = autoregressive_stack(
        dim, layers, hidden, hidden_layers, permutation, residual, partial(AffineMap, scale_bound), context_dim, seed,
        between=partial(BatchNorm, dim) if batch_norm else None,
    )
    return Flow(transform, make_base(base, (dim,)), context_dim=context_dim)
