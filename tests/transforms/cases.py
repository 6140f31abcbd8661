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

from flowforge.nets import MLP, ConvNet, ParallelMLP, ResNet
from flowforge.transforms import (
    ActNorm,
    AdditiveMap,
    AffineMap,
    BatchNorm,
    Compose,
    Coupling,
    DiagonalScaling,
    Flatten,
    Identity,
    InvConv1x1,
    Inverse,
    Logit,
    Multiscale,
    Permutation,
    Rescale,
    Squeeze,
    Standardize,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
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


mlp = partial(MLP, hidden=16, hidden_layers=2)
pmlp = partial(ParallelMLP, hidden=16, hidden_layers=2, copies=2)

CASES: list[Case] = [
    Case("identity", lambda: Identity(), vectors(3)),
    Case("standardize", lambda: _standardize(4), vectors(4)),
    Case("affine-coupling-alternating", lambda: Coupling(alternating_mask(5, 0), pmlp, AffineMap()), vectors(5)),
    # 2-D data: the conditioner sees one number (ParallelMLP's piecewise path from 64 rows on, checked
    # against these dense products in tests/test_piecewise.py)
    Case(
        "affine-coupling-2d-realnvp",
        lambda: Compose([Coupling(alternating_mask(2, i), pmlp, AffineMap()) for i in range(2)], event_shape=(2,)),
        vectors(2),
    ),
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

# -- image layers (issue 3) ----------------------------------------------------------------


def images(c: int, h: int, w: int) -> Callable[[int], torch.Tensor]:
    return lambda n: torch.randn(n, c, h, w, dtype=torch.float64)


def pixels(levels: int, c: int, h: int, w: int) -> Callable[[int], torch.Tensor]:
    """Dequantized pixels in [0, levels)."""
    return lambda n: torch.rand(n, c, h, w, dtype=torch.float64) * levels


def _batchnorm(channels: int) -> BatchNorm:
    layer = BatchNorm(channels)
    layer.running_mean.copy_(torch.linspace(-0.5, 0.5, channels))
    layer.running_var.copy_(torch.linspace(0.5, 2.0, channels))
    return layer


def _multiscale() -> Multiscale:
    level0 = Compose([Squeeze(), ActNorm(4), InvConv1x1(4), Coupling(channel_mask((4, 1, 2), True), conv, AffineMap())])
    level1 = Coupling(checkerboard_mask((2, 1, 2), 0), conv, AffineMap())
    return Multiscale([level0, level1], (1, 2, 4))


conv = partial(ConvNet, hidden=4)
resnet = partial(ResNet, hidden=4, blocks=1)

CASES += [
    Case("squeeze", lambda: Squeeze(), images(2, 2, 4)),
    Case("flatten", lambda: Flatten((2, 3, 2)), images(2, 3, 2)),
    Case("multiscale", _multiscale, images(1, 2, 4)),
    Case("actnorm-image", lambda: ActNorm(3), images(3, 2, 2)),
    Case("actnorm-vector", lambda: ActNorm(4), vectors(4)),
    Case("batchnorm-image", lambda: _batchnorm(3), images(3, 2, 2)),
    Case("batchnorm-vector", lambda: _batchnorm(4), vectors(4)),
    Case("invconv1x1-lu", lambda: InvConv1x1(3, lu=True), images(3, 2, 2)),
    Case("invconv1x1-plain", lambda: InvConv1x1(3, lu=False), images(3, 2, 2)),
    Case("invconv1x1-lu-vector", lambda: InvConv1x1(5), vectors(5)),
    Case("diagonal-scaling", lambda: DiagonalScaling((5,)), vectors(5)),
    Case("logit-pixels", lambda: Logit(17, alpha=0.05), pixels(17, 1, 3, 3)),
    Case("rescale-pixels", lambda: Rescale(256), pixels(256, 3, 2, 2)),
    Case(
        "coupling-checkerboard-0-resnet",
        lambda: Coupling(checkerboard_mask((2, 2, 3), 0), resnet, AffineMap()),
        images(2, 2, 3),
    ),
    Case(
        "coupling-checkerboard-1-convnet",
        lambda: Coupling(checkerboard_mask((1, 3, 3), 1), conv, AffineMap()),
        images(1, 3, 3),
    ),
    Case(
        "coupling-channel-first-convnet",
        lambda: Coupling(channel_mask((3, 2, 2), False), conv, AffineMap()),
        images(3, 2, 2),
    ),
    Case(
        "coupling-channel-second-additive",
        lambda: Coupling(channel_mask((2, 2, 2), True), resnet, AdditiveMap()),
        images(2, 2, 2),
    ),
    Case(
        "coupling-checkerboard-context",
        lambda: Coupling(checkerboard_mask((1, 2, 4), 0), conv, AffineMap(), context_dim=2),
        images(1, 2, 4),
        context_dim=2,
    ),
]

# -- autoregressive layers (issue 4) --------------------------------------------------------
from flowforge.nets import MADE  # noqa: E402
from flowforge.nets.made import random_order  # noqa: E402
from flowforge.transforms import MaskedAutoregressive  # noqa: E402

made = partial(MADE, hidden=12, hidden_layers=2)

CASES += [
    Case("maf-sequential", lambda: MaskedAutoregressive(5, AffineMap(2.0), made), vectors(5)),
    Case("maf-random-order-residual", lambda: MaskedAutoregressive(
        random_order(6, seed=3), AffineMap(None), partial(MADE, hidden=12, hidden_layers=3, residual=True)),
         vectors(6)),
    Case("maf-additive-one-hidden",
         lambda: MaskedAutoregressive(4, AdditiveMap(), partial(MADE, hidden=8, hidden_layers=1)), vectors(4)),
    Case("maf-context", lambda: MaskedAutoregressive(random_order(4, seed=1), AffineMap(), made, context_dim=3),
         vectors(4), context_dim=3),
    Case("iaf-context", lambda: Inverse(MaskedAutoregressive(5, AffineMap(1.0), made, context_dim=2)),
         vectors(5), context_dim=2),
]

# -- rational-quadratic splines (issue 10) -------------------------------------------------
from flowforge.transforms import RQSplineMap  # noqa: E402

CASES += [
    # tail bound 2: some N(0, 1) inputs fall in the identity tails
    Case("spline-coupling-half", lambda: Coupling(half_mask(5, True), mlp, RQSplineMap(4, 2.0)), vectors(5)),
    Case(
        "spline-coupling-context",
        lambda: Coupling(alternating_mask(4, 0), mlp, RQSplineMap(3, 3.0), context_dim=2),
        vectors(4),
        context_dim=2,
    ),
    Case("spline-coupling-channel-image",
         lambda: Coupling(channel_mask((2, 2, 2), True), conv, RQSplineMap(3, 2.0)), images(2, 2, 2)),
    Case("spline-maf", lambda: MaskedAutoregressive(random_order(4, seed=2), RQSplineMap(5, 2.0), made), vectors(4)),
    Case("spline-iaf-context", lambda: Inverse(MaskedAutoregressive(3, RQSplineMap(2, 3.0), made, context_dim=2)),
         vectors(3), context_dim=2),
]
