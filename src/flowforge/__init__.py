"""flowforge: normalizing flows on PyTorch.

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|

Quick start::

    import flowforge as ff
    flow = ff.models.build("realnvp", dim=2, layers=6, hidden=128)
    loss = -flow.log_prob(x).mean()
"""
__version__ = "0.1.0"

from . import data, distributions, models, nets, training, transforms  # noqa: E402
from .distributions import Flow  # noqa: E402
from .training.checkpoint import load_flow as _load_flow  # noqa: E402


def load(path, map_location="cpu") -> Flow:
    """Rebuild a trained flow from a run folder or a ``.safetensors`` file
    (from the checkpoint's own config; never unpickles)."""
    return _load_flow(path, map_location)[0]


def save(flow: Flow, path, meta: dict | None = None):
    """Save a flow built with ``models.build`` (weights + config) to a file or run folder."""
    from .training.checkpoint import save_checkpoint

    return save_checkpoint(path, flow, meta)


__all__ = ["Flow", "__version__", "data", "distributions", "load", "models", "nets", "save", "training", "transforms"]
