"""Base densities by name, for model configs."""
from __future__ import annotations

from ..distributions import BaseDensity, DiagonalNormal, StandardLogistic, StandardNormal

_BASES = {"normal": StandardNormal, "logistic": StandardLogistic, "diag_normal": DiagonalNormal}


def make_base(name: str, event_shape: tuple[int, ...]) -> BaseDensity:
    """``"normal"``, ``"logistic"`` or ``"diag_normal"`` over ``event_shape``."""
    if name not in _BASES:
        raise ValueError(f"unknown base density {name!r}; choose from {sorted(_BASES)}")
    return _BASES[name](event_shape)
