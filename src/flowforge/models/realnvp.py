"""Real NVP (Dinh et al., arXiv:1605.08803) for vectors.

Defaults are the classic two-moons model: 6 affine couplings with alternating
masks; per layer a scale MLP and a separate translation MLP, each with two
hidden layers of 128 ReLU units, ``tanh`` on the scale; standard normal base.
"""
from __future__ import annotations

from functools import partial

from ..distributions import Flow
from ..nets import MLP, ParallelMLP
from ..transforms import AffineMap, Compose, Coupling, alternating_mask, half_mask
from .bases import make_base
from .realnvp_image import realnvp_image
from .registry import register

__all__ = ["realnvp"]


@register("realnvp")
def realnvp(
    dim: int = 2,
    layers: int = 6,
    hidden: int = 128,
    hidden_layers: int = 2,
    mask: str = "alternating",
    conditioner: str = "separate",
    scale_bound: float | None = 1.0,
    context_dim: int = 0,
    base: str = "normal",
    shape: list[int] | None = None,
    scales: int = 2,
    blocks: int = 2,
    batch_norm: bool = False,
) -> Flow:
    """Real NVP on ``(B, dim)`` vectors, or multiscale Real NVP on images with ``shape``.

    Args:
        dim: data dimension.
        layers: number of affine coupling layers.
        hidden, hidden_layers: conditioner MLP width and number of hidden layers (vectors).
        mask: ``"alternating"`` (coordinate ``j`` transformed in layer ``i`` when
            ``j % 2 == i % 2``) or ``"half"`` (first half, then second half).
        conditioner: ``"separate"`` scale and translation MLPs, or one ``"shared"``
            MLP giving both.
        scale_bound: log-scales are ``b * tanh(raw / b)`` (1 = Real NVP's tanh);
            ``None`` for unbounded.
        context_dim: width of a conditioning vector, 0 for none.
        base: ``"normal"``, ``"logistic"`` or ``"diag_normal"``.
        shape: ``[C, H, W]`` for images: builds the multiscale model of
            :mod:`flowforge.models.realnvp_image`, where ``hidden`` is the
            conditioner ResNets' channels (``dim``, ``layers``, ``hidden_layers``,
            ``mask``, ``conditioner`` do not apply).
        scales, blocks, batch_norm: image options (``blocks``: residual blocks per conditioner ResNet), see
            :func:`~flowforge.models.realnvp_image.realnvp_image`.
    """
    if shape is not None:
        return realnvp_image(
            shape, scales=scales, hidden=hidden, blocks=blocks, batch_norm=batch_norm,
            scale_bound=scale_bound, context_dim=context_dim, base=base,
        )
    _check_positive(dim=dim, layers=layers, hidden=hidden, hidden_hidden_layers=hidden_layers)
    if dim < 2:
        raise ValueError(f"realnvp needs dim >= 2 (a coupling must keep some coordinates), got {dim}")
    masks = {"alternating": lambda i: alternating_mask(dim, i % 2), "half": lambda i: half_mask(dim, i % 2 == 1)}
    nets = {
        "separate": partial(ParallelMLP, hidden=hidden, hidden_layers=hidden_layers, copies=2),
        "shared": partial(MLP, hidden=hidden, hidden_layers=hidden_layers),
    }
    if mask not in masks:
        raise ValueError(f"unknown mask {mask!r}; choose from {sorted(masks)}")
    if conditioner not in nets:
        raise ValueError(f"unknown conditioner {conditioner!r}; choose from {sorted(nets)}")
    couplings = [
        Coupling(masks[mask](i), nets[conditioner], AffineMap(scale_bound), context_dim=context_dim)
        for i in range(layers)
    ]
    return Flow(Compose(couplings, event_shape=(dim,)), make_base(base, (dim,)), context_dim=context_dim)


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
