"""Parity: is the number of ones in a bit string odd? (a regular language; Delétang et al. 2022)

Input: bits x_1..x_n (tokens 0/1), right-padded. Target at the last real position:
``y = (Σ x_i) mod 2``. Training lengths are uniform in [min_len, max_len]; the test set checks
length generalisation on every length in [test_min_len, test_max_len].
A recurrent model must keep one bit of state and flip it on every 1, exactly, for hundreds of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task, evaluate_by_length, lengths_mask


@dataclass
class ParityConfig:
    """Lengths of training and test strings, and how many test strings per length."""

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
            raise ConfigError("parity lengths: expected min_len <= max_len and test_min_len <= test_max_len")


@TASKS.register("parity")
class ParityTask(Task):
    """Many-to-one classification of bit strings by parity; accuracy reported per test length."""

    Config = ParityConfig
    primary_metric = "test_acc"
    train_defaults = {"steps": 600, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50, "eval_every": 200}
    io = IOSpec(output_dim=2, vocab_size=2)

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Random bit strings of the given lengths (B,), padded to the longest."""
        B, T = len(lengths), int(lengths.max())
        mask = lengths_mask(lengths, T)  # (B, T)
        bits = torch.randint(0, 2, (B, T), generator=generator) * mask  # pads are 0
        last = lengths - 1
        targets = torch.full((B, T), IGNORE, dtype=torch.long)
        targets[torch.arange(B), last] = bits.sum(dim=1) % 2
        target_mask = targets != IGNORE
        return Batch(bits, targets, target_mask, mask, lengths)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        c = self.config
        lengths = torch.randint(c.min_len, c.max_len + 1, (batch_size,), generator=generator)
        return self.make_batch(lengths, generator)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        c = self.config
        val = evaluate_by_length(
            self.make_batch,
            range(c.min_len, c.max_len + 1),
            max(1, c.val_size // (c.max_len - c.min_len + 1)),
            predict,
            batch_size,
            self.seed + 1,
            "val",
        )
        val.pop("val_acc_by_length")
        test = evaluate_by_length(
            self.make_batch,
            range(c.test_min_len, c.test_max_len + 1),
            c.test_per_length,
            predict,
            batch_size,
            self.seed + 2,
            "test",
        )
        return val | test
