"""Bijections. Every public Transform here is covered by the generic test kit
(``tests/transforms/cases.py``); a new layer that is not registered there fails
the completeness test."""
from .autoregressive import MaskedAutoregressive
from .base import Compose, Identity, Inverse, Transform
from .coupling import Coupling
from .elementwise import DiagonalScaling, Logit, Rescale, Standardize
from .linear import InvConv1x1
from .masks import alternating_mask, channel_mask, checkerboard_mask, half_mask
from .normalization import ActNorm, BatchNorm
from .permutation import Permutation
from .reshape import Flatten, Multiscale, Squeeze
from .splines import RQSplineMap, rational_quadratic_spline
from .univariate import AdditiveMap, AffineMap, UnivariateMap

__all__ = [
    "ActNorm",
    "AdditiveMap",
    "AffineMap",
    "BatchNorm",
    "Compose",
    "Coupling",
    "DiagonalScaling",
    "Flatten",
    "Identity",
    "InvConv1x1",
    "Inverse",
    "Logit",
    "MaskedAutoregressive",
    "Multiscale",
    "Permutation",
    "RQSplineMap",
    "Rescale",
    "Squeeze",
    "Standardize",
    "Transform",
    "UnivariateMap",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "half_mask",
    "rational_quadratic_spline",
]
