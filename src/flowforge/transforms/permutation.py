"""Fixed permutations of dimension 1 (vector coordinates or image channels).

``z[:, i] = x[:, perm[i]]``; a permutation matrix has ``|det| = 1``, so the
log-det is exactly zero.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .base import Transform

__all__ = ["Permutation"]


class Permutation(Transform):
    """Reorder dimension 1 by ``perm`` (a permutation of ``0..n-1``).

    Use :meth:`reverse` and :meth:`random` for the usual choices.

    Shapes: ``(B, n, ...) -> (B, n, ...)``.
    """

    def __init__(self, perm: Sequence[int] | Tensor):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long).flatten()
        n = perm.numel()
        if n == 0 or not torch.equal(torch.sort(perm).values, torch.arange(n)):
            raise ValueError(f"not a permutation of 0..{n - 1}: {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    @classmethod
    def reverse(cls, n: int) -> Permutation:
        """``perm = [n-1, ..., 0]``."""
        return cls(torch.arange(n - 1, -1, -1))

    @classmethod
    def random(cls, n: int, seed: int = 0) -> Permutation:
        """A random permutation drawn from a fixed ``seed`` (reproducible from a config)."""
        return cls(torch.randperm(n, generator=torch.Generator().manual_seed(seed)))

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if event_shape[0] != self.perm.numel():
            raise ValueError(f"permutation of {self.perm.numel()} entries got event shape {tuple(event_shape)}")
        return tuple(event_shape)

    inverse_shape = output_shape

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.index_select(1, self.perm), x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z.index_select(1, self.inverse_perm), z.new_zeros(z.shape[0])

    def extra_repr(self) -> str:
        return f"n={self.perm.numel()}"
