"""Models are data: ``build(name, **config)`` -> :class:`~flowforge.distributions.Flow`.

Every builder registers itself with :func:`register`. The config (plain JSON
values) is stored on the flow as ``flow.config`` and in every checkpoint, so
``build(**flow.config)`` rebuilds the same architecture.

The generic key ``preprocess`` prepends fixed bijections (e.g. ``["standardize"]``)
to the model's transform; their statistics are set by :func:`fit_preprocessing`
and saved as buffers, so ``log_prob`` is in the user's data units.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import Tensor

from ..distributions import Flow
from ..errors import ConfigError
from ..transforms import Compose, Standardize, Transform

__all__ = ["register", "build", "available", "model_options", "register_preprocessing", "fit_preprocessing"]

_MODELS: dict[str, Callable[..., Flow]] = {}
_PREPROCESSING: dict[str, Callable[..., Transform]] = {}


def register(name: str) -> Callable[[Callable[..., Flow]], Callable[..., Flow]]:
    """Decorator: make ``builder(**config) -> Flow`` available as ``build(name, ...)``."""

    def deco(builder: Callable[..., Flow]) -> Callable[..., Flow]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = builder
        return builder

    return deco


def register_preprocessing(name: str) -> Callable:
    """Decorator: ``factory(event_shape, **options) -> Transform`` usable in ``preprocess=[...]``."""

    def deco(factory: Callable[..., Transform]) -> Callable[..., Transform]:
        _PREPROCESSING[name] = factory
        return factory

    return deco


register_preprocessing("standardize")(lambda event_shape: Standardize(tuple(event_shape)))


def available() -> list[str]:
    """Names accepted by :func:`build`."""
    return sorted(_MODELS)


def model_options(name: str) -> list[str]:
    """The option names model ``name`` accepts; a clear error listing the models if unknown."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available models: {', '.join(available())}")
    return list(inspect.signature(_MODELS[name]).parameters)


def build(name: str, **config: Any) -> Flow:
    """Build the model ``name`` from keyword hyper-parameters.

    Example:
        >>> flow = build("realnvp", dim=2, layers=6, hidden=128)
        >>> flow.log_prob(flow.sample(4)).shape
        torch.Size([4])
    """
    accepted = model_options(name)
    builder = _MODELS[name]
    preprocess = config.pop("preprocess", None) or []
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        valid = ", ".join(p for p in accepted if not p.startswith("_"))
        raise ConfigError(f"model {name!r} has no option(s) {', '.join(unknown)}; its options are: {valid}")
    try:
        flow = builder(**config)
    except ConfigError:
        raise
    except ValueError as e:  # a builder's check of an option value
        raise ConfigError(f"model {name!r}: {e}") from e
    if preprocess:
        layers = [_preprocessing_layer(spec, tuple(flow.event_shape)) for spec in preprocess]
        flow.transform = Compose([*layers, flow.transform])
    flow.config = {"name": name, **config, **({"preprocess": preprocess} if preprocess else {})}
    return flow


def _preprocessing_layer(spec: str | dict, event_shape: tuple[int, ...]) -> Transform:
    options = {"type": spec} if isinstance(spec, str) else dict(spec)
    kind = options.pop("type", None)
    if kind not in _PREPROCESSING:
        raise ConfigError(f"unknown preprocessing {kind!r}; available: {', '.join(sorted(_PREPROCESSING))}")
    return _PREPROCESSING[kind](event_shape, **options)


def fit_preprocessing(flow: Flow, x: Tensor) -> Flow:
    """Fit the statistics of the flow's leading preprocessing layers on training data ``x``."""
    transform = flow.transform
    if not isinstance(transform, Compose):
        return flow
    for layer in transform:
        fit = getattr(layer, "fit", None)
        if fit is None:
            break
        fit(x)
        x = layer(x)[0]
    return flow
