"""Training: the fit loop, metrics, checkpoints."""
from . import distributed
from .checkpoint import CheckpointError, load_flow, save_checkpoint
from .metrics import bits_per_dim, evaluate_nll
from .model_input import model_input
from .trainer import TrainConfig, TrainingError, TrainResult, fit, nll_loss

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "distributed",
    "bits_per_dim",
    "evaluate_nll",
    "fit",
    "load_flow",
    "model_input",
    "nll_loss",
    "save_checkpoint",
]
