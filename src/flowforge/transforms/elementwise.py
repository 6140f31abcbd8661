"""Fixed element-wise bijections used for preprocessing.

:class:`Standardize` is ``z = (x - mean) / std`` with buffers fitted on the
training split, so that a flow's ``log_prob`` is in the user's data units.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Transform

__all__ = ["Standardize"]


class Standardize(Transform):
    """``z = (x - mean) / std`` per coordinate; ``log|det| = -sum log std``.

    Args:
        event_shape: the shape of one example; ``mean`` and ``std`` have it.

    The statistics are buffers (saved in checkpoints); :meth:`fit` sets them.
    """

    def __init__(self, event_shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("mean", torch.zeros(event_shape))
        self.register_buffer("std", torch.ones(event_shape))

    @torch.no_grad()
    def fit(self, x: Tensor, min_std: float = 1e-8) -> Standardize:
        """Set ``mean`` and ``std`` from data ``x`` of shape ``(N, *event_shape)``.

        A constant coordinate gets std 1 (it would otherwise make the map singular).
        """
        if x.shape[0] < 2:
            raise ValueError(f"standardization needs at least 2 examples, got {x.shape[0]}")
        std = x.std(0)
        self.mean.copy_(x.mean(0))
        self.std.copy_(torch.where(std > min_std, std, torch.ones_like(std)))
        return self

    def _log_abs_det(self, x: Tensor) -> Tensor:
        return (-self.std.log().sum()).to(x.dtype).expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return (x - self.mean) / self.std, self._log_abs_det(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z * self.std + self.mean, -self._log_abs_det(z)
