"""Shared layout of the Chomsky-hierarchy tasks (Delétang et al. 2022, "Neural Networks and the
Chomsky Hierarchy"): train on short strings, test on longer ones, accuracy per length.

Shape legend: B batch · T time · N input string length · M output length.

The tasks themselves live in :mod:`~seqlab.tasks.chomsky_regular` (even-pairs,
cycle-navigation, modular-arithmetic), :mod:`~seqlab.tasks.chomsky_context_free`
(stack-manipulation, reverse-string, modular-arithmetic-brackets) and
:mod:`~seqlab.tasks.chomsky_sensitive` (duplicate-string, bucket-sort). Each is one of two kinds:

* :class:`FinalValueTask` — many-to-one, parity's layout: the string, the label read at its
  last token. ``1 0 1`` → target ``·  ·  y`` (· = not scored).
* :class:`TransductionTask` — many-to-many, copy's layout for causal models that emit one output
  per input: the string, a separator, then M blank positions where the output string is scored.
  ``x_1..x_N SEP ∅..∅`` → targets ``· .. · · y_1..y_M``. The model reads its input once; the paper
  appends the same kind of dummy tokens ("non-autoregressive" outputs).

Accuracy follows the paper: per-token accuracy over the scored positions, pooled per length,
then averaged over the test lengths (``test_acc``; ``test_acc_by_length`` keeps every length).
The paper's headline number is the *max over 10 seeds* of this average; one run gives one seed.
Whole-string accuracy (``test_seq_acc``) is reported besides, as a stricter measure.

Every task splits generation into ``sample(lengths, generator)`` (random strings, zero-padded)
and a deterministic ``solve`` (the language's ground truth), so ``encode(tokens, lengths)``
turns any fixed strings into a batch — which is what the worked examples in the docstrings
and their tests use.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.tasks.base import IGNORE, Batch, lengths_mask
from seqlab.tasks.lengths import LengthGeneralisationTask

TRAIN_DEFAULTS = {"steps": 600, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50, "eval_every": 200}


class Draws:
    """Uniform integers from a :class:`torch.Generator`, drawn in blocks for fast Python sampling.

    Recursive samplers (bracketed expressions) need one integer at a time; one
    ``torch.randint`` call per integer would be slow, so floats are drawn in blocks and mapped.

    Example:
        >>> d = Draws(torch.Generator().manual_seed(0))
        >>> 0 <= d.randint(0, 5) < 5
        True
    """

    def __init__(self, generator: torch.Generator, block: int = 4096) -> None:
        self.generator, self.block = generator, block
        self._values: list[float] = []

    def randint(self, low: int, high: int) -> int:
        """An integer uniform on [low, high)."""
        if not self._values:
            self._values = torch.rand(self.block, generator=self.generator, dtype=torch.float64).tolist()
        return low + int(self._values.pop() * (high - low))


def rows(tokens: Tensor, lengths: Tensor) -> list[list[int]]:
    """The real tokens of each row as Python lists: ``rows([[1, 2, 0]], [2]) == [[1, 2]]``."""
    return [row[:n] for row, n in zip(tokens.tolist(), lengths.tolist(), strict=True)]


def pad_rows(sequences: list[list[int]], value: int = 0) -> Tensor:
    """Python lists -> (B, max length) long tensor padded with ``value``."""
    width = max(1, max(len(s) for s in sequences))
    return torch.tensor([s + [value] * (width - len(s)) for s in sequences], dtype=torch.long)


class FinalValueTask(LengthGeneralisationTask):
    """Many-to-one: a string of N tokens, one label read at its last real token (like parity).

    Subclasses implement ``sample(lengths, generator) -> (tokens (B, N), lengths (B,))`` and
    ``solve(tokens, lengths) -> labels (B,)``.
    """

    primary_metric = "test_acc"
    train_defaults = TRAIN_DEFAULTS

    def sequence_tokens(self, n: int) -> int:
        """A string of n tokens is n tokens."""
        return n

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def solve(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        raise NotImplementedError

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Random strings of the given lengths (B,), labelled, padded to the longest."""
        return self.encode(*self.sample(lengths, generator))

    def encode(self, tokens: Tensor, lengths: Tensor) -> Batch:
        """Fixed strings (B, N) of ``lengths`` (B,) -> a batch with the label at the last token."""
        B, T = len(lengths), int(lengths.max())
        mask = lengths_mask(lengths, T)  # (B, T)
        inputs = tokens[:, :T] * mask  # pads are 0
        targets = torch.full((B, T), IGNORE, dtype=torch.long)
        targets[torch.arange(B), lengths - 1] = self.solve(inputs, lengths)
        return Batch(inputs, targets, targets != IGNORE, mask, lengths)


class TransductionTask(LengthGeneralisationTask):
    """Many-to-many: ``x_1..x_N SEP ∅..∅`` with the output string scored at the blanks.

    Subclasses set ``num_symbols`` (input alphabet; SEP and BLANK come after it) and implement
    ``sample`` as :class:`FinalValueTask` does and ``solve(tokens, lengths) -> (outputs (B, M),
    blanks (B,), scored (B,))``: the output string, how many blank positions follow the
    separator, and how many of them are scored (``scored ≤ blanks``; stack manipulation scores
    the final stack and its end token, not the padding after it).
    """

    primary_metric = "test_acc"
    train_defaults = TRAIN_DEFAULTS | {"steps": 1500, "eval_every": 500}
    num_symbols: int

    @property
    def sep(self) -> int:
        return self.num_symbols

    @property
    def blank(self) -> int:
        return self.num_symbols + 1

    def output_length(self, n: int) -> int:
        """Blank positions after a string of length n."""
        raise NotImplementedError

    def sequence_tokens(self, n: int) -> int:
        """``x SEP blanks``: n + 1 + output_length(n) tokens."""
        return n + 1 + self.output_length(n)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def solve(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Random strings of the given lengths (B,) laid out as ``x SEP blanks``, right-padded."""
        return self.encode(*self.sample(lengths, generator))

    def encode(self, tokens: Tensor, lengths: Tensor) -> Batch:
        """Fixed strings (B, N) of ``lengths`` (B,) -> the ``x SEP blanks`` batch with targets."""
        # 1. the output strings
        n_max = int(lengths.max())
        tokens = tokens[:, :n_max] * lengths_mask(lengths, n_max)
        outputs, blanks, scored = self.solve(tokens, lengths)  # (B, M), (B,), (B,)
        # 2. inputs: string, separator, blanks, padding
        B, total = len(lengths), lengths + 1 + blanks
        T = int(total.max())
        pos, n = torch.arange(T)[None, :], lengths[:, None]  # (1, T), (B, 1)
        mask = lengths_mask(total, T)  # (B, T)
        source = tokens.gather(1, pos.clamp(max=n_max - 1).expand(B, T))  # (B, T)
        inputs = torch.where(pos < n, source, torch.full_like(source, self.blank))
        inputs = torch.where(pos == n, torch.full_like(inputs, self.sep), inputs) * mask
        # 3. targets at the first ``scored`` blanks
        k = pos - n - 1  # (B, T): index into the output string
        is_out = (k >= 0) & (k < scored[:, None])
        gathered = outputs.gather(1, k.clamp(0, outputs.shape[1] - 1))  # (B, T)
        targets = torch.where(is_out, gathered, torch.full_like(gathered, IGNORE))
        return Batch(inputs, targets, is_out, mask, total)
