"""Per-channel normalization layers as bijections (Glow's ActNorm, Real NVP's batch norm).

Both act on dimension 1 (vector features or image channels) and share the
statistics over the batch and every spatial position. With ``n`` spatial
positions per channel (``n = H * W`` for images, 1 for vectors)::

    z = (x - m) * exp(-log_scale)      log|det| = -n * sum_c log_scale_c

References:
    Kingma & Dhariwal, "Glow", arXiv:1807.03039 (ActNorm);
    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, Sec. 3.7;
    Ioffe & Szegedy, "Batch normalization", arXiv:1502.03167.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import Transform

__all__ = ["ActNorm", "BatchNorm"]


def _per_channel(v: Tensor, x: Tensor) -> Tensor:
    """View a ``(C,)`` vector so that it broadcasts over ``x`` of shape ``(B, C, *spatial)``."""
    return v.view(1, -1, *([1] * (x.ndim - 2)))


def _channel_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (biased) variance per channel over the batch and spatial positions."""
    dims = [0, *range(2, x.ndim)]
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    return mean, var


def _spatial(x: Tensor) -> int:
    return x[0, 0].numel()


class _ChannelLayer(Transform):
    def __init__(self, features: int):
        super().__init__()
        if features < 1:
            raise ValueError(f"number of features/channels must be positive, got {features}")
        self.features = int(features)

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if not event_shape or event_shape[0] != self.features:
            raise ValueError(
                f"{type(self).__name__} built for {self.features} channels, got event shape {tuple(event_shape)}"
            )
        return tuple(event_shape)

    inverse_shape = output_shape

    def _check(self, x: Tensor) -> None:
        if x.ndim < 2 or x.shape[1] != self.features:
            raise ValueError(
                f"{type(self).__name__} expects (batch, {self.features}, ...) inputs, got shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"features={self.features}"


class ActNorm(_ChannelLayer):
    """Glow's activation normalization: a per-channel affine map with data-dependent init.

    ``z = (x - loc) * exp(-log_scale)``; :meth:`initialize` sets ``loc`` and
    ``log_scale`` so that ``z`` has zero mean and unit variance per channel on
    the given batch, then sets the ``initialized`` buffer. The flag is saved
    in the state dict, so a loaded or resumed model is never re-initialized.

    Args:
        features: number of channels (images) or features (vectors).

    Shapes: ``(B, C, *spatial) -> (B, C, *spatial)``.
    """

    def __init__(self, features: int):
        super().__init__(features)
        self.loc = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialized", torch.tensor(False))

    @property
    def is_data_dependent(self) -> bool:
        return True

    @torch.no_grad()
    def initialize(self, x: Tensor, context: Tensor | None = None, min_std: float = 1e-6) -> None:
        """Zero mean, unit variance per channel on ``x``; a no-op once ``initialized`` is set."""
        if bool(self.initialized):
            return
        self._check(x)
        mean, var = _channel_stats(x)
        std = var.sqrt()
        self.loc.copy_(mean)
        # a constant channel keeps scale 1 instead of an enormous one
        self.log_scale.copy_(torch.where(std > min_std, std, torch.ones_like(std)).log())
        self.initialized.fill_(True)

    def _log_abs_det(self, x: Tensor) -> Tensor:
        return (-_spatial(x) * self.log_scale.sum()).expand(x.shape[0])

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        z = (x - _per_channel(self.loc, x)) * _per_channel(torch.exp(-self.log_scale), x)
        return z, self._log_abs_det(x)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(z)
        x = z * _per_channel(torch.exp(self.log_scale), z) + _per_channel(self.loc, z)
        return x, -self._log_abs_det(z)


class BatchNorm(_ChannelLayer):
    """Batch normalization as a flow layer (Real NVP).

    ``z = (x - mean) / sqrt(var + eps) * exp(log_gamma) + beta``, with
    ``log|det| = n * sum_c (log_gamma_c - log(var_c + eps) / 2)``.

    In training mode ``mean`` and ``var`` are the batch's statistics (treated
    as constants in the log-det, as in Real NVP) and update the running
    averages; in evaluation mode, and always in :meth:`inverse`, the running
    averages are used, so ``inverse`` undoes the evaluation-mode ``forward``.

    Args:
        features: number of channels (images) or features (vectors).
        momentum: weight of the new batch in the running averages.
        eps: added to the variance.

    Shapes: ``(B, C, *spatial) -> (B, C, *spatial)``.
    """

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__(features)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.momentum, self.eps = float(momentum), float(eps)
        self.log_gamma = nn.Parameter(torch.zeros(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if not self.training:
            return self.running_mean, self.running_var
        mean, var = _channel_stats(x)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(var.detach().to(self.running_var.dtype), self.momentum)
        return mean, var

    def _log_scale(self, var: Tensor) -> Tensor:
        """Per-channel log of the total scale ``exp(log_gamma) / sqrt(var + eps)``."""
        return self.log_gamma - 0.5 * torch.log(var + self.eps)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(x)
        mean, var = self._stats(x)
        log_scale = self._log_scale(var)
        z = (x - _per_channel(mean, x)) * _per_channel(torch.exp(log_scale), x) + _per_channel(self.beta, x)
        return z, (_spatial(x) * log_scale.sum()).expand(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(z)
        log_scale = self._log_scale(self.running_var)
        x = (z - _per_channel(self.beta, z)) * _per_channel(torch.exp(-log_scale), z)
        x = x + _per_channel(self.running_mean, z)
        return x, (-_spatial(z) * log_scale.sum()).expand(z.shape[0])

    def extra_repr(self) -> str:
        return f"features={self.features}, momentum={self.momentum}, eps={self.eps}"
