"""Honest likelihood numbers, from one formula.

Vectors: NLL in nats per example. Quantized data (images): the data units are
the discrete levels themselves (bins of width 1), the flow's ``log_prob``
already includes every preprocessing log-det, so after uniform dequantization

    bits/dim = E_u[-log p(v + u)] / (D ln 2)   >=   -log2 P(v) / D

is an upper bound on the discrete code length.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data import Dataset
from ..distributions import Flow
from ..mode import in_mode
from .model_input import model_input

__all__ = ["bits_per_dim", "evaluate_nll"]


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """``nll / (dims ln 2)``: nats per example to bits per dimension."""
    return nll_nats / (dims * math.log(2.0))


@torch.no_grad()
def evaluate_nll(
    flow: Flow,
    x: Tensor,
    dataset: Dataset | None = None,
    context: Tensor | None = None,
    batch_size: int = 8192,
    noise_draws: int = 1,
    seed: int = 1234,
) -> dict:
    """Mean negative log-likelihood of ``x`` under ``flow``.

    Args:
        x: ``(N, *shape)`` data in original units.
        dataset: supplies ``levels`` (quantized data are dequantized with
            ``noise_draws`` fixed-seed uniform draws and bits/dim reported).
        context: ``(N, context_dim)`` or None.

    Returns:
        ``{"nll": nats per example, "bits_per_dim": float or None, "n": N}``.
    """
    levels = dataset.levels if dataset is not None else None
    gen = torch.Generator().manual_seed(seed)
    total, n = 0.0, x.shape[0]
    draws = noise_draws if levels else 1
    with in_mode(flow, training=False):
        for _ in range(draws):
            for i in range(0, n, batch_size):
                xb = model_input(flow, x[i : i + batch_size], levels, gen)
                cb = None if context is None else context[i : i + batch_size].to(xb)
                total += float(-flow.log_prob(xb, cb).double().sum())
    nll = total / (n * draws)
    dims = x[0].numel()
    return {"nll": nll, "bits_per_dim": bits_per_dim(nll, dims) if levels else None, "n": int(n)}
