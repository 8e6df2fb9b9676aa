"""Shared base of the length-generalisation tasks (parity, copy, ...): train short, test long.

Training lengths are uniform in [min_len, max_len]; validation covers the training lengths;
the test set has ``test_per_length`` sequences of every length in [test_min_len, test_max_len]
and reports accuracy per length and averaged (Delétang et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.errors import ConfigError
from seqlab.tasks.base import Batch, Predict, Task, evaluate_by_length


@dataclass
class LengthConfig:
    """Lengths of training and test sequences, and evaluation sizes."""

    min_len: int = 1
    max_len: int = 40
    test_min_len: int = 41
    test_max_len: int = 256
    test_per_length: int = 16
    val_size: int = 512

    def __post_init__(self) -> None:
        for name in ("min_len", "max_len", "test_min_len", "test_max_len", "test_per_length", "val_size"):
            check_positive(name, getattr(self, name))
        if self.min_len > self.max_len or self.test_min_len > self.test_max_len:
            raise ConfigError("lengths: expected min_len <= max_len and test_min_len <= test_max_len")


class LengthGeneralisationTask(Task):
    """Subclasses implement ``make_batch(lengths (B,), generator) -> Batch``."""

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        c = self.config
        lengths = torch.randint(c.min_len, c.max_len + 1, (batch_size,), generator=generator)
        return self.make_batch(lengths, generator)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        c = self.config
        per_length = max(1, c.val_size // (c.max_len - c.min_len + 1))
        train_lengths = range(c.min_len, c.max_len + 1)
        val = evaluate_by_length(
            self.make_batch, train_lengths, per_length, predict, batch_size, self.seed + 1, "val"
        )
        val.pop("val_acc_by_length")
        test_lengths = range(c.test_min_len, c.test_max_len + 1)
        test = evaluate_by_length(
            self.make_batch, test_lengths, c.test_per_length, predict, batch_size, self.seed + 2, "test"
        )
        return val | test
