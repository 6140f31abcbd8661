"""flowforge: normalizing flows on PyTorch.

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|

Quick start::

    import flowforge as ff
    flow = ff.models.build("realnvp", dim=2, layers=6, hidden=128)
    loss = -flow.log_prob(x).mean()

Importing flowforge sets nothing process-wide; its sub-packages (and torch)
load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import CheckpointError, ConfigError, DataError, FlowforgeError

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "distributions", "errors", "inference", "mode", "models", "nets", "registry", "training",
                "transforms")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name == "Flow":
        from .distributions import Flow

        return Flow
    raise AttributeError(f"module 'flowforge' has no attribute {name!r}")


def load(path, map_location="cpu"):
    """Rebuild a trained model from a run folder of any kind (train, fit-target, distill: a Flow;
    vae: the VAE) or a ``.safetensors`` file, from the checkpoint's own record; never unpickles."""
    from .inference.vae import VAE
    from .training.checkpoint import load_module

    return load_module(path, map_location, {"vae": VAE.from_config})[0]


def save(flow, path, meta: dict | None = None):
    """Save a flow built with ``models.build`` (weights + config) to a file or run folder."""
    from .training.checkpoint import save_checkpoint

    return save_checkpoint(path, flow, meta)


__all__ = [
    "CheckpointError", "ConfigError", "DataError", "Flow", "FlowforgeError", "__version__", "data", "distributions",
    "errors", "inference", "load", "mode", "models", "nets", "registry", "save", "training", "transforms",
]
