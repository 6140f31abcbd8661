"""Base densities by name, for model configs."""
from __future__ import annotations

from ..distributions import BaseDensity, DiagonalNormal, GaussianMixture, StandardLogistic, StandardNormal

_BASES = {"normal": StandardNormal, "logistic": StandardLogistic, "diag_normal": DiagonalNormal, "gmm": GaussianMixture}


def make_base(name: str, event_shape: tuple[int, ...], components: int = 1) -> BaseDensity:
    """``"normal"``, ``"logistic"``, ``"diag_normal"`` or ``"gmm"`` (``components`` Gaussians) over ``event_shape``."""
    if name not in _BASES:
        raise ValueError(f"unknown base density {name!r}; choose from {sorted(_BASES)}")
    if name == "gmm":
        return GaussianMixture(event_shape, components)
    return _BASES[name](event_shape)
