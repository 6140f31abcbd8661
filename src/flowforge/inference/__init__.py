"""Flows for inference: fit an unnormalized target by reverse KL (:mod:`.vi`,
targets in :mod:`.targets`) and the VAE with an IAF posterior / MAF prior (:mod:`.vae`)."""
from .targets import Target, as_target, available_targets, make_target, register_target
from .vae import VAE, fit_vae
from .vi import ISEstimate, VIResult, estimate_log_z, fit_target, reverse_kl

__all__ = [
    "ISEstimate",
    "Target",
    "VAE",
    "VIResult",
    "as_target",
    "available_targets",
    "estimate_log_z",
    "fit_target",
    "fit_vae",
    "make_target",
    "register_target",
    "reverse_kl",
]
