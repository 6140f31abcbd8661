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

#: below this batch size, building the piecewise tables costs more than the dense products
_PIECEWISE_MIN_BATCH = 64

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    """An activation module by name (``relu``, ``tanh``, ``elu``, ``gelu``, ``silu``)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """``in -> [hidden, act] x hidden_layers -> out``.

    Args:
        in_features, out_features: input and output widths.
        hidden: width of each hidden layer.
        hidden_layers: number of hidden layers.
        activation: name of the hidden activation.
        zero_init: start the last layer at zero (the coupling starts as the identity).

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: int = 128,
        hidden_layers: int = 2,
        activation: str = "relu",
        zero_init: bool = False,
    ):
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(hidden_layers):
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

    Built for speed: all weights and biases live in one flat parameter (one
    tensor for the optimizer to update) and layer ``l`` is one batched product
    over the copies. On a scalar input (2-D couplings) with two hidden layers
    and a batch of at least 64, the nets are evaluated exactly piece by piece
    (:mod:`flowforge.nets.piecewise`): one table lookup per sample instead of
    ``B x hidden x hidden`` products.

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 128, hidden_layers: int = 2,
                 copies: int = 2):
        super().__init__()
        if out_features % copies:
            raise ValueError(f"out_features={out_features} is not divisible by copies={copies}")
        if hidden_layers < 1:
            raise ValueError(f"ParallelMLP needs at least one hidden layer, got hidden_layers={hidden_layers}")
        self.copies, self.out_per_copy = copies, out_features // copies
        widths = [in_features] + [hidden] * hidden_layers + [self.out_per_copy]
        #: per layer, the shapes of its weight ``(copies, fan_in, fan_out)`` and bias ``(copies, 1, fan_out)``
        self.shapes = [
            s for i, o in zip(widths[:-1], widths[1:], strict=True) for s in ((copies, i, o), (copies, 1, o))
        ]
        bounds = [1.0 / math.sqrt(i) for i in widths[:-1] for _ in range(2)]
        #: every weight and bias, flat, in the order of ``shapes``
        self.params = nn.Parameter(torch.cat([
            torch.empty(shape).uniform_(-bound, bound).flatten()
            for shape, bound in zip(self.shapes, bounds, strict=True)
        ]))
        self.register_load_state_dict_pre_hook(_pack_layerwise)

    def layers(self) -> list[tuple[Tensor, Tensor]]:
        """``(weight, bias)`` per layer: views into the flat parameter."""
        views = [v.view(s) for v, s in zip(self.params.split([math.prod(s) for s in self.shapes]), self.shapes,
                                           strict=True)]
        return list(zip(views[::2], views[1::2], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != self.params.dtype:
            raise TypeError(f"input dtype {x.dtype} differs from the conditioner's weights' dtype {self.params.dtype};"
                            " convert one of them (e.g. flow.to(x.dtype))")
        layers = self.layers()
        if x.shape[1] == 1 and len(layers) == 3 and x.shape[0] >= _PIECEWISE_MIN_BATCH:
            out = piecewise.mlp(x, *layers[0], *layers[1], *layers[2])  # exact, no (B, hidden) activations
        else:
            # (copies, B, width) stays contiguous through every layer: batched GEMMs
            # and the in-place ReLU then run on dense memory.
            (w, b), *rest = layers
            out = torch.baddbmm(b, x.unsqueeze(0).expand(self.copies, *x.shape), w)
            for w, b in rest:
                out = torch.baddbmm(b, out.relu_(), w)
        return out.transpose(0, 1).reshape(x.shape[0], -1)  # (copies, B, m) -> (B, copies * m)

    def upgrade_state_dict(self, state_dict: dict[str, Tensor], prefix: str = "") -> None:
        """Turn the former per-layer entries (``weights.<l>``, ``biases.<l>``) in ``state_dict`` into ``params``."""
        names = [f"{prefix}{kind}.{i}" for i in range(len(self.shapes) // 2) for kind in ("weights", "biases")]
        if prefix + "params" not in state_dict and all(n in state_dict for n in names):
            state_dict[prefix + "params"] = torch.cat([state_dict.pop(n).flatten() for n in names])

    def extra_repr(self) -> str:
        widths = [self.shapes[0][1]] + [s[2] for s in self.shapes[::2]]
        return f"copies={self.copies}, widths={widths}"


def _pack_layerwise(module: ParallelMLP, state_dict: dict, prefix: str, *args) -> None:
    """``load_state_dict`` pre-hook: accept the former per-layer layout."""
    module.upgrade_state_dict(state_dict, prefix)
