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

__all__ = ["bits_per_dim", "evaluate_nll", "as_model_input"]


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """``nll / (dims ln 2)``: nats per example to bits per dimension."""
    return nll_nats / (dims * math.log(2.0))


def as_model_input(flow: Flow, x: Tensor) -> Tensor:
    """Reshape ``x`` to the flow's event shape when only the layout differs
    (a vector model on images flattens them); otherwise a clear error."""
    shape = tuple(flow.event_shape)
    if tuple(x.shape[1:]) == shape:
        return x
    if x[0].numel() == torch.Size(shape).numel():
        return x.reshape(x.shape[0], *shape)
    raise ValueError(
        f"data has examples of shape {tuple(x.shape[1:])} but the model expects {shape}; "
        "was the model trained on other data?"
    )


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
    was_training = flow.training
    flow.eval()
    param = next(flow.parameters(), None)
    device = param.device if param is not None else x.device
    dtype = param.dtype if param is not None else x.dtype
    gen = torch.Generator().manual_seed(seed)
    n = len(x) if max_rows is None else min(len(x), max_rows)
    total, draws = 0.0, noise_draws if noisy else 1
    for _ in range(draws):
        for i in range(0, n, batch_size):
            xb = x[i : min(i + batch_size, n)].to(dtype)
            if noisy:
                xb = dataset.dequantize(xb, gen)
            xb = as_model_input(flow, xb.to(device))
            cb = None if context is None else context[i : min(i + batch_size, n)].to(device=device, dtype=dtype)
            total += float(-flow.log_prob(xb, cb).double().sum())
    flow.train(was_training)
    nll = total / (n * draws)
    dims = x[0].numel()
    resolution = dataset.resolution if dataset is not None else None
    return {
        "nll": nll,
        "bits_per_dim": bits_per_dim(nll, dims) if dataset is not None and dataset.levels else None,
        "discrete_nll_bound": None if resolution is None else nll - sum(math.log(r) for r in resolution if r),
        "n": int(n),
    }
