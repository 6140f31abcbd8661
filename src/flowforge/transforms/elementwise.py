"""Element-wise bijections: preprocessing and NICE's scaling layer.

:class:`Standardize` is ``z = (x - mean) / std`` with buffers fitted on the
training split, so that a flow's ``log_prob`` is in the user's data units.
:class:`Rescale` and :class:`Logit` map dequantized pixels ``w in [0, levels)``
(bin width 1) to the space the flow models, with their log-dets, so that
bits/dim come out in the original discrete units. :class:`DiagonalScaling` is
NICE's learned top layer.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import DataError
from .base import Transform

__all__ = ["DiagonalScaling", "Logit", "Rescale", "Standardize"]


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


class DiagonalScaling(Transform):
    """NICE's diagonal scaling layer: ``z = x * exp(s)``, ``log|det| = sum s``.

    Args:
        event_shape: shape of one example; ``s`` (learned, starts at 0) has it.

    References: Dinh et al., "NICE", arXiv:1410.8516, Sec. 3.3.
    """

    def __init__(self, event_shape: Sequence[int]):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(tuple(event_shape)))

    def _log_abs_det(self, x: Tensor) -> Tensor:
        return self.log_scale.sum().expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x * torch.exp(self.log_scale), self._log_abs_det(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z * torch.exp(-self.log_scale), -self._log_abs_det(z)

    def extra_repr(self) -> str:
        return f"event_shape={tuple(self.log_scale.shape)}"


def _check_domain(x: Tensor, lo: float, hi: float, what: str) -> None:
    """Inputs must lie in the open interval ``(lo, hi)`` where the map is a bijection.

    One reduction and one device-to-host copy per call (NaN propagates through min/max).
    Skipped while a graph is traced or exported (``flowforge.export``): a graph cannot
    raise, so there out-of-domain rows give NaN."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    x_lo, x_hi = torch.stack(torch.aminmax(x.detach())).tolist()
    if not (math.isfinite(x_lo) and math.isfinite(x_hi)):
        raise DataError(f"{what}: input contains NaN or infinity")
    if x_lo <= lo or x_hi >= hi:
        raise DataError(
            f"{what}: values must lie in ({lo:.4g}, {hi:.4g}), got values in [{x_lo:.4g}, {x_hi:.4g}]; "
            "check the data's range and the model's levels"
        )


def _check_levels(levels: int) -> int:
    if int(levels) != levels or levels < 2:
        raise ValueError(f"levels must be an integer >= 2 (e.g. 256 for 8-bit images), got {levels}")
    return int(levels)


class Rescale(Transform):
    """Dequantized pixels to ``[-1/2, 1/2)`` (Glow): ``z = w / levels - 1/2``, ``log|det| = -D log(levels)``.

    A bijection of the whole real line: the pixel range is checked where data
    are loaded (:func:`flowforge.data.images.check_images`), not here.

    Args:
        levels: number of discrete pixel values (256 for 8-bit images).
    """

    def __init__(self, levels: int):
        super().__init__()
        self.levels = _check_levels(levels)

    def _log_abs_det(self, x: Tensor) -> Tensor:
        return x.new_full((x.shape[0],), -x[0].numel() * math.log(self.levels))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x / self.levels - 0.5, self._log_abs_det(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return (z + 0.5) * self.levels, -self._log_abs_det(z)

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class Logit(Transform):
    """Real NVP's logit preprocessing of dequantized pixels ``w in [0, levels)``.

    ``s = alpha + (1 - 2 alpha) w / levels``, ``z = log s - log(1 - s)``;
    ``log|dz/dw| = log(1 - 2 alpha) - log(levels) - log s - log(1 - s)`` per pixel.
    ``alpha`` keeps ``z`` finite at the ends of the range. ``forward`` refuses
    values outside its domain ``s in (0, 1)``, i.e. ``w`` in
    ``(-alpha L / (1 - 2 alpha), (1 - alpha) L / (1 - 2 alpha))`` (a little wider
    than ``[0, L]``, so every latent maps back into it).

    Args:
        levels: number of discrete pixel values (256 for 8-bit images).
        alpha: margin in ``(0, 1/2)``; Real NVP uses 0.05.

    References: Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, Sec. 4.1.
    """

    def __init__(self, levels: int, alpha: float = 0.05):
        super().__init__()
        self.levels = _check_levels(levels)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.alpha = float(alpha)
        self._log_slope = math.log(1 - 2 * self.alpha) - math.log(self.levels)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        margin = self.alpha * self.levels / (1 - 2 * self.alpha)
        _check_domain(x, -margin, self.levels + margin, "logit preprocessing")
        s = self.alpha + (1 - 2 * self.alpha) / self.levels * x
        log_s, log_1ms = torch.log(s), torch.log1p(-s)
        return log_s - log_1ms, (self._log_slope - log_s - log_1ms).flatten(1).sum(1)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # log s = -softplus(-z), log(1 - s) = -softplus(z)
        log_abs_det = -(F.softplus(-z) + F.softplus(z) + self._log_slope).flatten(1).sum(1)
        return (torch.sigmoid(z) - self.alpha) * (self.levels / (1 - 2 * self.alpha)), log_abs_det

    def extra_repr(self) -> str:
        return f"levels={self.levels}, alpha={self.alpha}"
