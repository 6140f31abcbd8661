"""``Flow`` = base density + transform, usable as a torch Distribution.

    log p_X(x | c) = log p_Z(f(x; c)) + log |det df/dx|,     x = f^{-1}(z; c),  z ~ p_Z
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from ..errors import DataError
from ..transforms.base import Transform, check_dtype_device
from .base import BaseDensity

__all__ = ["Flow"]


class Flow(nn.Module, Distribution):
    """A normalizing flow: ``transform`` maps data to the latent of ``base``.

    ``flow.transform`` and ``flow.base`` are public. ``flow.config`` is the
    ``(name, hyper-parameters)`` record a checkpoint rebuilds the model from.

    Args:
        transform: the normalizing-direction bijection ``f``.
        base: the latent density ``p_Z``.
        context_dim: width of the context vector the flow is conditioned on, 0 for none.

    Shapes:
        x: ``(B, *event_shape)``; context: ``(B, context_dim)``; log_prob: ``(B,)``.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, transform: Transform, base: BaseDensity, context_dim: int = 0):
        nn.Module.__init__(self)
        self.transform = transform
        self.base = base
        self.context_dim = int(context_dim)
        self.config: dict[str, Any] = {}
        event_shape = torch.Size(transform.inverse_shape(base.event_shape))
        Distribution.__init__(self, batch_shape=torch.Size(), event_shape=event_shape, validate_args=False)

    # -- nn.Module and Distribution both define __repr__; keep the module's
    __repr__ = nn.Module.__repr__

    def _check_input(self, x: Tensor, context: Tensor | None) -> None:
        check_dtype_device(self, x, "data")
        shape = tuple(self.event_shape)
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            raise DataError(f"expected data of shape (batch, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        self._check_context(context, x.shape[0])

    def _check_context(self, context: Tensor | None, n: int) -> None:
        if self.context_dim == 0:
            if context is not None:
                raise DataError("this flow is unconditional but a context was given")
        elif context is None:
            raise DataError(f"this flow needs a context of width {self.context_dim}, got none")
        elif tuple(context.shape) != (n, self.context_dim):
            raise DataError(f"context must have shape ({n}, {self.context_dim}), got {tuple(context.shape)}")
        else:
            check_dtype_device(self, context, "context")

    def log_prob(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Exact ``log p(x | context)`` in nats, shape ``(B,)``."""
        self._check_input(x, context)
        z, log_abs_det = self.transform(x, context)
        return self.base.log_prob(z) + log_abs_det

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Same as :meth:`log_prob` (so DDP and hooks see a module call)."""
        return self.log_prob(x, context)

    def _num(self, n: int | torch.Size | tuple, context: Tensor | None) -> int:
        if isinstance(n, (tuple, torch.Size)):
            if len(n) > 1:
                raise DataError(f"sample takes a number or a 1-element shape, got {tuple(n)}")
            n = n[0] if len(n) else 1
        if context is not None and int(n) != context.shape[0]:
            raise DataError(f"asked for {n} samples but the context has {context.shape[0]} rows (one per sample)")
        if int(n) < 1:
            raise DataError(f"number of samples must be positive, got {n}")
        return int(n)

    def rsample_and_log_prob(
        self, n: int | torch.Size = 1, context: Tensor | None = None, temperature: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Differentiable samples and their log-density, one generative pass."""
        n = self._num(n, context)
        self._check_context(context, n)
        z = self.base.sample(n, temperature)
        log_pz = self.base.log_prob(z)
        x, log_abs_det = self.transform.inverse(z, context)
        return x, log_pz - log_abs_det

    def sample_and_log_prob(
        self, n: int | torch.Size = 1, context: Tensor | None = None, temperature: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Samples and their log-density (no gradient), shapes ``(n, *event)`` and ``(n,)``.

        With ``temperature != 1`` the returned log-density is the model's at the
        sample (not the tempered one's).
        """
        with torch.no_grad():
            x, log_q = self.rsample_and_log_prob(n, context, temperature)
            if temperature != 1.0:
                log_q = self.log_prob(x, context)
        return x, log_q

    def rsample(self, n: int | torch.Size = 1, context: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """Reparameterized samples ``x = f^{-1}(z)``, differentiable in the parameters."""
        n = self._num(n, context)
        self._check_context(context, n)
        z = self.base.sample(n, temperature)
        return self.transform.inverse(z, context)[0]

    def sample(self, n: int | torch.Size = 1, context: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """Samples without gradient, shape ``(n, *event_shape)``."""
        with torch.no_grad():
            return self.rsample(n, context, temperature)

    def encode(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """The latent ``z = f(x)``."""
        self._check_input(x, context)
        return self.transform(x, context)[0]

    def decode(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """The data point ``x = f^{-1}(z)``."""
        return self.transform.inverse(z, context)[0]
