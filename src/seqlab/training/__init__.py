"""Training: experiment config, optimisers, schedules, clipping, checkpoints, the trainer."""

from seqlab.training.checkpoint import load_checkpoint, save_checkpoint
from seqlab.training.config import ExperimentConfig, TaskSection, TrainConfig
from seqlab.training.evaluation import evaluate
from seqlab.training.guard import NonFiniteError
from seqlab.training.trainer import Trainer, train

__all__ = [
    "ExperimentConfig",
    "NonFiniteError",
    "TaskSection",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]
