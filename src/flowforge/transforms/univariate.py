"""Element-wise bijections ``y = h(x; params)`` plugged into coupling and
autoregressive layers (one coupling class, many element-wise maps).

Each map has ``n_params`` parameter tensors per transformed coordinate,
passed stacked as ``params`` of shape ``(batch, n_params, *shape)``.
``forward`` is the normalizing direction; both directions return the
element-wise ``log|dh/dx|`` (resp. its inverse) of shape ``(batch, *shape)``,
which the layer sums.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UnivariateMap", "AffineMap", "AdditiveMap"]


class UnivariateMap(nn.Module):
    """Base class: a parameterized element-wise bijection."""

    n_params: int = 0

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class AffineMap(UnivariateMap):
    """``y = x * exp(s) + t`` with ``s = b * tanh(raw / b)`` (soft clamp to ``|s| < b``).

    ``scale_bound=1`` is Real NVP's ``tanh`` scale; ``None`` leaves ``s`` unbounded.
    ``log|dy/dx| = s``.

    Args:
        scale_bound: bound ``b`` on the log-scale, or ``None``.
    """

    n_params = 2

    def __init__(self, scale_bound: float | None = 1.0):
        super().__init__()
        if scale_bound is not None and scale_bound <= 0:
            raise ValueError(f"scale_bound must be positive or None, got {scale_bound}")
        self.scale_bound = scale_bound

    def log_scale(self, raw: Tensor) -> Tensor:
        b = self.scale_bound
        if b is None:
            return raw
        if b == 1.0:
            return torch.tanh(raw)
        return b * torch.tanh(raw / b)

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(params[:, 0])
        return torch.addcmul(params[:, 1], x, torch.exp(s)), s

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(params[:, 0])
        return (y - params[:, 1]) * torch.exp(-s), -s

    def extra_repr(self) -> str:
        return f"scale_bound={self.scale_bound}"


class AdditiveMap(UnivariateMap):
    """NICE's additive map ``y = x + t``; ``log|dy/dx| = 0``."""

    n_params = 1

    def forward(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return x + params[:, 0], torch.zeros_like(x)

    def inverse(self, y: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return y - params[:, 0], torch.zeros_like(y)
