"""Pictures of image flows: sample grids, interpolation strips, attribute
manipulation and inpainting (matplotlib, Agg backend, PNG files).

Images are ``(..., C, H, W)`` tensors in pixel units ``[0, levels)`` (grey
when ``C = 1``, colour when ``C = 3``); values outside are clipped for display.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .plots import _save, plt

__all__ = ["image_grid", "plot_image_grid", "plot_interpolations", "plot_manipulation", "plot_inpainting"]


def image_grid(images: Tensor, levels: int, cols: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images into one array in ``[0, 1]`` with ``gap``-pixel white borders.

    Returns ``(rows * (H + gap) - gap, cols * (W + gap) - gap)`` for grey images
    or the same with a trailing RGB axis for colour ones (row-major order).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pixels = (images.detach().double().cpu().numpy() / (levels - 1)).clip(0.0, 1.0).transpose(0, 2, 3, 1)
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap, c))
    for i, img in enumerate(pixels):
        r, k = divmod(i, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = img
    return canvas[..., 0] if c == 1 else canvas


def _show(ax, grid: np.ndarray, title: str | None = None) -> None:
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")


def _figsize(grid: np.ndarray, scale: float = 0.12, min_side: float = 2.5) -> tuple[float, float]:
    h, w = grid.shape[:2]
    return max(w * scale, min_side), max(h * scale, min_side) + 0.4


def plot_image_grid(
    images: Tensor, path: str | Path, levels: int, cols: int | None = None, title: str | None = None
) -> Path:
    """One grid of ``(N, C, H, W)`` images (e.g. samples at a temperature)."""
    grid = image_grid(images, levels, cols)
    fig, ax = plt.subplots(figsize=_figsize(grid))
    _show(ax, grid, title)
    return _save(fig, path)


def plot_interpolations(strips: Tensor, path: str | Path, levels: int, title: str | None = None) -> Path:
    """One row per pair: ``(B, S, C, H, W)``, endpoints in the first and last columns."""
    b, s = strips.shape[:2]
    grid = image_grid(strips.reshape(b * s, *strips.shape[2:]), levels, cols=s)
    fig, ax = plt.subplots(figsize=_figsize(grid))
    _show(ax, grid, title or "latent interpolation (each row: first and last are test images)")
    return _save(fig, path)


def plot_manipulation(
    images: Tensor, strengths: Sequence[float], path: str | Path, levels: int, title: str | None = None
) -> Path:
    """``(B, S, C, H, W)``: row ``i`` is image ``i`` moved by each strength (one column per strength)."""
    b, s = images.shape[:2]
    if len(strengths) != s:
        raise ValueError(f"{s} columns of images but {len(strengths)} strengths")
    grid = image_grid(images.reshape(b * s, *images.shape[2:]), levels, cols=s)
    fig, ax = plt.subplots(figsize=_figsize(grid))
    _show(ax, grid, title)
    w = images.shape[-1]
    ax.set_xticks([(w + 1) * j + (w - 1) / 2 for j in range(s)], [f"{v:g}" for v in strengths], fontsize=8)
    ax.tick_params(length=0)
    ax.axis("on")
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("strength", fontsize=9)
    return _save(fig, path)


def plot_inpainting(
    original: Tensor,
    start: Tensor,
    result: Tensor,
    path: str | Path,
    levels: int,
    log_prob_start: Tensor | None = None,
    log_prob_end: Tensor | None = None,
) -> Path:
    """Three rows of ``(B, C, H, W)`` images: originals, the masked start, the inpainted result,
    labelled with the mean ``log p`` (nats) before and after when given."""
    n, h = original.shape[0], original.shape[-2]
    rows = ["original", "before", "after"]
    if log_prob_start is not None and log_prob_end is not None:
        rows[1] = f"before\nlog p {float(log_prob_start.mean()):.1f}"
        rows[2] = f"after\nlog p {float(log_prob_end.mean()):.1f}"
    grid = image_grid(torch.cat([original, start, result]), levels, cols=n)
    fig, ax = plt.subplots(figsize=_figsize(grid))
    _show(ax, grid, "inpainting (mean log p in nats)")
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([(h + 1) * i + (h - 1) / 2 for i in range(3)], rows, fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _save(fig, path)
