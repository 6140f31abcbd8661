"""Ready architectures by name: ``build("realnvp", dim=2, ...)``."""
from . import realnvp  # noqa: F401  (registers itself)
from . import glow, nice, preprocessing  # noqa: F401  (image models, pixel preprocessing)
from . import iaf, maf  # noqa: F401  (autoregressive models)
from .registry import available, build, fit_preprocessing, register, register_preprocessing

__all__ = ["available", "build", "fit_preprocessing", "register", "register_preprocessing"]
