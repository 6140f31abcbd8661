"""Plots (matplotlib only here)."""
from .plots import (
    data_vs_samples_figure,
    density_grid,
    plot_data_vs_samples,
    plot_density,
    plot_latent_space,
    plot_loss_curves,
)

__all__ = [
    "data_vs_samples_figure",
    "density_grid",
    "plot_data_vs_samples",
    "plot_density",
    "plot_latent_space",
    "plot_loss_curves",
]
