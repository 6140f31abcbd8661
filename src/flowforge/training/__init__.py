"""Training: the one engine (objectives, trainer), run folders, metrics, checkpoints."""
from . import distributed
from .checkpoint import CheckpointError, load_flow, save_checkpoint
from .metrics import bits_per_dim, evaluate_nll
from .model_input import model_input
from .objectives import DataBatches, MaximumLikelihood, Objective
from .run import RUN_KINDS, Run
from .trainer import TrainConfig, TrainingError, TrainResult, fit, nll_loss, train

__all__ = [
    "CheckpointError",
    "DataBatches",
    "MaximumLikelihood",
    "Objective",
    "RUN_KINDS",
    "Run",
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
    "train",
]
