"""Inverse Autoregressive Flow (Kingma et al., arXiv:1606.04934) for vectors.

The layers of :mod:`flowforge.models.maf`, each inverted: sampling (and the
log-density of the model's own samples) is one MADE pass per layer, the density
of an outside point takes ``dim`` passes. The usual student of density
distillation (:mod:`flowforge.inference.distill`) and posterior of a VAE.
"""
from __future__ import annotations

from functools import partial

from ..distributions import Flow
from ..transforms import AffineMap
from .bases import make_base
from .maf import autoregressive_stack
from .registry import register

__all__ = ["iaf"]


@register("iaf")
def iaf(
    dim: int = 2,
    layers: int = 5,
    hidden: int = 128,
    hidden_layers: int = 2,
    permutation: str = "reverse",
    residual: bool = False,
    scale_bound: float | None = 0.5,
    context_dim: int = 0,
    base: str = "normal",
    seed: int = 0,
) -> Flow:
    """IAF on ``(B, dim)`` vectors; the options are those of ``maf`` (no batch norm,
    whose statistics would come from the sampling direction)."""
    transform = autoregressive_stack(
        dim, layers, hidden, hidden_layers, permutation, residual, partial(AffineMap, scale_bound), context_dim, seed,
        inverse=True,
    )
    return Flow(transform, make_base(base, (dim,)), context_dim=context_dim)
