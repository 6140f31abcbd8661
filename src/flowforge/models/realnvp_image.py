"""Multiscale Real NVP for images (Dinh et al., arXiv:1605.08803, Sec. 3.6).

Each scale but the last: 3 affine couplings with alternating checkerboard
masks, a squeeze, 3 affine couplings with alternating channel masks, then half
the channels are factored out. The last scale: 4 checkerboard couplings.
Conditioners are small ResNets whose last convolution starts at zero; with
``batch_norm`` every coupling is followed by a batch-normalization layer.

Reached through ``build("realnvp", shape=[C, H, W], ...)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ..distributions import Flow
from ..nets import ResNet
from ..transforms import (
    AffineMap,
    BatchNorm,
    Compose,
    Coupling,
    Multiscale,
    Squeeze,
    Transform,
    channel_mask,
    checkerboard_mask,
)
from .bases import make_base
from .preprocessing import check_divisible, image_shape

__all__ = ["realnvp_image"]


def realnvp_image(
    shape: Sequence[int],
    scales: int = 2,
    hidden: int = 64,
    blocks: int = 2,
    batch_norm: bool = False,
    scale_bound: float | None = 1.0,
    context_dim: int = 0,
    base: str = "normal",
) -> Flow:
    """Real NVP on ``(B, C, H, W)`` images.

    Args:
        shape: ``[C, H, W]``; ``H`` and ``W`` must be multiples of ``2**(scales - 1)``
            and the last scale must keep at least 2 pixels.
        scales: number of scales.
        hidden, blocks: channels and residual blocks of each conditioner.
        batch_norm: a batch-normalization layer after every coupling.
        scale_bound: log-scales are ``b * tanh(raw / b)``; ``None`` = unbounded.
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"normal"``, ``"logistic"`` or ``"diag_normal"``.
    """
    shape = image_shape(shape, "realnvp")
    check_divisible(shape, scales - 1, "realnvp")
    c, h, w = shape
    last_h, last_w = h // 2 ** (scales - 1), w // 2 ** (scales - 1)
    if last_h * last_w < 2:
        raise ValueError(
            f"realnvp with {scales} scales leaves 1x1 images at the last scale for shape {shape}, "
            f"where a checkerboard mask is impossible; use scales <= {scales - 1}"
        )
    net = partial(ResNet, hidden=hidden, blocks=blocks, zero_init=True)

    def couple(mask) -> list[Transform]:
        layer = Coupling(mask, net, AffineMap(scale_bound), context_dim=context_dim)
        return [layer, BatchNorm(mask.shape[0])] if batch_norm else [layer]

    per_scale: list[Transform] = []
    for i in range(scales):
        layers: list[Transform] = []
        last = i == scales - 1
        for j in range(4 if last else 3):
            layers += couple(checkerboard_mask((c, h, w), j % 2))
        if not last:
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for j in range(3):
                layers += couple(channel_mask((c, h, w), second=j % 2 == 1))
            c = c - c // 2
        per_scale.append(Compose(layers))
    multiscale = Multiscale(per_scale, shape)
    return Flow(multiscale, make_base(base, (multiscale.dim,)), context_dim=context_dim)
