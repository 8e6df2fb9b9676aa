"""Deterministic context-free tasks of Delétang et al. (2022): a pushdown automaton solves each.

Shape legend: B batch · T time · N string length · M output length.

Stack manipulation and reverse string are transductions (:class:`~seqlab.tasks.chomsky.
TransductionTask`: ``x SEP ∅..∅``, outputs scored at the blanks); modular arithmetic with
brackets is many-to-one. The paper's LSTM reaches 59.1 / 60.9 / 59.2 % on them and its
Transformer 57.5 / 62.3 / 32.5 % (Table 2); only memory-augmented RNNs solve them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS
from seqlab.tasks.chomsky import Draws, FinalValueTask, TransductionTask, pad_rows, rows
from seqlab.tasks.lengths import LengthConfig

POP, PUSH_0, PUSH_1 = 2, 3, 4  # stack-manipulation actions after the stack symbols 0, 1
END = 2  # stack-manipulation output: end of the final stack

MODULUS = 5
PLUS, MINUS, TIMES, OPEN, CLOSE = range(MODULUS, MODULUS + 5)  # bracket-expression tokens 5..9


@dataclass
class ContextFreeConfig(LengthConfig):
    """Training lengths 1–40, test lengths 41–256 (the defaults of :class:`LengthConfig`)."""


@TASKS.register("stack-manipulation")
class StackManipulationTask(TransductionTask):
    """Stack manipulation: run push/pop actions on a given stack and output the final stack.

    A string of length n is an initial stack of k ∈ [1, n − 1] uniform symbols (tokens 0/1,
    bottom to top) followed by n − k uniform actions: POP (2), PUSH 0 (3), PUSH 1 (4); POP on an
    empty stack does nothing. The output, over n + 1 blanks, is the final stack top to bottom
    and the end token 2; positions after the end token are not scored (the paper's accuracy
    mask; we leave them out of the loss as well). A string of length 1 is a one-symbol stack.
    Worked example (the paper's): ``0 1 1 0 PUSH1 POP POP`` = tokens ``0 1 1 0 4 2 2``: the
    stack goes 0110 → 01101 → 0110 → 011, so the targets are ``1 1 0 2`` (then 4 unscored blanks).
    """

    Config = ContextFreeConfig
    num_symbols = 5
    io = IOSpec(output_dim=3, vocab_size=7)

    def output_length(self, n: int) -> int:
        return n + 1

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A stack of uniform length in [1, n − 1] (1 when n = 1), then uniform actions."""
        B, N = len(lengths), int(lengths.max())
        u = torch.rand(B, generator=generator)
        stack_len = 1 + (u * (lengths - 1)).long()  # (B,) in [1, max(1, n − 1)]
        symbols = torch.randint(0, 2, (B, N), generator=generator)
        actions = torch.randint(POP, PUSH_1 + 1, (B, N), generator=generator)
        return torch.where(torch.arange(N) < stack_len[:, None], symbols, actions), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Simulate the stack per string; output it top to bottom, then END."""
        outputs = []
        for string in rows(tokens, lengths):
            stack: list[int] = []
            for token in string:
                if token < POP:  # an initial stack symbol
                    stack.append(token)
                elif token == POP:
                    stack = stack[:-1]
                else:
                    stack.append(token - PUSH_0)
            outputs.append([*stack[::-1], END])
        scored = torch.tensor([len(o) for o in outputs])
        return pad_rows(outputs), lengths + 1, scored


@TASKS.register("reverse-string")
class ReverseStringTask(TransductionTask):
    """Reverse string: output ``w^R`` for a binary string w (the paper's alphabet {0, 1}).

    Worked example: ``0 1 1`` → input ``0 1 1 SEP ∅ ∅ ∅``, targets ``1 1 0`` at the blanks.
    """

    Config = ContextFreeConfig
    num_symbols = 2
    io = IOSpec(output_dim=2, vocab_size=4)

    def output_length(self, n: int) -> int:
        return n

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return torch.randint(0, 2, (len(lengths), int(lengths.max())), generator=generator), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``y_k = x_{n−1−k}`` (0-based)."""
        k = torch.arange(tokens.shape[1])[None, :]  # (1, N)
        index = (lengths[:, None] - 1 - k).clamp(min=0)  # (B, N)
        return tokens.gather(1, index), lengths, lengths


@TASKS.register("modular-arithmetic-brackets")
class ModularArithmeticBracketsTask(FinalValueTask):
    """Modular arithmetic with brackets: the value in Z_5 of a fully bracketed expression.

    Tokens: digits 0–4, ``+`` 5, ``−`` 6, ``·`` 7, ``(`` 8, ``)`` 9. An expression of exactly n
    tokens is drawn as in the paper's code (with multiplication, as its experiments use):
    n = 1: ``d``; 2: ``−d``; 3: ``(d)``; 4: ``(−d)``; n ≥ 5: ``(L op R)`` with |L| uniform in
    [1, n − 4], |R| = n − 3 − |L| and op uniform in {+, −, ·}; digits uniform.
    Worked example: ``( 3 · ( 4 − ( − 2 ) ) )`` = 3 · 6 = 18 ≡ 3; as tokens
    ``8 3 7 8 4 6 8 6 2 9 9 9`` → label 3 at the last token.
    """

    Config = ContextFreeConfig
    io = IOSpec(output_dim=MODULUS, vocab_size=MODULUS + 5)

    def sample(self, lengths: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        draws = Draws(generator)
        return pad_rows([expression(n, draws) for n in lengths.tolist()]), lengths

    def solve(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return torch.tensor([evaluate_brackets(s) for s in rows(tokens, lengths)], dtype=torch.long)


def expression(n: int, draws: Draws) -> list[int]:
    """A random bracketed expression of exactly n ≥ 1 tokens (grammar in the task's docstring)."""
    digit = draws.randint(0, MODULUS)
    if n == 1:
        return [digit]
    if n == 2:
        return [MINUS, digit]
    if n == 3:
        return [OPEN, digit, CLOSE]
    if n == 4:
        return [OPEN, MINUS, digit, CLOSE]
    left = draws.randint(1, n - 3)
    op = draws.randint(PLUS, TIMES + 1)
    return [OPEN, *expression(left, draws), op, *expression(n - 3 - left, draws), CLOSE]


def evaluate_brackets(tokens: list[int]) -> int:
    """Value mod 5 of a fully bracketed expression, with an explicit stack (no recursion).

    Operands, operators and open brackets go on the stack; ``)`` reduces ``( L op R`` or
    ``( v`` to one value. A ``−`` where an operand is expected negates the next digit.
    Example: ``(1 − −2)`` → 3; ``( 3 · ( 4 − ( − 2 ) ) )`` → 18 ≡ 3.
    """
    stack: list[int | str] = []
    negate, expect_operand = False, True
    for token in tokens:
        if token < MODULUS:
            stack.append(-token if negate else token)
            negate, expect_operand = False, False
        elif token == MINUS and expect_operand:
            negate = True
        elif token == CLOSE:
            value = stack.pop()
            if stack[-1] != "(":
                op, left = stack.pop(), stack.pop()
                value = left + value if op == "+" else left - value if op == "-" else left * value
            stack[-1] = value % MODULUS  # replaces the "("
            expect_operand = False
        else:
            stack.append({OPEN: "(", PLUS: "+", MINUS: "-", TIMES: "*"}[token])
            expect_operand = True
    return int(stack[-1]) % MODULUS
