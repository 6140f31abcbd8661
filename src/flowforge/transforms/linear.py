"""Invertible linear maps of dimension 1: Glow's invertible 1x1 convolution.

The same matrix ``W`` (``C x C``) mixes the channels at every spatial position
(for a vector it is a dense invertible linear layer)::

    z[:, :, p] = W x[:, :, p]            log|det| = n * log|det W|,  n = H * W (1 for vectors)

LU form: ``W = P L (U + diag(s))`` with ``P`` a fixed permutation, ``L`` unit
lower triangular, ``U`` strictly upper triangular; then
``log|det W| = sum log|s|`` costs O(C) instead of O(C^3), and inverting ``W``
needs two triangular solves.

References:
    Kingma & Dhariwal, "Glow: Generative flow with invertible 1x1
    convolutions", arXiv:1807.03039, Sec. 3.2.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Transform

__all__ = ["InvConv1x1"]


class InvConv1x1(Transform):
    """Invertible 1x1 convolution, plain or LU-parameterized, initialized to a random rotation.

    Args:
        channels: ``C``, the size of dimension 1.
        lu: parameterize ``W = P L (U + diag(sign * exp(log_s)))``; ``P`` and
            the signs of ``s`` are fixed buffers. ``False`` learns ``W`` directly
            (log-det by ``slogdet``, inverse by ``inv``).

    Shapes: ``(B, C, *spatial) -> (B, C, *spatial)``: images or vectors.
    """

    def __init__(self, channels: int, lu: bool = True):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels, self.lu = int(channels), bool(lu)
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        if not self.lu:
            self.weight = nn.Parameter(rotation)
            return
        p, lower, upper = torch.linalg.lu(rotation)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.ones(channels, channels).tril(-1))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(upper * self.lower_mask.T)
        self.log_s = nn.Parameter(s.abs().log())

    def _factors(self) -> tuple[Tensor, Tensor]:
        """``(L, U + diag(s))`` of the LU form."""
        eye = torch.eye(self.channels, dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def weight_matrix(self) -> Tensor:
        """The ``C x C`` matrix ``W`` applied in the normalizing direction."""
        if not self.lu:
            return self.weight
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def inverse_matrix(self) -> Tensor:
        """``W^{-1}``; in the LU form ``(U + diag s)^{-1} L^{-1} P^T`` by triangular solves."""
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._factors()
        lower_inv_pt = torch.linalg.solve_triangular(lower, self.perm.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, lower_inv_pt, upper=True)

    def log_abs_det_weight(self) -> Tensor:
        """``log|det W|`` (a scalar)."""
        if self.lu:
            return self.log_s.sum()
        return torch.linalg.slogdet(self.weight).logabsdet

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if not event_shape or event_shape[0] != self.channels:
            raise ValueError(
                f"1x1 convolution built for {self.channels} channels, got event shape {tuple(event_shape)}"
            )
        return tuple(event_shape)

    inverse_shape = output_shape

    def _mix(self, x: Tensor, matrix: Tensor, sign: int) -> tuple[Tensor, Tensor]:
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"1x1 convolution expects (batch, {self.channels}, ...) inputs, got shape {tuple(x.shape)}"
            )
        if x.ndim == 4:
            y = F.conv2d(x, matrix[:, :, None, None])
        elif x.ndim == 2:
            y = x @ matrix.T
        else:
            y = torch.einsum("ij,bj...->bi...", matrix, x)
        log_abs_det = sign * x[0, 0].numel() * self.log_abs_det_weight()
        return y, log_abs_det.expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._mix(x, self.weight_matrix(), 1)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._mix(z, self.inverse_matrix(), -1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lu={self.lu}"
