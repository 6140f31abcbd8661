"""Flows for inference: fit an unnormalized target by reverse KL (:mod:`.vi`,
targets in :mod:`.targets`), the VAE with an IAF posterior / MAF prior (:mod:`.vae`) and
density distillation (:mod:`.distill`). Their objectives (:class:`ReverseKL`, :class:`ELBO`,
:class:`Distillation`) run on the one trainer, :func:`flowforge.training.train`."""
from .distill import Distillation, distill
from .targets import Target, as_target, available_targets, make_target, register_target
from .vae import ELBO, VAE, fit_vae
from .vi import ISEstimate, ReverseKL, VIResult, estimate_log_z, fit_target, reverse_kl

__all__ = [
    "Distillation",
    "ELBO",
    "ISEstimate",
    "ReverseKL",
    "Target",
    "VAE",
    "VIResult",
    "as_target",
    "available_targets",
    "distill",
    "estimate_log_z",
    "fit_target",
    "fit_vae",
    "make_target",
    "register_target",
    "reverse_kl",
]
