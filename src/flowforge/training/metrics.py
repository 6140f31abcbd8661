"""Honest likelihood numbers, from one formula.

Vectors: NLL in nats per example. Quantized data (images): the data units are
the discrete levels themselves (bins of width 1), the flow's ``log_prob``
already includes every preprocessing log-det, so after uniform dequantization

    bits/dim = E_u[-log p(v + u)] / (D ln 2)   >=   -log2 P(v) / D

is an upper bound on the discrete code length. Tables with grid-recorded
columns (``dataset.resolution``, widths ``r_j``) are dequantized the same way;
their NLL is the density of the dequantized data, and
``nll - sum_j log r_j`` bounds the NLL of the recorded (discrete) values.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..data import SAMPLE_ROWS, Dataset
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
    max_rows: int | None = SAMPLE_ROWS,
) -> dict:
    """Mean negative log-likelihood of ``x`` under ``flow``.

    Args:
        x: ``(N, *shape)`` data in original units: a tensor or rows of a
            file (``DiskRows``), read ``batch_size`` rows at a time.
        dataset: supplies the dequantization (``Dataset.dequantize``: quantized
            data are dequantized with ``noise_draws`` fixed-seed uniform draws;
            bits/dim are reported for pixel levels).
        context: ``(N, context_dim)`` or None.
        max_rows: score the first ``max_rows`` rows only (None: all); splits are
            stored in seeded random order, so these are a random subsample.

    Returns:
        ``{"nll": nats per example, "bits_per_dim": float or None,
        "discrete_nll_bound": float or None (grid-recorded tables), "n": rows scored}``.
    """
    noisy = dataset is not None and dataset.quantized
    gen = torch.Generator().manual_seed(seed)
    n = len(x) if max_rows is None else min(len(x), max_rows)
    total, draws = 0.0, noise_draws if noisy else 1
    with in_mode(flow, training=False):
        for _ in range(draws):
            for i in range(0, n, batch_size):
                xb = model_input(flow, x[i : min(i + batch_size, n)], dataset, gen)
                cb = None if context is None else context[i : min(i + batch_size, n)].to(xb)
                total += float(-flow.log_prob(xb, cb).double().sum())
    nll = total / (n * draws) if n else math.nan  # an empty split (e.g. no test rows) has no score
    dims = math.prod(x.shape[1:])
    resolution = dataset.resolution if dataset is not None else None
    return {
        "nll": nll,
        "bits_per_dim": bits_per_dim(nll, dims) if dataset is not None and dataset.levels else None,
        "discrete_nll_bound": None if resolution is None else nll - sum(math.log(r) for r in resolution if r),
        "n": int(n),
    }
