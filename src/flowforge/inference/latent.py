"""Latent-space operations on a trained flow: interpolation between data
points and attribute manipulation (Glow, Sec. 5.2).

Both encode with ``z = f(x)``, move in latent space and decode with
``x = f^{-1}(z)``; with a multiscale flow the latent holds every factored
scale, so decoding is exact.

* interpolation, ``"linear"``: ``z_t = (1 - t) z_0 + t z_1``; ``"ellipse"``
  (Real NVP, Sec. 5): ``z_t = cos(t pi/2) z_0 + sin(t pi/2) z_1``, which keeps
  the typical norm of Gaussian latents.
* manipulation: ``d = mean(z | class B) - mean(z | class A)`` and
  ``z' = z + s d`` for several strengths ``s``.

References:
    Kingma & Dhariwal, "Glow", arXiv:1807.03039, Sec. 5.2;
    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, Sec. 5.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..distributions import Flow
from ..errors import ConfigError, DataError
from ..mode import in_mode

__all__ = ["INTERPOLATIONS", "interpolate", "attribute_direction", "manipulate"]

INTERPOLATIONS = ("linear", "ellipse")


@torch.no_grad()
def _encode(flow: Flow, x: Tensor, batch_size: int = 1024) -> Tensor:
    with in_mode(flow, training=False):
        return torch.cat([flow.transform(x[i : i + batch_size])[0] for i in range(0, x.shape[0], batch_size)])


@torch.no_grad()
def _decode(flow: Flow, z: Tensor) -> Tensor:
    with in_mode(flow, training=False):
        return flow.transform.inverse(z)[0]


def interpolate(flow: Flow, x0: Tensor, x1: Tensor, steps: int = 8, mode: str = "linear") -> Tensor:
    """Decoded points between ``x0[i]`` and ``x1[i]`` along a latent path.

    Shapes: ``x0, x1: (B, *event)`` -> ``(B, steps, *event)``; the first and
    last columns reconstruct ``x0`` and ``x1``.
    """
    if mode not in INTERPOLATIONS:
        raise ConfigError(f"unknown interpolation {mode!r}; choose from {', '.join(INTERPOLATIONS)}")
    if steps < 2:
        raise ConfigError(f"an interpolation needs steps >= 2, got {steps}")
    if x0.shape != x1.shape:
        raise ConfigError(f"endpoints must have the same shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    z0, z1 = _encode(flow, x0), _encode(flow, x1)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).view(1, steps, *[1] * (z0.ndim - 1))
    z0, z1 = z0.unsqueeze(1), z1.unsqueeze(1)
    if mode == "linear":
        zt = (1 - t) * z0 + t * z1
    else:
        zt = torch.cos(t * math.pi / 2) * z0 + torch.sin(t * math.pi / 2) * z1
    b = x0.shape[0]
    return _decode(flow, zt.reshape(b * steps, *zt.shape[2:])).reshape(b, steps, *x0.shape[1:])


def attribute_direction(flow: Flow, x: Tensor, labels: Tensor, source: int, target: int) -> Tensor:
    """``mean(z | label = target) - mean(z | label = source)`` over ``x`` (Glow's attribute vector).

    Shapes: ``x: (N, *event)``, ``labels: (N,)`` -> one latent ``(*latent_event)``.
    """
    counts = {c: int((labels == c).sum()) for c in (source, target)}
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        present = sorted(set(labels.tolist()))
        raise DataError(f"no examples with label(s) {empty}; labels present: {present}")
    z = _encode(flow, x)
    return z[labels == target].mean(0) - z[labels == source].mean(0)


def manipulate(flow: Flow, x: Tensor, direction: Tensor, strengths: Sequence[float]) -> Tensor:
    """Decode ``f(x) + s * direction`` for each strength ``s``.

    Shapes: ``x: (B, *event)`` -> ``(B, len(strengths), *event)``.
    """
    z = _encode(flow, x)
    s = torch.as_tensor(list(strengths), dtype=z.dtype, device=z.device)
    if s.ndim != 1 or s.numel() == 0:
        raise ConfigError(f"strengths must be a non-empty list of numbers, got {strengths!r}")
    zs = z.unsqueeze(1) + s.view(1, -1, *[1] * (z.ndim - 1)) * direction
    return _decode(flow, zs.reshape(-1, *z.shape[1:])).reshape(x.shape[0], s.numel(), *x.shape[1:])
