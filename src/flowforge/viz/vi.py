"""Pictures for variational inference: a 2-D target next to the flow fitted to
it, and a VAE's reconstructions and samples (matplotlib, PNG files)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..distributions import Flow
from .plots import _save, density_grid, plt

__all__ = ["plot_target_vs_flow", "plot_vae"]


def plot_target_vs_flow(target, flow: Flow, path: str | Path, resolution: int = 200) -> Path:
    """Heat maps of the normalized target ``p~ / Z`` and the flow density ``q`` on the target's box.

    ``Z`` is the target's ``log_z`` when known, else the grid's own Riemann sum.
    Both panels share one colour scale.

    Args:
        target: a 2-D :class:`~flowforge.inference.targets.Target` (``log_prob``, ``bounds``, ``log_z``).
        flow: the fitted flow, event shape ``(2,)``.
    """
    if tuple(flow.event_shape) != (2,) or getattr(target, "dim", 2) != 2:
        raise ValueError(f"pictures need a 2-D target and flow; the flow's events are {tuple(flow.event_shape)}")
    xlim, ylim = getattr(target, "bounds", ((-4.0, 4.0), (-4.0, 4.0)))
    xs, ys, log_q = density_grid(flow, xlim, ylim, resolution)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float64)
    with torch.no_grad():
        log_p = target.log_prob(pts).reshape(resolution, resolution).numpy()
    log_z = target.log_z
    if log_z is None:
        cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
        log_z = float(torch.logsumexp(torch.as_tensor(log_p).flatten(), 0)) + math.log(cell)
    p, q = np.exp(log_p - log_z), np.exp(log_q)
    vmax = max(p.max(), q.max())
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
    for ax, values, title in ((axes[0], p, f"target {target.name}"), (axes[1], q, "flow")):
        ax.pcolormesh(xs, ys, values, shading="auto", cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="box")
    return _save(fig, path)


def _tile(images: Tensor, cols: int) -> np.ndarray:
    """``(N, H, W)`` -> one ``(rows * (H + 1), cols * (W + 1))`` array, a 1-pixel gap between tiles."""
    n, h, w = images.shape
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, img in enumerate(images.cpu().numpy()):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    return canvas


def plot_vae(data: Tensor, reconstructions: Tensor, samples: Tensor, path: str | Path, levels: int,
             image_shape: tuple[int, int] = (8, 8)) -> Path:
    """Test images above their reconstructions, and samples from the prior, in pixel units ``[0, levels - 1]``.

    Shapes: data and reconstructions ``(N, ...)``, samples ``(M, ...)``, each image with
    ``prod(image_shape)`` pixels.
    """
    cols = min(len(data), 10)
    pairs = torch.cat([data[:cols], reconstructions[:cols]]).reshape(-1, *image_shape)
    rows = math.ceil(len(samples) / cols)
    fig, axes = plt.subplots(2, 1, figsize=(0.6 * cols, 0.6 * (rows + 2) + 0.8),
                             gridspec_kw={"height_ratios": [2, rows]})
    for ax, images, title in ((axes[0], pairs, "test images (top) and reconstructions (bottom)"),
                              (axes[1], samples.reshape(-1, *image_shape), "samples")):
        ax.imshow(_tile(images.detach().double(), cols), cmap="gray_r", vmin=0, vmax=levels - 1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return _save(fig, path)
