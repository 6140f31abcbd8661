"""Fully connected conditioners.

:class:`MLP` is one network; :class:`ParallelMLP` is ``k`` independent MLPs of
identical shape on the same input (Real NVP's separate scale and translation
nets), evaluated with batched matrix products so that ``k`` nets cost one
kernel launch per layer.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import piecewise

__all__ = ["MLP", "ParallelMLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    """An activation module by name (``relu``, ``tanh``, ``elu``, ``gelu``, ``silu``)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """``in -> [hidden, act] x layers -> out``.

    Args:
        in_features, out_features: input and output widths.
        hidden: width of each hidden layer.
        layers: number of hidden layers.
        activation: name of the hidden activation.
        zero_init: start the last layer at zero (the coupling starts as the identity).

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: int = 128,
        layers: int = 2,
        activation: str = "relu",
        zero_init: bool = False,
    ):
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), globals()["activation"](activation)]
            width = hidden
        last = nn.Linear(width, out_features)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        super().__init__(*mods, last)


class ParallelMLP(nn.Module):
    """``copies`` independent ReLU MLPs on one input, output concatenated.

    Net ``k`` produces features ``[k * m, (k + 1) * m)`` of the output, with
    ``m = out_features // copies``. Weights use ``nn.Linear``'s default init,
    net by net, so the function class and initial distribution are those of
    ``copies`` separate :class:`MLP` s.

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 128, layers: int = 2, copies: int = 2):
        super().__init__()
        if out_features % copies:
            raise ValueError(f"out_features={out_features} is not divisible by copies={copies}")
        if layers < 1:
            raise ValueError(f"ParallelMLP needs at least one hidden layer, got layers={layers}")
        self.copies, self.out_per_copy = copies, out_features // copies
        widths = [in_features] + [hidden] * layers + [self.out_per_copy]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(copies, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(copies, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1 and len(self.weights) == 3 and piecewise.available(x):
            out = piecewise.mlp(x, self.weights, self.biases)  # exact fused path for a scalar input
        else:
            # (copies, B, width) stays contiguous through every layer: batched GEMMs
            # and the in-place ReLU then run on dense memory.
            h = x.unsqueeze(0).expand(self.copies, *x.shape)
            for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
                h = torch.baddbmm(b, h, w).relu_()
            out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return out.transpose(0, 1).reshape(x.shape[0], -1)  # (copies, B, m) -> (B, copies * m)

    def extra_repr(self) -> str:
        widths = [self.weights[0].shape[1]] + [w.shape[2] for w in self.weights]
        return f"copies={self.copies}, widths={widths}"
