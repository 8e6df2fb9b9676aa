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

from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, lengths_mask
from seqlab.tasks.lengths import LengthConfig, LengthGeneralisationTask


@dataclass
class ParityConfig(LengthConfig):
    """Training lengths 1–40, test lengths 41–256 (the defaults of :class:`LengthConfig`)."""


@TASKS.register("parity")
class ParityTask(LengthGeneralisationTask):
    """Many-to-one classification of bit strings by parity; accuracy reported per test length."""

    Config = ParityConfig
    primary_metric = "test_acc"
    train_defaults = {"steps": 600, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50, "eval_every": 200}
    io = IOSpec(output_dim=2, vocab_size=2)

    def sequence_tokens(self, n: int) -> int:
        """A string of n bits is n tokens."""
        return n

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Random bit strings of the given lengths (B,), padded to the longest."""
        bits = torch.randint(0, 2, (len(lengths), int(lengths.max())), generator=generator)
        return parity_batch(bits, lengths)


def parity_batch(bits: Tensor, lengths: Tensor) -> Batch:
    """Bit strings (B, T) of the given lengths (B,) (bits past a length are padding) as a batch.

    Example, lengths [4, 2]::

        bits     1 0 1 1 | 1 1 · ·        (· = padding, set to 0)
        targets  · · · 1 | · 0 · ·        (three ones: odd → 1; two ones: even → 0)
    """
    B, T = bits.shape
    mask = lengths_mask(lengths, T)  # (B, T)
    bits = bits * mask  # pads are 0
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    targets[torch.arange(B), lengths - 1] = bits.sum(dim=1) % 2
    return Batch(bits, targets, targets != IGNORE, mask, lengths)
