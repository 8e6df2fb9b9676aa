"""Hochreiter & Schmidhuber's adding problem (1997; the form of Le et al. 2015).

Each step has two features: a value u_t ~ U(0, 1) and a marker m_t ∈ {0, 1}. Exactly two steps
are marked, one in each half of the sequence; the target, read at the last step, is the sum of
the two marked values. Predicting the mean (1.0) gives MSE 1/6 ≈ 0.167 — the baseline to beat.
"Solved" (Hochreiter's criterion) means |error| < 0.04 on almost every sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_positive
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS, Batch, Predict, Task

BASELINE_MSE = 1.0 / 6.0  # variance of u_a + u_b with u ~ U(0, 1): predicting 1 everywhere


@dataclass
class AddingConfig:
    """Sequence length for training/validation, a longer test length, and evaluation sizes."""

    length: int = 50
    test_length: int = 100
    val_size: int = 1000
    tolerance: float = 0.04

    def __post_init__(self) -> None:
        for name in ("length", "test_length", "val_size", "tolerance"):
            check_positive(name, getattr(self, name))
        if self.length < 2 or self.test_length < 2:
            raise ConfigError("adding: length and test_length must be at least 2")


@TASKS.register("adding")
class AddingTask(Task):
    """Many-to-one regression; MSE and the fraction within ``tolerance``."""

    Config = AddingConfig
    primary_metric = "val_mse"
    train_defaults = {"steps": 2000, "batch_size": 64, "lr": 3e-3, "eval_every": 500}
    io = IOSpec(output_dim=1, input_dim=2)

    @property
    def train_length(self) -> int:
        """Every training sequence has ``length`` steps (no padding)."""
        return self.config.length

    def make_batch(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        B, T, half = batch_size, length, length // 2
        values = torch.rand(B, T, generator=generator)
        first = torch.randint(0, half, (B,), generator=generator)
        second = torch.randint(half, T, (B,), generator=generator)
        return adding_batch(values, first, second)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        return self.make_batch(batch_size, self.config.length, generator)

    def loss(self, outputs: Tensor, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        if label_smoothing:
            raise ConfigError(
                "train.label_smoothing applies to classification; 'adding' is a regression task"
            )
        return F.mse_loss(outputs[batch.target_mask], batch.targets[batch.target_mask])

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        c = self.config
        out: dict[str, float] = {"baseline_mse": BASELINE_MSE}
        for prefix, length, seed in [("val", c.length, 1), ("test", c.test_length, 2)]:
            generator = torch.Generator().manual_seed(self.seed + seed)
            errors = []
            for start in range(0, c.val_size, batch_size):
                batch = self.make_batch(min(batch_size, c.val_size - start), length, generator)
                pred = predict(batch)[batch.target_mask]
                errors.append(pred - batch.targets[batch.target_mask])
            err = torch.cat(errors)
            out[f"{prefix}_mse"] = float(err.pow(2).mean())
            out[f"{prefix}_acc"] = float((err.abs() < c.tolerance).float().mean())
        return out


def adding_batch(values: Tensor, first: Tensor, second: Tensor) -> Batch:
    """Values (B, T) with steps ``first`` (B,) and ``second`` (B,) marked, as a batch.

    Example, T = 4, first = 1, second = 2::

        u_t      0.3  0.5  0.2  0.9
        m_t      0    1    1    0
        target   ·    ·    ·    0.7       (0.5 + 0.2, read at the last step)
    """
    B, T = values.shape
    markers = torch.zeros(B, T)
    markers[torch.arange(B), first] = 1.0
    markers[torch.arange(B), second] = 1.0
    inputs = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    targets = torch.zeros(B, T, 1)
    targets[:, -1, 0] = (values * markers).sum(dim=1)
    target_mask = torch.zeros(B, T, dtype=torch.bool)
    target_mask[:, -1] = True
    return Batch(inputs, targets, target_mask)
