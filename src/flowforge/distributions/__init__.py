"""Base densities and the Flow distribution."""
from .base import BaseDensity, DiagonalNormal, GaussianMixture, StandardLogistic, StandardNormal
from .flow import Flow

__all__ = ["BaseDensity", "DiagonalNormal", "Flow", "GaussianMixture", "StandardLogistic", "StandardNormal"]
