"""Registry of transform cases for the generic contract test.

A case is ``Case(id, factory, sampler, context_dim)``: ``factory()`` builds the
layer (float64), ``sampler(n)`` draws inputs of shape ``(n, *event_shape)``.
Every public Transform class in ``flowforge.transforms.__all__`` must appear in
some case (``test_every_transform_has_a_case``); add yours here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from flowforge.nets import MLP, ParallelMLP
from flowforge.transforms import (
    AdditiveMap,
    AffineMap,
    Compose,
    Coupling,
    Identity,
    Inverse,
    Permutation,
    Standardize,
    alternating_mask,
    half_mask,
)


@dataclass
class Case:
    id: str
    factory: Callable[[], torch.nn.Module]
    sampler: Callable[[int], torch.Tensor]
    context_dim: int = 0
    #: classes this case covers beyond type(factory()) (e.g. the inner class of Inverse)
    covers: tuple[type, ...] = ()


def vectors(dim: int) -> Callable[[int], torch.Tensor]:
    return lambda n: torch.randn(n, dim, dtype=torch.float64)


def _standardize(dim: int) -> Standardize:
    layer = Standardize((dim,))
    layer.fit(torch.randn(50, dim, dtype=torch.float64) * torch.linspace(0.5, 3, dim, dtype=torch.float64) + 1)
    return layer


mlp = partial(MLP, hidden=16, layers=2)
pmlp = partial(ParallelMLP, hidden=16, layers=2, copies=2)

CASES: list[Case] = [
    Case("identity", lambda: Identity(), vectors(3)),
    Case("standardize", lambda: _standardize(4), vectors(4)),
    Case("affine-coupling-alternating", lambda: Coupling(alternating_mask(5, 0), pmlp, AffineMap()), vectors(5)),
    Case("affine-coupling-half-unbounded", lambda: Coupling(half_mask(4, True), mlp, AffineMap(None)), vectors(4)),
    Case("affine-coupling-softclamp", lambda: Coupling(half_mask(3, False), mlp, AffineMap(2.0)), vectors(3)),
    Case("additive-coupling", lambda: Coupling(alternating_mask(4, 1), mlp, AdditiveMap()), vectors(4)),
    Case(
        "affine-coupling-context",
        lambda: Coupling(alternating_mask(4, 0), pmlp, AffineMap(), context_dim=3),
        vectors(4),
        context_dim=3,
    ),
    Case(
        "compose",
        lambda: Compose([Coupling(alternating_mask(3, i), mlp, AffineMap()) for i in range(3)], event_shape=(3,)),
        vectors(3),
    ),
    Case("inverse-coupling", lambda: Inverse(Coupling(alternating_mask(4, 0), mlp, AffineMap())), vectors(4)),
    Case("permutation-reverse", lambda: Permutation.reverse(4), vectors(4)),
    Case(
        "permutation-random-channels",
        lambda: Permutation.random(3, seed=1),
        lambda n: torch.randn(n, 3, 2, 2, dtype=torch.float64),
    ),
]
