"""Neural Spline Flows (Durkan et al., arXiv:1906.04032) for vectors.

Rational-quadratic spline layers (:class:`~flowforge.transforms.RQSplineMap`,
identity tails outside ``[-tail_bound, tail_bound]``):

* RQ-NSF (AR), the default: MADE-conditioned autoregressive layers, the order
  changing between layers as in :mod:`flowforge.models.maf` (whose
  :func:`~flowforge.models.maf.autoregressive_stack` builds them).
* RQ-NSF (C), ``coupling=True``: coupling layers on alternating halves (the
  coordinates ``dim // 2 ..`` given the others, then the reverse), each with
  an MLP conditioner.

``mixing="lu"`` puts a learned LU-parameterized linear map
(:class:`~flowforge.transforms.InvConv1x1`) between consecutive spline layers,
as in the NSF paper's tabular models. Every conditioner's last layer starts at
zero, so the flow starts as the identity.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..distributions import Flow
from ..nets import MLP
from ..transforms import Compose, Coupling, InvConv1x1, Permutation, RQSplineMap, Transform, half_mask
from .bases import make_base
from .maf import autoregressive_stack
from .realnvp import _check_positive
from .registry import register

__all__ = ["nsf", "MIXINGS"]

MIXINGS = ("none", "lu")


@register("nsf")
def nsf(
    dim: int = 2,
    layers: int = 5,
    hidden: int = 128,
    hidden_layers: int = 2,
    bins: int = 8,
    tail_bound: float = 5.0,
    coupling: bool = False,
    inverse: bool = False,
    permutation: str = "reverse",
    mixing: str = "none",
    residual: bool = False,
    context_dim: int = 0,
    base: str = "normal",
    components: int = 8,
    seed: int = 0,
) -> Flow:
    """Neural spline flow on ``(B, dim)`` vectors.

    Args:
        dim: data dimension.
        layers: number of spline layers.
        hidden, hidden_layers: conditioner (MADE or MLP) width and number of hidden ReLU layers.
        bins: spline bins ``K >= 2`` (``3K - 1`` parameters per coordinate and layer).
        tail_bound: splines act on ``[-tail_bound, tail_bound]``, identity outside.
        coupling: RQ-NSF (C) coupling layers instead of RQ-NSF (AR) autoregressive ones.
        inverse: the autoregressive layers read backwards, as in IAF: sampling (and the
            density of the flow's own samples) takes one pass per layer, the density of an
            outside point ``dim`` passes; the fast student of ``flowforge distill``.
        permutation: how coordinates move between layers: ``"reverse"`` (reversed
            order; for coupling, alternating halves), ``"random"`` (layer ``i > 0``
            draws a permutation from ``seed + i``), or ``"none"`` (autoregressive only).
        mixing: ``"lu"`` for a learned LU linear layer between spline layers, or ``"none"``.
        residual: residual connections between the MADE's hidden layers (autoregressive only).
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"normal"``, ``"logistic"``, ``"diag_normal"`` or ``"gmm"`` (a learnable
            Gaussian mixture, initialized by EM on the training data when training starts).
        components: mixture components of the ``"gmm"`` base.
        seed: seed of the random permutations.
    """
    spline = partial(RQSplineMap, bins, tail_bound)
    if mixing not in MIXINGS:
        raise ValueError(f"unknown mixing {mixing!r}; choose from {', '.join(MIXINGS)}")
    between = partial(InvConv1x1, dim) if mixing == "lu" else None
    if inverse and coupling:
        raise ValueError("inverse applies to the autoregressive nsf; a coupling layer is fast both ways")
    if not coupling:
        transform = autoregressive_stack(
            dim, layers, hidden, hidden_layers, permutation, residual, spline, context_dim, seed,
            inverse=inverse, between=between,
        )
    else:
        transform = _coupling_stack(dim, layers, hidden, hidden_layers, permutation, residual, spline, context_dim,
                                    seed, between)
    return Flow(transform, make_base(base, (dim,), components), context_dim=context_dim)


def _coupling_stack(
    dim: int,
    layers: int,
    hidden: int,
    hidden_layers: int,
    permutation: str,
    residual: bool,
    spline: Callable[[], RQSplineMap],
    context_dim: int,
    seed: int,
    between: Callable[[], Transform] | None,
) -> Compose:
    """RQ-NSF (C): ``layers`` spline couplings with MLP conditioners."""
    _check_positive(dim=dim, layers=layers, hidden=hidden)
    if not isinstance(hidden_layers, int) or hidden_layers < 0:
        raise ValueError(f"hidden_layers must be a non-negative integer, got {hidden_layers!r}")
    if dim < 2:
        raise ValueError(f"coupling nsf needs dim >= 2 (a coupling must keep some coordinates), got {dim}")
    if residual:
        raise ValueError("residual applies to the autoregressive nsf's MADE, not to coupling=True")
    if permutation not in ("reverse", "random"):
        raise ValueError(f"coupling nsf takes permutation 'reverse' or 'random', got {permutation!r}")
    net = partial(MLP, hidden=hidden, hidden_layers=hidden_layers, zero_init=True)
    stack: list[Transform] = []
    for i in range(layers):
        if i > 0 and between is not None:
            stack.append(between())
        if permutation == "random" and i > 0:
            stack.append(Permutation.random(dim, seed + i))
        # "reverse": the second half, then the first; "random": the second half of a new order
        mask = half_mask(dim, permutation == "random" or i % 2 == 0)
        stack.append(Coupling(mask, net, spline(), context_dim=context_dim))
    return Compose(stack, event_shape=(dim,))
