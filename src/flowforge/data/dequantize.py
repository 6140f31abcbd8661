"""Uniform dequantization of discrete data: ``w = v + u``, ``u ~ U[0, 1)^D``.

With unit-width bins, ``E_u[-log p_W(v + u)] >= -log P(v)`` (Jensen), so the
NLL of dequantized data bounds the discrete NLL. This is the only
non-bijective preprocessing step and so stays outside the flow.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dequantize"]


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``x + U[0, 1)`` noise of the same shape, dtype and device."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu" if generator is not None else x.device)
    return x + u.to(x.device)
