"""Training: experiment config, optimiser groups, schedule, checkpoints, the trainer."""

from seqlab.training.checkpoint import load_checkpoint, save_checkpoint
from seqlab.training.config import ExperimentConfig, TaskSection, TrainConfig
from seqlab.training.trainer import evaluate, train

__all__ = [
    "ExperimentConfig",
    "TaskSection",
    "TrainConfig",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]
