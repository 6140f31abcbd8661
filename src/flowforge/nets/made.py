"""MADE: a masked MLP whose output ``i`` depends only on the inputs that come
before ``i`` in a chosen order (plus an optional context every unit may see).

Degrees (notation of the MADE paper): the ``k``-th dimension of the order has
degree ``k + 1``, context entries degree 0; hidden units get degrees in
``[lo, D - 1]``, assigned cyclically (``lo = 0`` when there is a context, so that
the first dimension of the order still sees it, else 1). A weight from a unit of
degree ``a`` to a hidden unit of degree ``b`` exists iff ``a <= b``, to an
output of degree ``b`` iff ``a < b``. Hence ``d out_i / d x_j = 0`` unless ``j``
comes before ``i``: the Jacobian is strictly triangular in the order.

Storage, chosen for speed: only the weights the masks let through are
parameters, packed with the biases into one vector per MADE (about half the
entries of the dense layers). One scatter per call rebuilds the masked dense
weights, so there is no mask multiply, the optimizer updates one tensor of
only the true degrees of freedom, and an update can never break the masks.

References:
    Germain et al., "MADE: Masked Autoencoder for Distribution Estimation",
    arXiv:1502.03509.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .mlp import activation as make_activation

__all__ = ["MADE", "check_order", "random_order"]


def check_order(order: int | Sequence[int] | Tensor) -> Tensor:
    """The order as a long tensor: ``order[k]`` is the ``k``-th dimension generated.

    An int ``D`` means the sequential order ``0..D-1``; anything else must be a
    permutation of ``0..D-1`` (ValueError otherwise).
    """
    if isinstance(order, int):
        if order < 1:
            raise ValueError(f"dimension must be a positive integer, got {order}")
        return torch.arange(order)
    order = torch.as_tensor(order)
    if order.ndim != 1 or order.numel() == 0 or order.dtype.is_floating_point or order.dtype == torch.bool:
        raise ValueError(f"order must be a non-empty 1-D sequence of integers, got {order.tolist()}")
    order = order.long()
    if not torch.equal(torch.sort(order).values, torch.arange(order.numel())):
        raise ValueError(f"order must be a permutation of 0..{order.numel() - 1}, got {order.tolist()}")
    return order


def random_order(dim: int, seed: int = 0) -> Tensor:
    """A random order of ``dim`` dimensions drawn from a fixed ``seed``."""
    return torch.randperm(dim, generator=torch.Generator().manual_seed(seed))


class MADE(nn.Module):
    """Masked MLP ``(x, context) -> params``, autoregressive in ``order``.

    Args:
        order: the dimension ``D`` (sequential order) or a permutation of ``0..D-1``
            listing the dimensions in generation order.
        params_per_dim: outputs per input dimension (2 for a log-scale and a shift).
        context_dim: width of a context vector that every unit may see, 0 for none.
        hidden: width of each hidden layer.
        hidden_layers: number of hidden layers (0 gives a masked linear map).
        residual: pre-activation residual connections ``h + W act(h) + b`` between
            hidden layers (they share degrees, so the skip keeps the masks valid).
        activation: name of the hidden activation.
        zero_init: start the output layer at zero.

    Shapes:
        x: ``(B, D)``; context: ``(B, context_dim)``; output: ``(B, params_per_dim, D)``,
        where ``output[:, p, i]`` depends on ``x[:, j]`` only for ``j`` before ``i``.
    """

    def __init__(
        self,
        order: int | Sequence[int] | Tensor,
        params_per_dim: int = 2,
        context_dim: int = 0,
        hidden: int = 128,
        hidden_layers: int = 2,
        residual: bool = False,
        activation: str = "relu",
        zero_init: bool = False,
    ):
        super().__init__()
        order = check_order(order)
        dim = order.numel()
        for name, value, low in (("params_per_dim", params_per_dim, 1), ("context_dim", context_dim, 0),
                                 ("hidden", hidden, 1), ("hidden_layers", hidden_layers, 0)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if residual and hidden_layers < 2:
            raise ValueError(f"residual connections need at least 2 hidden layers, got hidden_layers={hidden_layers}")
        self.dim, self.params_per_dim, self.context_dim = dim, params_per_dim, context_dim
        self.residual = residual
        self.act = make_activation(activation)
        if not residual and hasattr(self.act, "inplace"):
            self.act.inplace = True  # it only ever sees a fresh GEMM output
        self.register_buffer("order", order, persistent=False)

        degree = torch.empty(dim, dtype=torch.long)
        degree[order] = torch.arange(1, dim + 1)
        deg_in = torch.cat([degree, torch.zeros(context_dim, dtype=torch.long)])
        lo = 0 if context_dim or dim == 1 else 1
        deg_hidden = lo + torch.arange(hidden) % max(dim - lo, 1)
        deg_out = degree.repeat(params_per_dim)  # output p * D + i: parameter p of dimension i
        degrees = [deg_in] + [deg_hidden] * hidden_layers + [deg_out]
        # masks (in, out): the layout addmm(bias, h, W) takes without a transpose
        masks = [d_in[:, None] <= d_out[None, :] for d_in, d_out in zip(degrees[:-2], degrees[1:-1], strict=True)]
        masks.append(degrees[-2][:, None] < degrees[-1][None, :])
        self.shapes = [tuple(m.shape) for m in masks]
        self.sizes = [n for fan_in, fan_out in self.shapes for n in (fan_in * fan_out, fan_out)]
        free = torch.cat([torch.cat([m.flatten(), torch.ones(m.shape[1], dtype=torch.bool)]) for m in masks])
        self.register_buffer("index", torch.nonzero(free).flatten(), persistent=False)
        self.dense_numel = free.numel()
        # nn.Linear's initial distribution, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), on the free entries
        init = torch.cat([torch.empty(m.numel() + m.shape[1]).uniform_(-1, 1) / math.sqrt(m.shape[0]) for m in masks])
        if zero_init:
            init[-(masks[-1].numel() + masks[-1].shape[1]):] = 0
        #: the free weights and the biases of every layer, packed
        self.weight = nn.Parameter(init[free])

    def dense_weights(self) -> list[tuple[Tensor, Tensor]]:
        """``(W, b)`` per layer, ``W`` of shape ``(in, out)`` with zeros where masked."""
        dense = self.weight.new_zeros(self.dense_numel).index_copy_(0, self.index, self.weight)
        chunks = dense.split(self.sizes)
        return [(chunks[2 * i].view(shape), chunks[2 * i + 1]) for i, shape in enumerate(self.shapes)]

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MADE expects inputs of shape (batch, {self.dim}), got {tuple(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"input dtype {x.dtype} differs from the MADE weights' dtype {self.weight.dtype};"
                            " convert one of them (e.g. flow.to(x.dtype))")
        h = x
        if self.context_dim:
            if context is None:
                raise ValueError(f"this autoregressive layer needs a context of width {self.context_dim}, got none")
            if tuple(context.shape) != (x.shape[0], self.context_dim):
                raise ValueError(
                    f"context must have shape ({x.shape[0]}, {self.context_dim}), got {tuple(context.shape)}"
                )
            h = torch.cat([x, context], dim=1)
        (w, b), *rest = self.dense_weights()
        h = torch.addmm(b, h, w)
        for i, (w, b) in enumerate(rest):
            out = torch.addmm(b, self.act(h), w)
            h = h + out if self.residual and i < len(rest) - 1 else out
        return h.view(x.shape[0], self.params_per_dim, self.dim)

    def extra_repr(self) -> str:
        widths = [self.shapes[0][0]] + [fan_out for _, fan_out in self.shapes]
        return f"dim={self.dim}, context_dim={self.context_dim}, widths={widths}, residual={self.residual}"
