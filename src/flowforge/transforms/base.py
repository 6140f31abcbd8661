"""The Transform protocol, composition and inversion.

Notation used throughout the package::

    x  data,  z  latent,  f: x -> z  the normalizing direction,  g = f^{-1}.
    log p_X(x) = log p_Z(f(x)) + log |det df/dx|

Note to implementers (the contract every layer keeps):

* ``forward(x, context=None) -> (z, log_abs_det)``: data -> latent, with
  ``log_abs_det = log |det df/dx|`` of shape ``(batch,)``.
* ``inverse(z, context=None) -> (x, log_abs_det)``: latent -> data, with
  ``log_abs_det = log |det dg/dz|``, so that
  ``inverse(forward(x)[0])[1] == -forward(x)[1]``.
* Inputs are ``(batch, *event_shape)``; ``log_abs_det`` has the input's dtype
  and device and is built with ``x.new_zeros(x.shape[0])``, never a Python 0.
* ``context`` is accepted by every layer, even one that ignores it.
* ``output_shape(event_shape)`` gives the event shape the layer produces, so
  that a :class:`Compose` can check a stack when it is built.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from ..errors import DataError

__all__ = ["Transform", "Compose", "Inverse", "Identity", "check_dtype_device"]


def check_dtype_device(module: nn.Module, x: Tensor, what: str = "input") -> None:
    """A :class:`~flowforge.errors.DataError` naming both sides unless ``x`` has the dtype and
    device of ``module``'s weights (its first parameter; a module without any takes every input).

    Kernels read memory by the input's element size, so a mismatch is refused
    here rather than returning NaN or a dtype error from deep inside a layer.
    """
    ref = next(module.parameters(), None)
    if ref is None:
        return
    # under autocast, activations between layers legitimately carry the autocast dtype
    autocast = torch.is_autocast_enabled(x.device.type) and x.dtype == torch.get_autocast_dtype(x.device.type)
    if (x.dtype != ref.dtype and not autocast) or x.device != ref.device:
        raise DataError(
            f"{what} is {x.dtype} on {x.device}, but the model is {ref.dtype} on {ref.device}; "
            f"convert one to the other (x.to(dtype=..., device=...) or model.to(...))"
        )


class Transform(nn.Module):
    """Base class of every bijection (see the module docstring for the contract)."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Normalizing direction ``z = f(x)``; returns ``(z, log|det df/dx|)``."""
        raise NotImplementedError

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Generative direction ``x = f^{-1}(z)``; returns ``(x, log|det df^{-1}/dz|)``."""
        raise NotImplementedError

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        """Event shape of ``forward``'s output for an input of ``event_shape``."""
        return tuple(event_shape)

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        """Event shape of ``inverse``'s output for an input of ``event_shape``."""
        return tuple(event_shape)

    @property
    def is_data_dependent(self) -> bool:
        """True when the layer needs :meth:`initialize` on data before use."""
        return False

    def initialize(self, x: Tensor, context: Tensor | None = None) -> None:  # noqa: B027
        """Data-dependent initialization (ActNorm); a no-op by default."""


class Identity(Transform):
    """``z = x`` with zero log-det."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z, z.new_zeros(z.shape[0])


class Compose(Transform):
    """``f = f_n o ... o f_1``: forward runs the list in order and sums log-dets,
    inverse runs it backwards.

    Args:
        transforms: the layers, in the normalizing (data -> latent) order.
        event_shape: if given, the chain of ``output_shape`` is checked now,
            so a wrong stack fails when it is built, not in the first batch.
    """

    def __init__(self, transforms: Iterable[Transform], event_shape: Sequence[int] | None = None):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        for i, t in enumerate(self.transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"Compose item {i} is {type(t).__name__}, not a flowforge Transform")
        if event_shape is not None:
            self.output_shape(event_shape)

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, i: int) -> Transform:
        return self.transforms[i]

    def __iter__(self):
        return iter(self.transforms)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_dtype_device(self, x)
        total = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, log_abs_det = t(x, context)
            total = total + log_abs_det
        return x, total

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_dtype_device(self, z)
        total = z.new_zeros(z.shape[0])
        for t in reversed(self.transforms):
            z, log_abs_det = t.inverse(z, context)
            total = total + log_abs_det
        return z, total

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(event_shape)
        for i, t in enumerate(self.transforms):
            try:
                shape = t.output_shape(shape)
            except ValueError as e:
                raise ValueError(f"layer {i} ({type(t).__name__}) cannot take event shape {shape}: {e}") from e
        return shape

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(event_shape)
        for t in reversed(self.transforms):
            shape = t.inverse_shape(shape)
        return shape

    @property
    def is_data_dependent(self) -> bool:
        return any(t.is_data_dependent for t in self.transforms)

    def initialize(self, x: Tensor, context: Tensor | None = None) -> None:
        """Initialize data-dependent layers in order, each on the data it sees."""
        with torch.no_grad():
            for t in self.transforms:
                t.initialize(x, context)
                x, _ = t(x, context)


class Inverse(Transform):
    """The inverse bijection: swaps ``forward`` and ``inverse`` of ``transform``.

    ``Inverse(MAF layer)`` is an IAF layer, sharing code and parameters.
    """

    def __init__(self, transform: Transform):
        super().__init__()
        self.transform = transform

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform.inverse(x, context)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform(z, context)

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        return self.transform.inverse_shape(event_shape)

    def inverse_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        return self.transform.output_shape(event_shape)
