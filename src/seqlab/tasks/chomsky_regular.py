"""Regular-language tasks of Delétang et al. (2022): a finite automaton solves each one.

Shape legend: B batch · T time · N string length.

All three are many-to-one (:class:`~seqlab.tasks.chomsky.FinalValueTask`: the label is read at
the last token). A recurrent model with a small exact state (LSTM) generalises to any length;
the paper's Transformer does not (Table 2: even pairs 96.4, cycle navigation 61.9, modular
arithmetic 24.2 % against 100 % for the LSTM).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS
from seqlab.tasks.chomsky import FinalValueTask
from seqlab.tasks.lengths import LengthConfig

MODULUS = 5  # Z_5, as in the paper
PLUS, MINUS, TIMES = MODULUS, MODULUS + 1, MODULUS + 2  # operator tokens after the digits 0..4


@dataclass
class RegularConfig(LengthConfig):
    """Training lengths 1–40, test lengths 41–256 (the defaults of :class:`LengthConfig`)."""


@TASKS.register("even-pairs")
class EvenPairsTask(FinalValueTask):
    """Even pairs: is the number of ``ab`` and ``ba`` pairs in a string over {a, b} even?

    Tokens a = 0, b = 1; label 0 = even, 1 = odd (the paper's classes). Every change of symbol
    is one unequal pair, so the count is odd exactly when the first and last symbols differ.
    Worked example (the paper's): ``0 0 1 1 1 0`` has one ``01`` and one ``10`` → label 0;
    ``0 1 0 1 0 0 1`` has three ``01`` and two ``10`` → label 1.
    """

    Config = RegularConfig
    io = IOSpec(output_dim=2, vocab_size=2)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Uniform bit strings."""
        return torch.randint(0, 2, (len(lengths), int(lengths.max())), generator=generator), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """(Number of unequal adjacent pairs) mod 2, from the padded strings (B, N)."""
        unequal = (tokens[:, 1:] != tokens[:, :-1]) & (torch.arange(1, tokens.shape[1]) < lengths[:, None])
        return unequal.sum(dim=1) % 2


@TASKS.register("cycle-navigation")
class CycleNavigationTask(FinalValueTask):
    """Cycle navigation: the final position of a walk on a cycle of 5 states, starting at 0.

    Actions are tokens 0, 1, 2 meaning a step of −1 (left), 0 (stay), +1 (right), as in the
    paper's encoding; the label is ``Σ (a_i − 1) mod 5``.
    Worked example (the paper's): steps ``+1 −1 0 −1 −1`` = tokens ``2 0 1 0 0`` → −2 ≡ label 3.
    """

    Config = RegularConfig
    io = IOSpec(output_dim=MODULUS, vocab_size=3)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Uniform actions."""
        return torch.randint(0, 3, (len(lengths), int(lengths.max())), generator=generator), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Sum of the steps (token − 1) over the real tokens, mod 5."""
        real = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]  # (B, N)
        return ((tokens - 1) * real).sum(dim=1) % MODULUS


@TASKS.register("modular-arithmetic")
class ModularArithmeticTask(FinalValueTask):
    """Modular arithmetic without brackets: the value in Z_5 of ``d op d op … d``.

    Digits 0–4 are tokens 0–4; ``+ − ·`` are tokens 5, 6, 7. Digits and operators alternate,
    each uniform; the expression is evaluated with the usual precedence (``·`` binds tighter
    than ``+`` and ``−``, which go left to right), as in the paper's code, and reduced mod 5.
    Strings have odd length; a requested even length n gives n − 1 tokens (the paper's rule).
    Worked examples (the paper's): ``1 + 2 · 3`` = 7 ≡ 2; ``1 − 1 − 1`` = −1 ≡ 4;
    ``0 · 1 + 4 · 3 − 2`` = 10 ≡ 0. As tokens: ``1 5 2 7 3`` → label 2.
    """

    Config = RegularConfig
    io = IOSpec(output_dim=MODULUS, vocab_size=MODULUS + 3)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Alternating uniform digits and operators; even lengths shortened by one."""
        lengths = lengths - (1 - lengths % 2)  # odd
        B, T = len(lengths), int(lengths.max())
        digits = torch.randint(0, MODULUS, (B, T), generator=generator)
        operators = torch.randint(PLUS, TIMES + 1, (B, T), generator=generator)
        return torch.where(torch.arange(T) % 2 == 0, digits, operators), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Left to right with a pending product: ``total + term`` where ``·`` extends the term.

        E.g. ``1 + 2 · 3 − 2``: term 1 → (+) total 1, term 2 → (·) term 6 → (−) total 7,
        term −2 → end: 7 − 2 = 5 ≡ 0.
        """
        B, T = tokens.shape
        total, term = torch.zeros(B, dtype=torch.long), tokens[:, 0].clone()
        for j in range(1, T - 1, 2):  # operator at j, digit at j + 1
            active = j < lengths
            op, digit = tokens[:, j], tokens[:, j + 1]
            times = op == TIMES
            new_total = torch.where(times, total, total + term) % MODULUS
            new_term = torch.where(times, term * digit, torch.where(op == MINUS, -digit, digit)) % MODULUS
            total = torch.where(active, new_total, total)
            term = torch.where(active, new_term, term)
        return (total + term) % MODULUS
