"""One context manager for train/eval mode: ``with in_mode(flow, training=False): ...``.

Inside the block ``module`` and all its submodules are in the asked mode;
afterwards every submodule is back in the mode it had (also a mix of modes,
and also when the block raises).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from torch import nn

__all__ = ["in_mode"]

M = TypeVar("M", bound=nn.Module)


@contextmanager
def in_mode(module: M, training: bool) -> Iterator[M]:
    """``module.train(training)`` for the duration of the block, then each submodule's own mode again."""
    saved = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield module
    finally:
        for m, flag in saved:
            m.training = flag
