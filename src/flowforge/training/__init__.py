"""Training: the fit loop, metrics, checkpoints."""
from . import distributed
from .checkpoint import CheckpointError, load_flow, save_checkpoint
from .metrics import as_model_input, bits_per_dim, evaluate_nll
from .trainer import TrainConfig, TrainingError, TrainResult, fit, nll_loss

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "as_model_input",
    "distributed",
    "bits_per_dim",
    "evaluate_nll",
    "fit",
    "load_flow",
    "nll_loss",
    "save_checkpoint",
]
