"""Echo: output the symbol seen ``delay`` steps ago — a memory probe for streams and TBPTT.

A stream of symbols s_t uniform over ``num_symbols``; the target at step t is s_{t−delay}
(nothing is scored for t < delay). Worked example, delay 2::

    input   3 1 0 2 2 1
    target  · · 3 1 0 2          (· = not scored)

Solving it needs a memory of exactly ``delay`` steps. Trained with stateful truncated BPTT of
chunk length k, a model only gets a gradient that spans ``delay`` steps from targets whose
source lies in the same chunk, i.e. when delay < k: it learns delays below k and stays at chance
(1 / num_symbols) beyond. Random-window training (``train_batch``) needs ``seq_len > delay``.
Evaluation runs one long held-out stream from a fresh state and reports the accuracy over the
scored steps (``val_acc``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task, classification_counts, summarise
from seqlab.tasks.stream import StreamTask


@dataclass
class EchoConfig:
    """Delay, alphabet, the training stream's length, random-window length, evaluation stream."""

    delay: int = 10
    num_symbols: int = 4
    stream_len: int = 200_000
    seq_len: int = 64
    eval_len: int = 4096

    def __post_init__(self) -> None:
        for name in ("delay", "num_symbols", "stream_len", "seq_len", "eval_len"):
            check_positive(name, getattr(self, name))
        if self.eval_len <= self.delay:
            raise ConfigError(f"eval_len: expected more than delay ({self.delay}) steps, got {self.eval_len}")


def echo_targets(symbols: Tensor, delay: int) -> Tensor:
    """(..., N) symbols -> (..., N) targets: s_{t−delay}, IGNORE for t < delay."""
    targets = torch.full_like(symbols, IGNORE)
    targets[..., delay:] = symbols[..., :-delay]
    return targets


@TASKS.register("echo")
class EchoTask(StreamTask, Task):
    """Many-to-many delayed recall over a symbol stream (stateful TBPTT or random windows)."""

    Config = EchoConfig
    primary_metric = "val_acc"
    train_defaults = {"steps": 600, "batch_size": 32, "lr": 3e-3, "warmup_steps": 20, "eval_every": 200}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = self.config
        generator = torch.Generator().manual_seed(seed)
        self.stream = torch.randint(0, c.num_symbols, (c.stream_len,), generator=generator)
        self.stream_targets = echo_targets(self.stream, c.delay)
        self.eval_stream = torch.randint(0, c.num_symbols, (1, c.eval_len), generator=generator)
        self.io = IOSpec(output_dim=c.num_symbols, vocab_size=c.num_symbols)

    @property
    def train_length(self) -> int:
        return self.config.seq_len

    def stream_pairs(self) -> tuple[Tensor, Tensor]:
        return self.stream, self.stream_targets

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        c = self.config
        if c.seq_len <= c.delay:
            raise ConfigError(
                f"echo: seq_len ({c.seq_len}) must exceed delay ({c.delay}) for window training"
            )
        starts = torch.randint(0, c.stream_len - c.seq_len + 1, (batch_size,), generator=generator)
        inputs = self.stream[starts[:, None] + torch.arange(c.seq_len)[None, :]]  # (B, T)
        targets = echo_targets(inputs, c.delay)
        return Batch(inputs, targets, targets != IGNORE)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        targets = echo_targets(self.eval_stream, self.config.delay)
        batch = Batch(self.eval_stream, targets, targets != IGNORE)
        return summarise([classification_counts(predict(batch), batch)], "val")
