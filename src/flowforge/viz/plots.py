"""Pictures of what a flow learned (matplotlib, PNG files; the backend is the user's, the CLI's is Agg).

matplotlib is imported only inside this package.
"""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..distributions import Flow

__all__ = [
    "data_vs_samples_figure",
    "plot_data_vs_samples",
    "plot_density",
    "plot_latent_space",
    "plot_loss_curves",
    "density_grid",
]


def _scatter(ax, x: np.ndarray, title: str, labels: np.ndarray | None = None, color: str = "C0") -> None:
    if labels is not None:
        ax.scatter(x[:, 0], x[:, 1], s=2, c=labels, cmap="tab10", alpha=0.6, linewidths=0)
    else:
        ax.scatter(x[:, 0], x[:, 1], s=2, color=color, alpha=0.5, linewidths=0)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _limits(x: np.ndarray, pad: float = 0.15) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = np.percentile(x[:, :2], 0.5, axis=0), np.percentile(x[:, :2], 99.5, axis=0)
    span = hi - lo
    return (lo[0] - pad * span[0], hi[0] + pad * span[0]), (lo[1] - pad * span[1], hi[1] + pad * span[1])


def data_vs_samples_figure(data: Tensor, samples: Tensor, labels: Tensor | None = None):
    """Training data and model samples side by side (first two coordinates), shared axes; the figure."""
    d, s = data.detach().cpu().numpy(), samples.detach().cpu().numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
    _scatter(axes[0], d, f"data (n={len(d)})", None if labels is None else labels.cpu().numpy())
    _scatter(axes[1], s, f"samples (n={len(s)})", color="C1")
    xlim, ylim = _limits(d)
    axes[0].set_xlim(*xlim)
    axes[0].set_ylim(*ylim)
    fig.tight_layout()
    return fig


def plot_data_vs_samples(data: Tensor, samples: Tensor, path: str | Path, labels: Tensor | None = None) -> Path:
    """:func:`data_vs_samples_figure` saved as a PNG."""
    return _save(data_vs_samples_figure(data, samples, labels), path)


@torch.no_grad()
def density_grid(flow: Flow, xlim, ylim, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p`` of a 2-D flow on a ``resolution^2`` grid; returns ``(xs, ys, log_p)``."""
    p = next(flow.parameters())
    xs = torch.linspace(*xlim, resolution, dtype=p.dtype, device=p.device)
    ys = torch.linspace(*ylim, resolution, dtype=p.dtype, device=p.device)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    pts = torch.stack([gx.flatten(), gy.flatten()], 1)
    log_p = torch.cat([flow.log_prob(pts[i : i + 65536]) for i in range(0, len(pts), 65536)])
    return xs.cpu().numpy(), ys.cpu().numpy(), log_p.reshape(resolution, resolution).cpu().numpy()


def plot_density(flow: Flow, data: Tensor, path: str | Path, resolution: int = 200) -> Path:
    """Heat map of the model density ``p(x)`` over the data's range (2-D flows)."""
    if tuple(flow.event_shape) != (2,):
        raise ValueError(f"density heat maps need a 2-D flow, this one has event shape {tuple(flow.event_shape)}")
    xlim, ylim = _limits(data.cpu().numpy())
    xs, ys, log_p = density_grid(flow, xlim, ylim, resolution)
    fig, ax = plt.subplots(figsize=(5, 4.4))
    mesh = ax.pcolormesh(xs, ys, np.exp(log_p), shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="p(x)")
    ax.set_title("model density")
    ax.set_aspect("equal", adjustable="box")
    return _save(fig, path)


@torch.no_grad()
def plot_latent_space(flow: Flow, data: Tensor, path: str | Path, labels: Tensor | None = None) -> Path:
    """The data mapped to the latent ``z = f(x)`` (coloured by class when labelled),
    next to samples of the base density (first two coordinates)."""
    p = next(flow.parameters())
    z = flow.encode(data.to(p.device, p.dtype)).flatten(1).cpu().numpy()
    base = flow.base.sample(len(z)).flatten(1).cpu().numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
    _scatter(axes[0], z, "data in latent space  z = f(x)", None if labels is None else labels.cpu().numpy())
    _scatter(axes[1], base, "base samples  z ~ p_Z", color="C2")
    lim = max(4.0, float(np.percentile(np.abs(z[:, :2]), 99.5)) * 1.1)
    axes[0].set_xlim(-lim, lim)
    axes[0].set_ylim(-lim, lim)
    return _save(fig, path)


def plot_loss_curves(metrics_csv: str | Path, path: str | Path) -> Path:
    """Training loss and validation NLL against the step, from ``metrics.csv``."""
    with open(metrics_csv) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{metrics_csv}: no rows to plot")
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train_loss", "train loss (mean since last eval)"), ("val_nll", "validation NLL")):
        vals = [float(r[key]) if r[key] else np.nan for r in rows]
        ax.plot(steps, vals, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("nats per example")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)
