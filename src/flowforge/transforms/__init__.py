"""Bijections. Every public Transform here is covered by the generic test kit
(``tests/transforms/cases.py``); a new layer that is not registered there fails
the completeness test."""
from .base import Compose, Identity, Inverse, Transform
from .coupling import Coupling
from .elementwise import Standardize
from .permutation import Permutation
from .masks import alternating_mask, channel_mask, checkerboard_mask, half_mask
from .univariate import AdditiveMap, AffineMap, UnivariateMap

__all__ = [
    "AdditiveMap",
    "AffineMap",
    "Compose",
    "Coupling",
    "Identity",
    "Inverse",
    "Permutation",
    "Standardize",
    "Transform",
    "UnivariateMap",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "half_mask",
]
