"""Reshaping bijections for images: squeeze, flatten and the multiscale split.

All three only move coordinates around, so their log-det is exactly zero;
:class:`Multiscale` adds the log-dets of the levels it wraps.

Multiscale notation (Real NVP, Sec. 3.6)::

    h_0 = x,   (h_{i+1}, z_{i+1}) = split(f_{i+1}(h_i)),   z_L = f_L(h_{L-1}),   z = (z_1, ..., z_L)

Each ``split`` keeps the first half of the channels for the next level and
factors the other half out as latent variables; the factored parts are packed,
flattened, into one latent vector, so the layer keeps the Transform protocol.

References:
    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803;
    Kingma & Dhariwal, "Glow", arXiv:1807.03039.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Transform

__all__ = ["Squeeze", "Flatten", "Multiscale"]


class Squeeze(Transform):
    """Space to channels: each 2x2 block of a channel becomes 4 channels.

    ``z[:, 4c + 2i + j, h, w] = x[:, c, 2h + i, 2w + j]``; ``log|det| = 0``.

    Shapes: ``(B, C, H, W) -> (B, 4C, H/2, W/2)``; ``H`` and ``W`` must be even.
    """

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if len(event_shape) != 3:
            raise ValueError(f"squeeze takes (C, H, W) images, got event shape {tuple(event_shape)}")
        c, h, w = event_shape
        if h % 2 or w % 2:
            raise ValueError(
                f"squeeze needs an even height and width, got image shape {tuple(event_shape)}; "
                f"pad or crop the images to {_even(h)}x{_even(w)}, or use fewer scales"
            )
        return (4 * c, h // 2, w // 2)

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if len(event_shape) != 3 or event_shape[0] % 4:
            raise ValueError(f"unsqueeze needs (4C, H, W) inputs, got event shape {tuple(event_shape)}")
        c, h, w = event_shape
        return (c // 4, 2 * h, 2 * w)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.ndim != 4:
            raise ValueError(f"squeeze takes (batch, C, H, W) images, got shape {tuple(x.shape)}")
        self.output_shape(x.shape[1:])
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.inverse_shape(z.shape[1:])
        return F.pixel_shuffle(z, 2), z.new_zeros(z.shape[0])


def _even(n: int) -> int:
    return n + n % 2


class Flatten(Transform):
    """``z = x.flatten(1)``: an event of ``shape`` becomes a vector (NICE on images); ``log|det| = 0``.

    Shapes: ``(B, *shape) -> (B, prod(shape))``.
    """

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.dim = math.prod(self.shape)

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != self.shape:
            raise ValueError(f"flatten built for event shape {self.shape}, got {tuple(event_shape)}")
        return (self.dim,)

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != (self.dim,):
            raise ValueError(f"unflatten expects vectors of size {self.dim}, got event shape {tuple(event_shape)}")
        return self.shape

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.output_shape(x.shape[1:])
        return x.flatten(1), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self.inverse_shape(z.shape[1:])
        return z.reshape(z.shape[0], *self.shape), z.new_zeros(z.shape[0])

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Multiscale(Transform):
    """Real NVP's multiscale architecture, with every factored latent kept.

    Level ``i`` is a transform on images; after every level but the last, the
    second half of its output channels (``C // 2``) is factored out and the
    first half goes on to level ``i + 1``. The output is all factored parts,
    flattened and concatenated in level order (:meth:`unpack` splits them back).

    Args:
        levels: one transform per scale, each ``(C, H, W) -> (C', H', W')``
            (typically a squeeze and some couplings).
        event_shape: ``(C, H, W)`` of the input; the chain is checked now.

    Shapes: ``(B, C, H, W) -> (B, C * H * W)``; :attr:`latent_shapes` lists
    the shape of each level's factored part.
    """

    def __init__(self, levels: Sequence[Transform], event_shape: Sequence[int]):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        if not self.levels:
            raise ValueError("multiscale needs at least one level")
        self.event_shape = tuple(int(s) for s in event_shape)
        shapes: list[tuple[int, ...]] = []  # factored shape per level
        kept: list[int] = []  # channels passed on per level
        shape = self.event_shape
        for i, level in enumerate(self.levels):
            try:
                shape = tuple(level.output_shape(shape))
            except ValueError as e:
                raise ValueError(f"multiscale level {i} cannot take image shape {shape}: {e}") from e
            if len(shape) != 3:
                raise ValueError(f"multiscale level {i} must output (C, H, W) images, gives {shape}")
            if i == len(self.levels) - 1:
                shapes.append(shape)
                kept.append(0)
                break
            if shape[0] < 2:
                raise ValueError(
                    f"cannot factor out half the channels of level {i}'s output {shape}: it has one channel"
                )
            keep = shape[0] - shape[0] // 2
            shapes.append((shape[0] - keep, *shape[1:]))
            kept.append(keep)
            shape = (keep, *shape[1:])
        self.latent_shapes = shapes
        self.kept_channels = kept
        self.sizes = [math.prod(s) for s in shapes]
        self.dim = sum(self.sizes)
        if self.dim != math.prod(self.event_shape):
            raise ValueError(f"levels change the number of coordinates: {self.event_shape} -> {self.dim}")

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != self.event_shape:
            raise ValueError(f"multiscale flow built for image shape {self.event_shape}, got {tuple(event_shape)}")
        return (self.dim,)

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != (self.dim,):
            raise ValueError(f"multiscale latent has size {self.dim}, got event shape {tuple(event_shape)}")
        return self.event_shape

    def unpack(self, z: Tensor) -> list[Tensor]:
        """Split a latent ``(B, D)`` into the factored parts ``(B, *latent_shapes[i])``, coarsest last."""
        self.inverse_shape(z.shape[1:])
        parts = z.split(self.sizes, dim=1)
        return [part.reshape(z.shape[0], *s) for part, s in zip(parts, self.latent_shapes, strict=True)]

    def pack(self, parts: Sequence[Tensor]) -> Tensor:
        """Inverse of :meth:`unpack`."""
        if len(parts) != len(self.latent_shapes):
            raise ValueError(f"expected {len(self.latent_shapes)} latent parts, got {len(parts)}")
        return torch.cat([p.flatten(1) for p in parts], dim=1)

    def _levels_forward(self, x: Tensor, context: Tensor | None, init: bool) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.event_shape:
            shape = ", ".join(map(str, self.event_shape))
            raise ValueError(f"expected images of shape (batch, {shape}), got {tuple(x.shape)}")
        total = x.new_zeros(x.shape[0])
        parts = []
        for level, keep in zip(self.levels, self.kept_channels, strict=True):
            if init:
                level.initialize(x, context)
            x, log_abs_det = level(x, context)
            total = total + log_abs_det
            if keep:
                parts.append(x[:, keep:])
                x = x[:, :keep]
            else:
                parts.append(x)
        return self.pack(parts), total

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._levels_forward(x, context, init=False)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        parts = self.unpack(z)
        total = z.new_zeros(z.shape[0])
        x = parts[-1]
        for level, part in zip(reversed(self.levels), reversed(parts), strict=True):
            if x is not part:
                x = torch.cat([x, part], dim=1)
            x, log_abs_det = level.inverse(x, context)
            total = total + log_abs_det
        return x, total

    @property
    def is_data_dependent(self) -> bool:
        return any(level.is_data_dependent for level in self.levels)

    def initialize(self, x: Tensor, context: Tensor | None = None) -> None:
        """Initialize each level's data-dependent layers on the data that reaches it."""
        with torch.no_grad():
            self._levels_forward(x, context, init=True)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, latent_shapes={self.latent_shapes}"
