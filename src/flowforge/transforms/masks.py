"""Binary masks for coupling layers.

Convention: ``mask[i] is True`` where coordinate ``i`` is *transformed* by the
coupling; the other coordinates pass through unchanged and condition the
transform. Vector masks have shape ``(D,)``; image masks ``(C, H, W)``.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["alternating_mask", "half_mask", "checkerboard_mask", "channel_mask"]


def alternating_mask(dim: int, parity: int) -> Tensor:
    """Coordinates ``j`` with ``j % 2 == parity`` are transformed (``(D,)``)."""
    _check_dim(dim)
    return torch.arange(dim) % 2 == parity % 2


def half_mask(dim: int, second: bool) -> Tensor:
    """The first ``D // 2`` (or, with ``second``, the last ``D - D // 2``) coordinates are transformed."""
    _check_dim(dim)
    first = torch.arange(dim) < dim // 2
    return ~first if second else first


def checkerboard_mask(shape: tuple[int, int, int], parity: int) -> Tensor:
    """Spatial checkerboard on ``(C, H, W)``: pixel ``(h, w)`` is transformed when
    ``(h + w) % 2 == parity``, in every channel."""
    c, h, w = _check_image_shape(shape)
    board = (torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == parity % 2
    return board.expand(c, h, w).clone()


def channel_mask(shape: tuple[int, int, int], second: bool) -> Tensor:
    """Channel-wise mask on ``(C, H, W)``: the first ``C // 2`` channels (or the rest) are transformed."""
    c, h, w = _check_image_shape(shape)
    if c < 2:
        raise ValueError(f"a channel-wise mask needs at least 2 channels, got shape {tuple(shape)}")
    return half_mask(c, second)[:, None, None].expand(c, h, w).clone()


def _check_dim(dim: int) -> None:
    if dim < 2:
        raise ValueError(f"a coupling mask needs at least 2 coordinates, got dim={dim}")


def _check_image_shape(shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"image masks take a (C, H, W) shape, got {tuple(shape)}")
    return tuple(int(s) for s in shape)
