"""Inpainting with a trained flow by projected gradient ascent on ``log p`` (NICE, Sec. 5.2).

The known pixels ``x_O`` are clamped; the unknown ones ``x_H`` start from
uniform noise and follow (in units where the pixel range is ``[0, 1]``)

    x_H <- proj( x_H + a_i (g / rms(g) + eps) ),   g = d log p(x_O, x_H) / d x_H,   eps ~ N(0, I) * noise,
    a_i = step_size * (100 / (100 + i)) ** 0.25,

where ``proj`` clips to the pixel range. NICE's schedule, with one change:
the gradient is divided by its root mean square over each image's unknown
pixels, so ``step_size`` is the typical pixel change per step whatever the
model's scale (a trained Glow's raw gradients reach 1e4 and would throw every
pixel to the ends of the range). ``noise=0`` is plain (normalized) ascent.

References:
    Dinh, Krueger & Bengio, "NICE: Non-linear independent components
    estimation", arXiv:1410.8516, Sec. 5.2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..distributions import Flow
from ..errors import ConfigError, DataError
from ..mode import in_mode

__all__ = ["MASKS", "InpaintResult", "inpaint", "inpainting_mask"]

MASKS = ("bottom", "top", "left", "right", "centre", "random")


def inpainting_mask(shape: tuple[int, ...], kind: str = "bottom", seed: int = 0) -> Tensor:
    """A bool ``(C, H, W)`` mask, True where pixels are KNOWN.

    ``kind``: ``"bottom"`` (the bottom half is missing), ``"top"``, ``"left"``,
    ``"right"``, ``"centre"`` (a central square of half the size is missing),
    or ``"random"`` (each pixel missing with probability 1/2, seeded).
    """
    if len(shape) != 3:
        raise ConfigError(f"inpainting masks are for (C, H, W) images, got shape {tuple(shape)}")
    c, h, w = shape
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    centre_rows = (rows >= h // 4) & (rows < h // 4 + max(h // 2, 1))
    centre_cols = (cols >= w // 4) & (cols < w // 4 + max(w // 2, 1))
    missing = {
        "bottom": rows >= h // 2,
        "top": rows < h - h // 2,
        "left": cols < w - w // 2,
        "right": cols >= w // 2,
        "centre": centre_rows & centre_cols,
    }
    if kind == "random":
        hole = torch.rand(h, w, generator=torch.Generator().manual_seed(seed)) < 0.5
    elif kind in missing:
        hole = missing[kind]
    else:
        raise ConfigError(f"unknown mask {kind!r}; choose from {', '.join(MASKS)}")
    return (~hole).expand(c, h, w).clone()


@dataclass
class InpaintResult:
    """Completed images and their log-densities (nats) before and after the ascent.

    Attributes:
        start: the masked images with the noise they started from, ``(B, C, H, W)``.
        images: the completed images, ``(B, C, H, W)``.
        log_prob_start, log_prob_end: ``log p`` of ``start`` and ``images``, ``(B,)``.
        trace: mean ``log p`` over the batch every ``trace_every`` steps.
    """

    start: Tensor
    images: Tensor
    log_prob_start: Tensor
    log_prob_end: Tensor
    trace: list[float]


def inpaint(
    flow: Flow,
    x: Tensor,
    known: Tensor,
    low: float,
    high: float,
    steps: int = 500,
    step_size: float = 0.01,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
    trace_every: int = 10,
) -> InpaintResult:
    """Fill the unknown pixels of ``x`` by projected stochastic gradient ascent on ``flow.log_prob``.

    Args:
        flow: a trained flow over images of ``x``'s shape.
        x: ``(B, C, H, W)`` images in the flow's data units (e.g. dequantized
            pixel levels); the values where ``known`` is False are ignored.
        known: bool, broadcastable to ``x``: True where pixels are observed.
        low, high: the pixel range (``0`` and ``levels`` for quantized images).
        steps, step_size, noise: the NICE schedule (see the module docstring).
        generator: RNG of the start noise and of ``eps``.
        trace_every: record the mean ``log p`` every this many steps.
    """
    if not high > low:
        raise ConfigError(f"pixel range must have high > low, got [{low}, {high}]")
    if steps < 0 or step_size <= 0 or noise < 0:
        raise ConfigError(f"need steps >= 0, step_size > 0, noise >= 0; got {steps}, {step_size}, {noise}")
    known = torch.as_tensor(known, dtype=torch.bool, device=x.device).expand_as(x)
    if not torch.isfinite(x[known]).all() or (x[known] < low).any() or (x[known] > high).any():
        raise DataError(f"known pixel values must be finite and lie in [{low}, {high}]")
    span = high - low
    n_unknown = (~known).flatten(1).sum(1).clamp_min(1).to(x.dtype)
    # work in units where the pixel range is [0, 1]; the top is kept open (a Logit's domain is [0, levels])
    top = 1.0 - 1e-6
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device) * top

    def image(u: Tensor) -> Tensor:
        return torch.where(known, x, low + span * u)

    with in_mode(flow, training=False):
        with torch.no_grad():
            start = image(u)
            log_prob_start = flow.log_prob(start)
        trace = [float(log_prob_start.mean())]
        for i in range(steps):
            u = u.detach().requires_grad_(True)
            lp = flow.log_prob(image(u))
            (grad,) = torch.autograd.grad(lp.sum(), u)
            grad = torch.where(known, 0.0, grad)
            rms = grad.flatten(1).square().sum(1).div(n_unknown).sqrt().clamp_min(1e-12)
            grad = grad / rms.view(-1, *[1] * (grad.ndim - 1))
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device) * noise
            alpha = step_size * (100.0 / (100.0 + i)) ** 0.25
            with torch.no_grad():
                u = (u + alpha * (grad + eps)).clamp(0.0, top)
            if (i + 1) % trace_every == 0:
                trace.append(float(lp.detach().mean()))
        with torch.no_grad():
            images = image(u.detach())
            log_prob_end = flow.log_prob(images)
    return InpaintResult(start, images, log_prob_start, log_prob_end, trace)
