"""``Registry``: names -> factories, shared by models, preprocessing, data sets and VI targets.

A factory registers under a name once; looking up an unknown name is a
:class:`~flowforge.errors.ConfigError` listing the names there are, and
:meth:`Registry.options` reads a factory's options and defaults from its
signature (so a record of "every option with its value" needs no per-factory code).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry", "REQUIRED"]

F = TypeVar("F", bound=Callable[..., Any])

#: the default of an option that has none (it must be given)
REQUIRED = inspect.Parameter.empty


class Registry(Generic[F]):
    """Named factories of one kind (``"model"``, ``"target"``, ...).

    Example:
        >>> shapes = Registry("shape")
        >>> @shapes.register("square")
        ... def square(side: float = 1.0): return side * side
        >>> shapes["square"](side=3.0), shapes.options("square")
        (9.0, {'side': 1.0})
    """

    def __init__(self, kind: str, plural: str | None = None):
        self.kind, self.plural = kind, plural or f"{kind}s"
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make ``factory`` available under ``name``."""

        def deco(factory: F) -> F:
            self.add(name, factory)
            return factory

        return deco

    def add(self, name: str, factory: F) -> None:
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __getitem__(self, name: str) -> F:
        if name not in self._factories:
            raise ConfigError(f"unknown {self.kind} {name!r}; available {self.plural}: {', '.join(self.names())}")
        return self._factories[name]

    def options(self, name: str, skip: int = 0) -> dict[str, Any]:
        """Option name -> default (:data:`REQUIRED` when it has none), in signature order,
        without the first ``skip`` positional parameters."""
        params = list(inspect.signature(self[name]).parameters.values())[skip:]
        return {p.name: p.default for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
