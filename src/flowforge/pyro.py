"""Pyro adapter: a flowforge flow as a Pyro ``TransformModule`` (generative direction).

    to_pyro(flow)(z) = x = f^{-1}(z),   log_abs_det_jacobian(z, x) = log |det dx/dz|

So a flowforge model is a Pyro guide::

    AutoNormalizingFlow(model, lambda dim: to_pyro(flowforge.models.build("iaf", dim=dim)))

Pyro supplies the base density (a standard normal in ``AutoNormalizingFlow``);
the flow's own base is not used. Inputs may be unbatched ``(*event)`` or carry
any batch shape ``(..., *event)``. Requires the ``[pyro]`` extra.
"""
from __future__ import annotations

try:
    from pyro.distributions import ConditionalTransformModule, TransformModule
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("flowforge.pyro needs Pyro: pip install 'flowforge[pyro]'") from e

from torch import Tensor
from torch.distributions import Transform as TorchTransform
from torch.distributions import constraints

from .distributions import Flow
from .transforms import Transform

__all__ = ["FlowTransform", "ConditionalFlowTransform", "to_pyro"]


def _apply(method, y: Tensor, event_dim: int, context: Tensor | None) -> tuple[Tensor, Tensor]:
    """``method`` (a flowforge direction) on ``(..., *event)``: flatten the batch, call, restore."""
    batch = y.shape[: y.ndim - event_dim]
    flat = y.reshape(-1, *y.shape[y.ndim - event_dim :])
    if context is not None:
        context = context.expand(*batch, context.shape[-1]).reshape(-1, context.shape[-1])
    out, log_abs_det = method(flat, context)
    return out.reshape(*batch, *out.shape[1:]), log_abs_det.reshape(batch)


class _Generative:
    """The torch ``Transform`` methods shared by the plain and the conditioned adapter.

    The log-det of the last ``_call`` is kept with its output, so a sample's
    ``log_prob`` in a ``TransformedDistribution`` costs no inverse pass.
    """

    bijective = True

    def _setup(self, transform: Transform, event_dim: int) -> None:
        self.transform = transform
        self.event_dim_ = event_dim
        self._last: tuple[Tensor, Tensor] | None = None

    @property
    def domain(self):
        return constraints.independent(constraints.real, self.event_dim_)

    @property
    def codomain(self):
        return constraints.independent(constraints.real, self.event_dim_)

    def _context(self) -> Tensor | None:
        return None

    def _call(self, z: Tensor) -> Tensor:
        x, log_abs_det = _apply(self.transform.inverse, z, self.event_dim_, self._context())
        self._last = (x, log_abs_det)
        return x

    def _inverse(self, x: Tensor) -> Tensor:
        return _apply(self.transform.forward, x, self.event_dim_, self._context())[0]

    def log_abs_det_jacobian(self, z: Tensor, x: Tensor) -> Tensor:
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        return -_apply(self.transform.forward, x, self.event_dim_, self._context())[1]


class FlowTransform(_Generative, TransformModule):
    """A flowforge :class:`~flowforge.transforms.Transform` run in the generative direction.

    Args:
        transform: the normalizing-direction bijection ``f`` (e.g. ``flow.transform``).
        event_dim: number of trailing event dimensions (1 for vectors).
    """

    def __init__(self, transform: Transform, event_dim: int = 1):
        TransformModule.__init__(self, cache_size=1)
        self._setup(transform, event_dim)


class _Conditioned(_Generative, TorchTransform):
    """A :class:`ConditionalFlowTransform` with its context fixed (``(..., context_dim)``)."""

    def __init__(self, owner: ConditionalFlowTransform, context: Tensor):
        TorchTransform.__init__(self, cache_size=1)
        self._setup(owner.transform, owner.event_dim_)
        self.context = context

    def _context(self) -> Tensor:
        return self.context


class ConditionalFlowTransform(ConditionalTransformModule):
    """A conditional flowforge transform; ``.condition(context)`` gives the Pyro transform."""

    def __init__(self, transform: Transform, event_dim: int = 1):
        super().__init__()
        self.transform = transform
        self.event_dim_ = event_dim

    def condition(self, context: Tensor) -> TorchTransform:
        return _Conditioned(self, context)


def to_pyro(
    flow_or_transform: Flow | Transform, event_dim: int | None = None, context_dim: int | None = None
) -> FlowTransform | ConditionalFlowTransform:
    """The Pyro transform ``z -> x`` of a flowforge flow (its transform) or transform.

    Args:
        flow_or_transform: a :class:`~flowforge.distributions.Flow` or a bare
            :class:`~flowforge.transforms.Transform`.
        event_dim: trailing event dimensions; default: the flow's, 1 for a bare transform.
        context_dim: width of the context; default: the flow's, 0 for a bare transform.
            Conditional ones give a :class:`ConditionalFlowTransform`.
    """
    if isinstance(flow_or_transform, Flow):
        transform = flow_or_transform.transform
        event_dim = len(flow_or_transform.event_shape) if event_dim is None else event_dim
        context_dim = flow_or_transform.context_dim if context_dim is None else context_dim
    elif isinstance(flow_or_transform, Transform):
        transform, event_dim, context_dim = flow_or_transform, event_dim or 1, context_dim or 0
    else:
        raise TypeError(f"to_pyro takes a flowforge Flow or Transform, got {type(flow_or_transform).__name__}")
    if context_dim:
        return ConditionalFlowTransform(transform, event_dim)
    return FlowTransform(transform, event_dim)

