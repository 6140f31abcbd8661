"""Base densities ``p_Z`` over an event shape.

Each is an ``nn.Module`` (so it moves with ``.to()`` and is saved with the
model) with ``log_prob(z) -> (B,)`` and ``sample(n) -> (n, *event_shape)``.
Device and dtype follow the module (a zero-size buffer tracks them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["BaseDensity", "StandardNormal", "StandardLogistic", "DiagonalNormal"]

_LOG_2PI = math.log(2 * math.pi)


class BaseDensity(nn.Module):
    """A fixed or learnable density over ``event_shape``."""

    def __init__(self, event_shape: Sequence[int]):
        super().__init__()
        self.event_shape = torch.Size(event_shape)
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)

    @property
    def event_dims(self) -> int:
        return len(self.event_shape)

    def _sum_event(self, t: Tensor) -> Tensor:
        return t.flatten(t.ndim - self.event_dims).sum(-1)

    def _check(self, z: Tensor) -> None:
        if tuple(z.shape[z.ndim - self.event_dims :]) != tuple(self.event_shape):
            raise ValueError(
                f"expected events of shape {tuple(self.event_shape)}, got a tensor of shape {tuple(z.shape)}"
            )

    def log_prob(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` samples; ``temperature`` scales the spread (Glow's T)."""
        raise NotImplementedError

    def _shape(self, n: int) -> tuple[int, ...]:
        return (n, *self.event_shape)


class StandardNormal(BaseDensity):
    """``N(0, I)``: ``log p(z) = -|z|^2 / 2 - D log(2 pi) / 2``."""

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        d = self.event_shape.numel()
        return -0.5 * self._sum_event(z * z) - 0.5 * d * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        z = torch.randn(self._shape(n), dtype=self._anchor.dtype, device=self._anchor.device)
        return z * temperature if temperature != 1.0 else z


class StandardLogistic(BaseDensity):
    """Independent standard logistic (NICE): ``log p(z) = -sum softplus(z) + softplus(-z)``."""

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        return -self._sum_event(nn.functional.softplus(z) + nn.functional.softplus(-z))

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        u = torch.rand(self._shape(n), dtype=self._anchor.dtype, device=self._anchor.device)
        tiny = torch.finfo(u.dtype).tiny
        u = u.clamp(tiny, 1 - torch.finfo(u.dtype).eps)
        return (torch.log(u) - torch.log1p(-u)) * temperature


class DiagonalNormal(BaseDensity):
    """``N(mu, diag(sigma^2))`` with learnable ``mu`` and ``log sigma`` (start at ``N(0, I)``)."""

    def __init__(self, event_shape: Sequence[int]):
        super().__init__(event_shape)
        self.loc = nn.Parameter(torch.zeros(self.event_shape))
        self.log_scale = nn.Parameter(torch.zeros(self.event_shape))

    def log_prob(self, z: Tensor) -> Tensor:
        self._check(z)
        u = (z - self.loc) * torch.exp(-self.log_scale)
        return self._sum_event(-0.5 * u * u - self.log_scale) - 0.5 * self.event_shape.numel() * _LOG_2PI

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        eps = torch.randn(self._shape(n), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + temperature * eps * torch.exp(self.log_scale)
