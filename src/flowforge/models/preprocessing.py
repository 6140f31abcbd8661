"""Pixel preprocessing and shape checks shared by the image models.

Dequantized pixels ``w = v + u`` in ``[0, levels)`` are mapped by a fixed
bijection at the front of the flow (the generic ``preprocess`` key of
:func:`~flowforge.models.build`), so ``log_prob`` and bits/dim stay in the
original discrete units:

* ``{"type": "logit", "levels": L, "alpha": 0.05}`` (Real NVP):
  ``logit(alpha + (1 - 2 alpha) w / L)``;
* ``{"type": "rescale", "levels": L}`` (Glow): ``w / L - 1/2``.

Example: ``build("glow", shape=[1, 8, 8], preprocess=[{"type": "logit", "levels": 17}])``.
"""
from __future__ import annotations

from collections.abc import Sequence

from ..transforms import Logit, Rescale
from .registry import register_preprocessing

__all__ = ["image_shape", "check_divisible"]


@register_preprocessing("logit")
def _logit(event_shape: Sequence[int], levels: int, alpha: float = 0.05) -> Logit:
    return Logit(levels, alpha)


@register_preprocessing("rescale")
def _rescale(event_shape: Sequence[int], levels: int) -> Rescale:
    return Rescale(levels)


def image_shape(shape: Sequence[int], model: str) -> tuple[int, int, int]:
    """Validate a ``(C, H, W)`` shape given in a config."""
    if isinstance(shape, int) or len(shape) != 3 or any(int(s) != s or s < 1 for s in shape):
        raise ValueError(f"{model} needs shape=[C, H, W] with positive integers, got {shape!r}")
    return tuple(int(s) for s in shape)


def check_divisible(shape: tuple[int, int, int], squeezes: int, model: str) -> None:
    """Height and width must survive ``squeezes`` halvings; name the shape and a fix otherwise."""
    f = 2**squeezes
    c, h, w = shape
    if h % f or w % f:
        up = lambda n: -(-n // f) * f  # noqa: E731
        raise ValueError(
            f"{model} with this many scales squeezes {squeezes} time(s), so height and width must be "
            f"multiples of {f}; got image shape {shape}. Pad or crop the images to {c}x{up(h)}x{up(w)}, "
            f"or use fewer scales"
        )
