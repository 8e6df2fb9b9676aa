"""Character-level language modelling on the built-in corpus or a user's text file.

Next-character prediction on random windows of the training split; evaluation on fixed,
non-overlapping windows of the held-out tail of the text. Metrics: loss (nats/char),
bits per character ``bpc = loss / ln 2`` and perplexity ``exp(loss)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from seqlab.config import check_positive, check_range
from seqlab.data import CharTokenizer, read_text
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS, Batch, Predict, Task, bits
from seqlab.tasks.stream import StreamTask


@dataclass
class CharLMConfig:
    """``text``: path of a UTF-8 file (None = built-in Shakespeare tragedies); window length;
    the fraction of the text held out (its tail) and how many windows of it to evaluate."""

    text: str | None = None
    seq_len: int = 128
    val_fraction: float = 0.1
    eval_windows: int = 64

    def __post_init__(self) -> None:
        check_positive("seq_len", self.seq_len)
        check_positive("eval_windows", self.eval_windows)
        check_range("val_fraction", self.val_fraction, 0.01, 0.5)


@TASKS.register("charlm")
class CharLMTask(StreamTask, Task):
    """Many-to-many next-token prediction over characters (random windows, or a stream for TBPTT)."""

    Config = CharLMConfig
    primary_metric = "val_bpc"
    train_defaults = {
        "steps": 1200,
        "batch_size": 32,
        "lr": 4e-3,
        "warmup_steps": 50,
        "eval_every": 400,
        "eval_batch_size": 64,
    }

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = self.config
        text = read_text(c.text)
        self.tokenizer = CharTokenizer.from_text(text)
        data = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        split = int(len(data) * (1 - c.val_fraction))
        self.train_data, self.val_data = data[:split], data[split:]
        for name, part in [("training", self.train_data), ("held-out", self.val_data)]:
            if len(part) < c.seq_len + 1:
                raise ConfigError(
                    f"charlm: the {name} split has {len(part)} characters, fewer than "
                    f"seq_len + 1 = {c.seq_len + 1}; use a longer text or a smaller seq_len"
                )
        self.io = IOSpec(output_dim=self.tokenizer.vocab_size, vocab_size=self.tokenizer.vocab_size)

    def _windows(self, data: torch.Tensor, starts: torch.Tensor) -> Batch:
        T = self.config.seq_len
        idx = starts[:, None] + torch.arange(T + 1)[None, :]  # (B, T+1)
        chunk = data[idx]
        inputs, targets = chunk[:, :-1], chunk[:, 1:]
        return Batch(inputs, targets, torch.ones_like(targets, dtype=torch.bool))

    @property
    def train_length(self) -> int:
        return self.config.seq_len

    def stream_data(self) -> torch.Tensor:
        return self.train_data

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        high = len(self.train_data) - self.config.seq_len - 1
        starts = torch.randint(0, high + 1, (batch_size,), generator=generator)
        return self._windows(self.train_data, starts)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        T = self.config.seq_len
        n = min(self.config.eval_windows, (len(self.val_data) - 1) // T)
        starts = torch.arange(n) * T  # non-overlapping windows from the start of the held-out tail
        total, count = 0.0, 0
        for i in range(0, n, batch_size):
            batch = self._windows(self.val_data, starts[i : i + batch_size])
            logits = predict(batch)
            total += float(
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), reduction="sum"
                )
            )
            count += batch.targets.numel()
        loss = total / count
        return {"val_loss": loss, "val_bpc": bits(loss), "val_ppl": math.exp(loss)}

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")
