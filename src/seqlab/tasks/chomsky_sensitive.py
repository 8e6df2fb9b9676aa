"""Context-sensitive tasks of Delétang et al. (2022): a linear-bounded automaton solves each.

Shape legend: B batch · N string length · M output length.

Both are transductions (:class:`~seqlab.tasks.chomsky.TransductionTask`: ``x SEP ∅..∅``,
outputs scored at the blanks). The paper's LSTM scores 57.6 % on duplicate string and 99.3 %
on bucket sort, its Transformer 52.8 / 91.9 % (Table 2; only the tape-RNN solves duplication).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS
from seqlab.tasks.chomsky import TransductionTask
from seqlab.tasks.lengths import LengthConfig


@dataclass
class AlphabetConfig(LengthConfig):
    """Alphabet size; training lengths 1–40, test lengths 41–256."""

    num_symbols: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("num_symbols", self.num_symbols)


@dataclass
class BucketSortConfig(AlphabetConfig):
    """Bucket sort's alphabet: 5 symbols, as in the paper."""

    num_symbols: int = 5


class _AlphabetTask(TransductionTask):
    """Uniform strings over ``config.num_symbols`` symbols; vocabulary adds SEP and BLANK."""

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        S = self.config.num_symbols
        self.num_symbols = S
        self.io = IOSpec(output_dim=S, vocab_size=S + 2)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        B, N = len(lengths), int(lengths.max())
        return torch.randint(0, self.num_symbols, (B, N), generator=generator), lengths


@TASKS.register("duplicate-string")
class DuplicateStringTask(_AlphabetTask):
    """Duplicate string: output ``w w`` for a string w (binary by default, as in the paper).

    Worked example: ``1 0 1`` → input ``1 0 1 SEP ∅ ∅ ∅ ∅ ∅ ∅``, targets ``1 0 1 1 0 1``.
    """

    Config = AlphabetConfig

    def output_length(self, n: int) -> int:
        return 2 * n

    def solve(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``y_k = x_{k mod n}`` for k < 2n."""
        k = torch.arange(2 * tokens.shape[1])[None, :]  # (1, 2N)
        return tokens.gather(1, k % lengths[:, None]), 2 * lengths, 2 * lengths


@TASKS.register("bucket-sort")
class BucketSortTask(_AlphabetTask):
    """Bucket sort: output the string's symbols in increasing order (alphabet of 5 by default).

    Worked example (the paper's): ``1 0 2 0 4 1 1 2`` → targets ``0 0 1 1 1 2 2 4``.
    """

    Config = BucketSortConfig

    def output_length(self, n: int) -> int:
        return n

    def solve(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sort each row with its padding pushed past every symbol."""
        real = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]  # (B, N)
        keyed = torch.where(real, tokens, torch.full_like(tokens, self.num_symbols))
        return keyed.sort(dim=1).values, lengths, lengths
