"""Copy: read a string, then write it back after a separator (a memory test).

Input ``x_1..x_n SEP ∅..∅`` (n blanks), target ``x_1..x_n`` at the n blank positions. Symbols are
uniform over ``num_symbols``; training lengths n ∈ [min_len, max_len]; the test set checks
length generalisation on n ∈ [test_min_len, test_max_len].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, lengths_mask
from seqlab.tasks.lengths import LengthConfig, LengthGeneralisationTask


@dataclass
class CopyConfig(LengthConfig):
    """Alphabet size; training lengths 1–20, test lengths 21–40."""

    num_symbols: int = 8
    max_len: int = 20
    test_min_len: int = 21
    test_max_len: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("num_symbols", self.num_symbols)


@TASKS.register("copy")
class CopyTask(LengthGeneralisationTask):
    """Many-to-many (delayed) copy; token and whole-sequence accuracy, per test length."""

    Config = CopyConfig
    primary_metric = "val_seq_acc"
    train_defaults = {"steps": 3000, "batch_size": 64, "lr": 3e-3, "eval_every": 1000}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        S = self.config.num_symbols
        self.sep, self.blank = S, S + 1
        self.io = IOSpec(output_dim=S, vocab_size=S + 2)

    def sequence_tokens(self, n: int) -> int:
        """``x SEP blanks``: 2n + 1 tokens."""
        return 2 * n + 1

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Random strings of lengths n (B,) laid out by :func:`copy_batch`."""
        shape = (len(lengths), int(lengths.max()))
        symbols = torch.randint(0, self.config.num_symbols, shape, generator=generator)  # (B, n_max)
        return copy_batch(symbols, lengths, self.sep, self.blank)


def copy_batch(symbols: Tensor, lengths: Tensor, sep: int, blank: int) -> Batch:
    """Strings (B, n_max) of lengths n (B,) laid out as ``x SEP blanks`` (2n + 1 tokens), right-padded.

    Example, 8 symbols (SEP = 8, ∅ = 9), lengths [3, 1], pads 0::

        inputs   2 0 5 8 9 9 9 | 4 8 9 0 0 0 0
        targets  · · · · 2 0 5 | · · 4 · · · ·     (scored: the blank positions)
    """
    B, n_max = symbols.shape
    T = 2 * n_max + 1
    total = 2 * lengths + 1
    mask = lengths_mask(total, T)  # (B, T)
    pos = torch.arange(T)[None, :]  # (1, T)
    n = lengths[:, None]  # (B, 1)
    is_src, is_out = pos < n, (pos > n) & (pos <= 2 * n)
    src_idx = pos.clamp(max=n_max - 1).expand(B, T)
    out_idx = (pos - n - 1).clamp(0, n_max - 1)
    inputs = torch.where(is_src, symbols.gather(1, src_idx), torch.full_like(pos, blank))
    inputs = torch.where(pos == n, torch.full_like(inputs, sep), inputs) * mask
    targets = torch.where(is_out, symbols.gather(1, out_idx), torch.full_like(inputs, IGNORE))
    return Batch(inputs, targets, is_out, mask, total)
