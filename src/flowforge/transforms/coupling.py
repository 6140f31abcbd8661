"""Coupling layers (NICE, Real NVP, Glow).

Notation: ``mask`` marks the transformed coordinates ``b``; the others ``a``
pass through and condition the map::

    z_a = x_a,    z_b = h(x_b; theta(x_a, context)),    log|det| = sum_b log|h'(x_b)|

``h`` is a pluggable element-wise bijection (:mod:`flowforge.transforms.univariate`):
affine gives Real NVP / Glow, additive gives NICE.

Two ways to feed the conditioner, chosen from the mask when the layer is built:

* split form, when the mask selects whole entries of dimension 1 (vector
  coordinates, or whole channels of an image): the conditioner sees only
  ``x_a`` (``(B, D_a)`` or ``(B, C_a, H, W)``) and outputs ``n_params * D_b``
  features (channels); this is the cheap form.
* masked form (spatial checkerboard): the conditioner sees ``x * (1 - mask)``
  with all ``C`` channels and outputs ``n_params * C`` channels; parameters are
  zeroed outside the mask so that ``h`` is the identity there.

References:
    Dinh et al., "NICE", arXiv:1410.8516; "Density estimation using Real NVP",
    arXiv:1605.08803; Kingma & Dhariwal, "Glow", arXiv:1807.03039.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .base import Transform
from .univariate import UnivariateMap

__all__ = ["Coupling", "ConditionerFactory"]

#: ``(in_features, out_features) -> nn.Module``; for images the numbers are channels.
ConditionerFactory = Callable[[int, int], nn.Module]


class Coupling(Transform):
    """Coupling layer with a binary mask and a pluggable element-wise map.

    Args:
        mask: bool tensor of the event shape, True where coordinates are transformed.
        conditioner: factory ``(in_features, out_features) -> nn.Module``.
        univariate: the element-wise bijection (e.g. ``AffineMap()``).
        context_dim: width of the context vector, 0 for none. For images the
            context is broadcast to constant feature maps.

    Shapes:
        x: ``(B, *mask.shape)``; context: ``(B, context_dim)``.
    """

    def __init__(
        self,
        mask: Tensor,
        conditioner: ConditionerFactory,
        univariate: UnivariateMap,
        context_dim: int = 0,
    ):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.ndim not in (1, 3):
            raise ValueError(f"mask must have shape (D,) or (C, H, W), got {tuple(mask.shape)}")
        if mask.all() or not mask.any():
            raise ValueError("mask must transform some coordinates and keep others")
        self.event_shape = tuple(mask.shape)
        self.univariate = univariate
        self.context_dim = int(context_dim)
        per_entry = mask.reshape(mask.shape[0], -1)
        self.split = bool((per_entry == per_entry[:, :1]).all())
        n = univariate.n_params
        if self.split:
            transformed = per_entry[:, 0]
            idx_b = torch.nonzero(transformed).flatten()
            idx_a = torch.nonzero(~transformed).flatten()
            self.register_buffer("idx_a", idx_a, persistent=False)
            self.register_buffer("idx_b", idx_b, persistent=False)
            self.register_buffer("merge_index", torch.argsort(torch.cat([idx_a, idx_b])), persistent=False)
            # two contiguous blocks (channel masks): split and concatenate instead of gathering
            # (cheaper, and torch 2.13's inductor CPU code for the gathers' backward lost the input
            # gradient of a spline coupling after an ActNorm and a 1x1 convolution)
            kept_first = bool((idx_a == torch.arange(len(idx_a))).all())
            self.blocks = "kept first" if kept_first else "transformed first" if idx_b[-1] < idx_a[0] else None
            self.net = conditioner(len(idx_a) + self.context_dim, n * len(idx_b))
        else:
            self.register_buffer("mask", mask, persistent=False)
            self.net = conditioner(mask.shape[0] + self.context_dim, n * mask.shape[0])

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != self.event_shape:
            raise ValueError(f"coupling built for event shape {self.event_shape}, got {tuple(event_shape)}")
        return self.event_shape

    inverse_shape = output_shape

    def _params(self, x_a: Tensor, context: Tensor | None, n_out: int) -> Tensor:
        h = x_a
        if self.context_dim:
            if context is None:
                raise ValueError(f"this coupling needs a context of width {self.context_dim}, got none")
            if context.shape != (x_a.shape[0], self.context_dim):
                raise ValueError(
                    f"context must have shape ({x_a.shape[0]}, {self.context_dim}), got {tuple(context.shape)}"
                )
            if x_a.ndim == 4:
                context = context[:, :, None, None].expand(-1, -1, *x_a.shape[2:])
            h = torch.cat([x_a, context], dim=1)
        out = self.net(h)
        return out.view(x_a.shape[0], self.univariate.n_params, n_out, *x_a.shape[2:])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, context, self.univariate.forward)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(z, context, self.univariate.inverse)

    def _couple(self, x: Tensor, context: Tensor | None, h) -> tuple[Tensor, Tensor]:
        if self.split:
            x_a, x_b = self._parts(x)
            y_b, log_abs_det = h(x_b, self._params(x_a, context, len(self.idx_b)))
            y = self._merge(x_a, y_b)
        else:
            mask = self.mask.to(x.dtype)
            params = self._params(x * (1 - mask), context, self.mask.shape[0]) * mask
            y, log_abs_det = h(x, params)
        return y, log_abs_det.flatten(1).sum(1)

    def _parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_a, x_b)``: the kept and the transformed coordinates (channels), in order."""
        na, nb = len(self.idx_a), len(self.idx_b)
        if self.blocks == "kept first":
            return tuple(x.split([na, nb], 1))
        if self.blocks == "transformed first":
            return tuple(reversed(x.split([nb, na], 1)))
        return x.index_select(1, self.idx_a), x.index_select(1, self.idx_b)

    def _merge(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        if self.blocks == "kept first":
            return torch.cat([x_a, y_b], dim=1)
        if self.blocks == "transformed first":
            return torch.cat([y_b, x_a], dim=1)
        return torch.cat([x_a, y_b], dim=1).index_select(1, self.merge_index)

    def extra_repr(self) -> str:
        form = "split" if self.split else "masked"
        return f"event_shape={self.event_shape}, form={form}, context_dim={self.context_dim}"
