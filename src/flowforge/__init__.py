"""flowforge: normalizing flows on PyTorch.

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|

Quick start::

    import flowforge as ff
    flow = ff.models.build("realnvp", dim=2, layers=6, hidden=128)
    loss = -flow.log_prob(x).mean()
"""
__version__ = "0.1.0"

from . import distributions, models, nets, transforms  # noqa: E402
from .distributions import Flow  # noqa: E402

__all__ = ["Flow", "__version__", "distributions", "models", "nets", "transforms"]
