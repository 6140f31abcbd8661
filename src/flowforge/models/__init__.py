"""Ready architectures by name: ``build("realnvp", dim=2, ...)``."""
from . import (  # noqa: F401  (image models, pixel preprocessing)  # noqa: F401  (autoregressive models)
    glow,
    iaf,
    maf,
    nice,
    nsf,
    preprocessing,
    realnvp,  # noqa: F401  (registers itself)
)
from .registry import (
    CONFIG_VERSION,
    available,
    build,
    fit_preprocessing,
    model_options,
    register,
    register_preprocessing,
    upgrade_config,
)

__all__ = [
    "CONFIG_VERSION", "available", "build", "fit_preprocessing", "model_options", "register", "register_preprocessing",
    "upgrade_config",
]
