"""Shared base of the length-generalisation tasks (parity, copy, ...): train short, test long.

Training lengths are uniform in [min_len, max_len] — in batches of a fixed size
(:meth:`~LengthGeneralisationTask.train_batch`) or of a token budget, bucketed by length so
batches pad little (:meth:`~LengthGeneralisationTask.train_batch_tokens`). Validation covers
the training lengths; the test set has ``test_per_length`` sequences of every length in
[test_min_len, test_max_len] and reports accuracy per length and averaged (Delétang et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

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
    """Subclasses implement ``make_batch(lengths (B,), generator) -> Batch`` and
    ``sequence_tokens(n)``, the padded tokens one example of string length n costs."""

    num_buckets: ClassVar[int] = 16  # default length buckets of :meth:`train_batch_tokens`

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def sequence_tokens(self, n: int) -> int:
        """Tokens of one example whose string has length n (parity: n; copy: 2n + 1)."""
        raise NotImplementedError

    @property
    def train_length(self) -> int:
        """Tokens of the longest training example (string length ``max_len``)."""
        return self.sequence_tokens(self.config.max_len)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        c = self.config
        lengths = torch.randint(c.min_len, c.max_len + 1, (batch_size,), generator=generator)
        return self.make_batch(lengths, generator)

    def train_batch_tokens(
        self, max_tokens: int, generator: torch.Generator, *, bucket_width: int | None = None
    ) -> Batch:
        """A length-bucketed training batch of at most ``max_tokens`` padded tokens.

        [min_len, max_len] is cut into buckets of ``bucket_width`` consecutive lengths (default
        ``⌈(max_len − min_len + 1) / num_buckets⌉``; the last bucket may be narrower).
        1. draw one length L uniformly on [min_len, max_len] and take L's bucket k;
        2. B = max_tokens // sequence_tokens(longest length of bucket k), so whatever lengths are
        drawn, ``B · T ≤ max_tokens``; 3. draw B lengths uniformly within bucket k.

        Why the lengths stay uniform: with N = max_len − min_len + 1 and bucket k holding w_k
        lengths, P(bucket k) = w_k / N and P(n | k) = 1 / w_k, so every sequence drawn has length
        n with probability (w_k / N)(1 / w_k) = 1 / N — the distribution of :meth:`train_batch`.
        Likewise a step comes from bucket k with probability w_k / N and averages over lengths
        uniform within k, so in expectation over steps every length weighs the same in the loss
        (exactly so when each sequence has one scored token, as in parity). What changes
        is the batch size: short buckets pack more sequences, so per *sequence* seen, short
        lengths are more frequent (∝ B_k); per *step*, no length is favoured. Each batch pads at
        most to its bucket's longest length, so little: parity on 1..40 (default width 3) pads
        ≈ 8 % of its token slots, against ≈ 45 % for :meth:`train_batch` (``tests/test_batching.py``).

        Example: parity with lengths 1..40, ``max_tokens=400``, ``bucket_width=5``: L = 23 →
        bucket 21..25, B = 400 // 25 = 16 sequences of lengths uniform in 21..25.

        Raises:
            ConfigError: ``max_tokens`` is not positive or is smaller than the longest training
                example (``train_length``): such a budget could only be met by never training on
                the longest lengths.
        """
        c = self.config
        self.check_token_budget(max_tokens)
        span = c.max_len - c.min_len + 1
        width = -(-span // self.num_buckets) if bucket_width is None else bucket_width
        if width <= 0:
            raise ConfigError(f"bucket_width: expected a positive integer, got {bucket_width}")
        # 1. the bucket of a uniform length
        L = int(torch.randint(c.min_len, c.max_len + 1, (1,), generator=generator))
        low = c.min_len + (L - c.min_len) // width * width
        high = min(low + width - 1, c.max_len)
        # 2. the batch size its longest example allows; 3. lengths uniform in the bucket
        batch_size = max_tokens // self.sequence_tokens(high)
        lengths = torch.randint(low, high + 1, (batch_size,), generator=generator)
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
