"""Errors with an owner: a :class:`FlowforgeError` is the user's to fix.

Anything flowforge raises because of a configuration, data set or checkpoint
the user gave is a :class:`FlowforgeError` (the CLI prints its one line and
exits 2). Every other exception is a bug in flowforge or below it and
surfaces as one (exit 1 with a traceback). The three kinds subclass
``ValueError`` so ``except ValueError`` callers keep working.
"""
from __future__ import annotations

__all__ = ["FlowforgeError", "ConfigError", "DataError", "CheckpointError"]


class FlowforgeError(Exception):
    """The root: the input (configuration, data, checkpoint) is at fault; the message names the fix."""


class ConfigError(FlowforgeError, ValueError):
    """An unknown model, option, value or argument combination."""


class DataError(FlowforgeError, ValueError):
    """Bad input data; the message names the file, column or index and the count."""


class CheckpointError(FlowforgeError, ValueError):
    """A checkpoint or run folder that is missing, corrupt, locked, or does not fit its model."""
