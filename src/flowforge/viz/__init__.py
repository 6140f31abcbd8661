"""Plots (matplotlib only here)."""
from .plots import density_grid, plot_data_vs_samples, plot_density, plot_latent_space, plot_loss_curves

__all__ = ["density_grid", "plot_data_vs_samples", "plot_density", "plot_latent_space", "plot_loss_curves"]
