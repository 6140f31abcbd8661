"""Masked autoregressive layers: MAF, and IAF as its inverse.

Notation: ``order`` lists the dimensions in generation order; ``x_<i`` are the
dimensions before ``i`` in it; ``h`` is a pluggable element-wise bijection
(:mod:`flowforge.transforms.univariate`)::

    z_i = h(x_i; theta_i(x_<i, context)),      log|det dz/dx| = sum_i log|h'(x_i)|

with ``theta = MADE(x, context)`` (:class:`flowforge.nets.MADE`), so ``dz/dx`` is
triangular in ``order``.

* :class:`MaskedAutoregressive` (MAF): the normalizing direction ``x -> z`` is
  one MADE pass; the generative direction ``z -> x`` takes ``D`` passes (pass
  ``k`` fixes the ``k``-th dimension of the order).
* ``Inverse(MaskedAutoregressive(...))`` (IAF): the same layer read backwards,
  ``x_i = h^{-1}(z_i; theta_i(z_<i))`` in the normalizing direction. Sampling
  is one pass and gives the log-density of its own samples for free; the
  density of an outside point takes ``D`` passes.

References:
    Papamakarios et al., "Masked Autoregressive Flow for Density Estimation",
    arXiv:1705.07057; Kingma et al., "Improving Variational Inference with
    Inverse Autoregressive Flow", arXiv:1606.04934.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ..nets.made import MADE, check_order
from .base import Transform
from .univariate import UnivariateMap

__all__ = ["MaskedAutoregressive", "AutoregressiveConditioner"]

#: ``(order, params_per_dim, context_dim) -> module`` mapping ``(x, context)`` to
#: ``(B, params_per_dim, D)``, autoregressive in ``order`` (e.g. ``partial(MADE, hidden=64)``).
AutoregressiveConditioner = Callable[[Tensor, int, int], nn.Module]


class MaskedAutoregressive(Transform):
    """MAF layer: an element-wise map whose parameters come from a MADE.

    Args:
        order: the dimension ``D`` (sequential order) or a permutation of
            ``0..D-1`` in generation order.
        univariate: the element-wise bijection (e.g. ``AffineMap(3.0)``).
        conditioner: factory of the autoregressive network; default a MADE with
            two hidden layers of 128 ReLU units.
        context_dim: width of the context vector, 0 for none.

    Shapes:
        x, z: ``(B, D)``; context: ``(B, context_dim)``; log_abs_det: ``(B,)``.
    """

    def __init__(
        self,
        order: int | Sequence[int] | Tensor,
        univariate: UnivariateMap,
        conditioner: AutoregressiveConditioner = MADE,
        context_dim: int = 0,
    ):
        super().__init__()
        order = check_order(order)
        self.dim = order.numel()
        self.univariate = univariate
        self.context_dim = int(context_dim)
        self.net = conditioner(order, univariate.n_params, self.context_dim)

    def output_shape(self, event_shape: Sequence[int]) -> tuple[int, ...]:
        if tuple(event_shape) != (self.dim,):
            raise ValueError(f"autoregressive layer built for event shape ({self.dim},), got {tuple(event_shape)}")
        return (self.dim,)

    inverse_shape = output_shape

    def _params(self, x: Tensor, context: Tensor | None) -> Tensor:
        return self.net(x, context if self.context_dim else None)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, log_abs_det = self.univariate.forward(x, self._params(x, context))
        return z, log_abs_det.sum(1)

    def inverse(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # After pass k the first k dimensions of the order are exact, so D passes
        # suffice, and the last pass's parameters are those of the exact x.
        x = z.new_zeros(z.shape)
        for _ in range(self.dim):
            x, log_abs_det = self.univariate.inverse(z, self._params(x, context))
        return x, log_abs_det.sum(1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, context_dim={self.context_dim}"
