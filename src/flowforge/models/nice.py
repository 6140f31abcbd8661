"""NICE (Dinh, Krueger & Bengio, arXiv:1410.8516).

``layers`` additive couplings on the flattened data with alternating
(odd/even) masks, each with an MLP conditioner whose last layer starts at
zero, then NICE's diagonal scaling layer; logistic base by default. Images are
flattened first (:class:`~flowforge.transforms.Flatten`), so the latent is a
vector of ``C * H * W`` entries.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

from ..distributions import Flow
from ..nets import MLP
from ..transforms import AdditiveMap, Compose, Coupling, DiagonalScaling, Flatten, Transform, alternating_mask
from .bases import make_base
from .realnvp import _check_positive
from .registry import register

__all__ = ["nice"]


@register("nice")
def nice(
    dim: int | None = None,
    shape: Sequence[int] | None = None,
    layers: int = 4,
    hidden: int = 256,
    hidden_layers: int = 4,
    context_dim: int = 0,
    base: str = "logistic",
) -> Flow:
    """NICE on vectors (``dim``) or images (``shape=[C, H, W]``); default ``shape=[1, 8, 8]``.

    Args:
        dim: data dimension of vector data (give ``dim`` or ``shape``, not both).
        shape: event shape of image data; flattened inside the flow.
        layers: number of additive couplings (4 in the paper).
        hidden, hidden_layers: conditioner MLP width and depth (the paper uses
            5 x 1000 on MNIST; the defaults suit small images such as digits).
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"logistic"`` (the paper) or ``"normal"``, ``"diag_normal"``.
    """
    if dim is not None and shape is not None:
        raise ValueError(f"give nice either dim (vectors) or shape (images), not both: dim={dim}, shape={shape}")
    if dim is not None:
        _check_positive(dim=dim)
        shape = (dim,)
    shape = tuple(int(s) for s in (shape if shape is not None else (1, 8, 8)))
    _check_positive(layers=layers, hidden=hidden, hidden_hidden_layers=hidden_layers)
    d = math.prod(shape)
    if d < 2:
        raise ValueError(f"nice needs at least 2 coordinates, got shape {shape}")
    net = partial(MLP, hidden=hidden, hidden_layers=hidden_layers, zero_init=True)
    flatten: list[Transform] = [Flatten(shape)] if len(shape) > 1 else []
    couplings = [
        Coupling(alternating_mask(d, i % 2), net, AdditiveMap(), context_dim=context_dim) for i in range(layers)
    ]
    transform = Compose([*flatten, *couplings, DiagonalScaling((d,))], event_shape=shape)
    return Flow(transform, make_base(base, (d,)), context_dim=context_dim)
