"""Glow (Kingma & Dhariwal, arXiv:1807.03039).

``scales`` levels; each squeezes, then runs ``layers`` flow steps

    ActNorm -> invertible 1x1 convolution -> coupling (affine, additive, or
    rational-quadratic spline as in Neural Spline Flows' image models)

and, except the last, factors out half the channels (Multiscale). With
``split_prior`` the factored half gets Glow's learned conditional prior
``N(mu(h), sigma(h)^2)`` given the kept half ``h``; it is written as one more
affine coupling (``(z - mu) / sigma``), so the base stays a standard normal.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import nn

from ..distributions import Flow
from ..nets import ConvNet
from ..transforms import (
    ActNorm,
    AdditiveMap,
    AffineMap,
    Compose,
    Coupling,
    InvConv1x1,
    Multiscale,
    Permutation,
    RQSplineMap,
    Squeeze,
    Transform,
    channel_mask,
)
from .bases import make_base
from .preprocessing import check_divisible, image_shape
from .realnvp import _check_positive
from .registry import register

__all__ = ["glow", "PERMUTATIONS", "COUPLINGS"]

PERMUTATIONS = ("lu", "conv", "random", "reverse")
COUPLINGS = ("affine", "additive", "spline")


def _zero_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 convolution starting at zero (the split prior starts at N(0, I))."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _mixer(kind: str, channels: int, seed: int) -> Transform:
    if kind == "lu":
        return InvConv1x1(channels, lu=True)
    if kind == "conv":
        return InvConv1x1(channels, lu=False)
    if kind == "random":
        return Permutation.random(channels, seed=seed)
    return Permutation.reverse(channels)


@register("glow")
def glow(
    shape: Sequence[int] = (1, 8, 8),
    scales: int = 2,
    layers: int = 8,
    hidden: int = 128,
    coupling: str = "affine",
    permutation: str = "lu",
    scale_bound: float | None = 2.0,
    bins: int = 8,
    tail_bound: float = 3.0,
    split_prior: bool = True,
    context_dim: int = 0,
    base: str = "normal",
) -> Flow:
    """Glow on ``(B, C, H, W)`` images.

    Args:
        shape: ``[C, H, W]``; ``H`` and ``W`` must be multiples of ``2**scales``.
        scales: number of levels ``L`` (each starts with a squeeze).
        layers: flow steps ``K`` per level (ActNorm, 1x1 convolution, coupling).
        hidden: channels of the coupling networks (conv3x3 -> conv1x1 -> conv3x3).
        coupling: ``"affine"``, ``"additive"`` or ``"spline"`` (rational-quadratic,
            Durkan et al., arXiv:1906.04032).
        permutation: channel mixing before each coupling: ``"lu"`` (LU 1x1
            convolution), ``"conv"`` (plain 1x1 convolution), ``"random"`` or
            ``"reverse"`` (fixed permutations), as in Glow's ablation.
        scale_bound: affine log-scales are ``b * tanh(raw / b)``; ``None`` = unbounded.
        bins, tail_bound: spline coupling: bins on ``[-tail_bound, tail_bound]``, identity outside.
        split_prior: learned conditional prior on each factored half.
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"normal"``, ``"logistic"`` or ``"diag_normal"``.
    """
    shape = image_shape(shape, "glow")
    _check_positive(scales=scales, layers=layers, hidden=hidden)
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; choose from {', '.join(COUPLINGS)}")
    if permutation not in PERMUTATIONS:
        raise ValueError(f"unknown permutation {permutation!r}; choose from {', '.join(PERMUTATIONS)}")
    check_divisible(shape, scales, "glow")
    univariate = {
        "affine": partial(AffineMap, scale_bound),
        "additive": AdditiveMap,
        "spline": partial(RQSplineMap, bins, tail_bound),
    }[coupling]
    net = partial(ConvNet, hidden=hidden, zero_init=True)
    per_scale: list[Transform] = []
    c, h, w = shape
    for i in range(scales):
        c, h, w = 4 * c, h // 2, w // 2
        level: list[Transform] = [Squeeze()]
        for k in range(layers):
            level += [
                ActNorm(c),
                _mixer(permutation, c, seed=1000 * i + k),
                Coupling(channel_mask((c, h, w), second=True), net, univariate(), context_dim=context_dim),
            ]
        if i < scales - 1:
            if split_prior:
                level.append(
                    Coupling(channel_mask((c, h, w), second=True), _zero_conv, AffineMap(scale_bound), context_dim)
                )
            c = c - c // 2
        per_scale.append(Compose(level))
    multiscale = Multiscale(per_scale, shape)
    return Flow(multiscale, make_base(base, (multiscale.dim,)), context_dim=context_dim)
