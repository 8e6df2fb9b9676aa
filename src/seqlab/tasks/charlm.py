"""Language modelling on the built-in corpus, a user's text file or a registered text dataset.

Shape legend: B batch · T window length in tokens.

Next-token prediction on random windows of the training split; evaluation on fixed,
non-overlapping windows from the start of the held-out split. Tokens are characters by
default (the historical char LM: the sorted distinct characters of the text, no special
tokens), or words / BPE / WordPiece / Unigram pieces from a tokenizer trained on the
**training split only** (:mod:`seqlab.data.tokenizers`).

Metrics:

- ``val_loss``: cross-entropy in nats **per token** (per character for the char LM);
- ``val_ppl = exp(val_loss)``: perplexity per token;
- ``val_bpc``: **bits per character** of the evaluated text,
  ``Σ nats / ln 2 / (characters the predicted tokens cover)`` — the number that compares a
  char model with a subword model fairly (for the char LM it is ``val_loss / ln 2``). A
  token's characters are its span in the original text, so the whitespace a WordPiece or
  word tokenizer drops between tokens is counted too; [UNK] tokens make word/WordPiece/Unigram
  bpc optimistic (byte-level BPE and the char LM have none);
- with ``ngram_baseline``: ``val_bpc_unigram`` / ``val_bpc_bigram``, the bits per character of an
  add-k unigram and an interpolated Kneser–Ney bigram fitted on the training ids and scored on the
  same held-out tokens (:mod:`seqlab.evaluation.lm_baselines`) — what the model must beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from seqlab.config import check_one_source, check_positive, check_range
from seqlab.data import Tokenizer, read_text
from seqlab.data.tokendir import open_token_dir, train_lm_tokenizer
from seqlab.data.tokenfile import TokenFile
from seqlab.data.tokenizers import SUBWORD_KINDS
from seqlab.data.types import Text
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS, Batch, Predict, Task, bits
from seqlab.tasks.stream import StreamTask


def token_ends(spans: list[tuple[int, int]]) -> torch.Tensor:
    """(N,) the character position where token i ends (made monotone), from its (start, end) spans."""
    return torch.tensor([end for _, end in spans] or [0], dtype=torch.long).cummax(0).values


@dataclass
class CharLMConfig:
    """Where the text comes from, how it is tokenised, and the windows.

    ``text``: path of a UTF-8 file; ``dataset``: a registered text dataset (``seqlab data
    list``); ``tokens``: a token directory made by ``seqlab data prepare tokens`` (a corpus
    larger than RAM, memory-mapped; its own tokenizer, so the tokenizer options are not used)
    — at most one of the three (none = the built-in Shakespeare tragedies).
    ``val_fraction`` of a text is held out (its tail); a dataset brings its own
    ``train`` / ``validation`` split and ignores it. ``tokenizer``: ``char`` (default),
    ``word`` (words keep the space before them, so text round-trips), ``bpe`` (byte-level),
    ``wordpiece`` or ``unigram``. ``vocab_size``: the largest vocabulary, special tokens
    included (None: no limit for char/word, 1024 for the subword kinds). ``min_frequency``:
    the fewest occurrences of a character / word / BPE merge / WordPiece word to be kept.
    ``char`` with neither limit keeps the historical vocabulary; with one, it is trained like
    the others and has special tokens and [UNK]. ``seq_len``: window length in tokens;
    ``eval_windows``: how many held-out windows to evaluate. ``ngram_baseline``: also report the
    unigram / bigram bits per character on those windows (computed once: < 1 s on shakespeare).
    """

    text: str | None = None
    dataset: str | None = None
    tokens: str | None = None
    tokenizer: Literal["char", "word", "bpe", "wordpiece", "unigram"] = "char"
    vocab_size: int | None = None
    min_frequency: int = 1
    seq_len: int = 128
    val_fraction: float = 0.1
    eval_windows: int = 64
    ngram_baseline: bool = False

    def __post_init__(self) -> None:
        check_one_source(text=self.text, dataset=self.dataset, tokens=self.tokens)
        check_positive("seq_len", self.seq_len)
        check_positive("eval_windows", self.eval_windows)
        check_positive("min_frequency", self.min_frequency)
        if self.vocab_size is not None:
            check_positive("vocab_size", self.vocab_size)
        check_range("val_fraction", self.val_fraction, 0.01, 0.5)
        if self.tokens is not None:  # the directory fixed the tokenizer and the held-out text
            changed = [
                f"{k}={v!r}"
                for k, v, default in [
                    ("tokenizer", self.tokenizer, "char"),
                    ("vocab_size", self.vocab_size, None),
                    ("min_frequency", self.min_frequency, 1),
                    ("val_fraction", self.val_fraction, 0.1),
                ]
                if v != default
            ]
            if changed:
                raise ConfigError(
                    f"tokens={self.tokens!r} brings its own tokenizer and held-out text; drop "
                    f"{', '.join(changed)} (set them in `seqlab data prepare tokens`)"
                )


@TASKS.register("charlm")
class CharLMTask(StreamTask, Task):
    """Many-to-many next-token prediction (random windows, or a stream for TBPTT)."""

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
        self.train_tokens: TokenFile | None = None
        if c.tokens is not None:
            self.tokenizer, self.train_tokens, val_text = open_token_dir(c.tokens)
            self.train_data = self.train_tokens
        else:
            train_text, val_text = self._texts()
            self.tokenizer = self._train_tokenizer(train_text, val_text)
            self.train_data = torch.tensor(self.tokenizer.encode(train_text), dtype=torch.long)
        val_ids, spans = self.tokenizer.encode_with_offsets(val_text)
        self.val_data = torch.tensor(val_ids, dtype=torch.long)
        # val_ends[i]: the character position where token i ends (monotone), for bits per character
        self.val_ends = token_ends(spans)
        self._baseline: dict[str, float] | None = None
        kind = self.tokenizer.kind
        unit = "characters" if kind == "char" else f"{kind} tokens"
        for name, part in [("training", self.train_data), ("held-out", self.val_data)]:
            if len(part) < c.seq_len + 1:
                raise ConfigError(
                    f"charlm: the {name} split has {len(part)} {unit}, fewer than "
                    f"seq_len + 1 = {c.seq_len + 1}; use a longer text or a smaller seq_len"
                )
        V = self.tokenizer.vocab_size
        self.io = IOSpec(output_dim=V, vocab_size=V, vocab=tuple(self.tokenizer.words))

    def _texts(self) -> tuple[str, str]:
        """(training text, held-out text) from the dataset, the user's file or the built-in corpus."""
        c = self.config
        if c.dataset is None:
            text = read_text(c.text)
            split = int(len(text) * (1 - c.val_fraction))
            return text[:split], text[split:]
        from seqlab.data.datasets import load_dataset

        splits = load_dataset(c.dataset)
        train, val = splits.get("train"), splits.get("validation")
        if not (isinstance(train, Text) and isinstance(val, Text)):
            raise ConfigError(
                f"dataset: {c.dataset!r} is not a text dataset with train and validation splits "
                f"(it has {', '.join(f'{k}: {type(v).__name__}' for k, v in splits.items())})"
            )
        return train.text, val.text

    def _train_tokenizer(self, train_text: str, val_text: str) -> Tokenizer:
        """The task's tokenizer, learnt from ``train_text`` (the historical char one: from both)."""
        c = self.config
        pieces = train_text.splitlines(keepends=True) if c.tokenizer in SUBWORD_KINDS else [train_text]
        return train_lm_tokenizer(
            c.tokenizer, pieces, val_text, vocab_size=c.vocab_size, min_frequency=c.min_frequency
        )

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

    def stream_rows(self, batch_size: int) -> int:
        if self.train_tokens is None:
            return super().stream_rows(batch_size)
        return self.train_tokens.stream_rows(batch_size)

    def stream_batch(self, batch_size: int, start: int, length: int) -> Batch:
        if self.train_tokens is None:
            return super().stream_batch(batch_size, start, length)
        inputs, targets = self.train_tokens.stream_batch(batch_size, start, length)  # read from disk
        return Batch(inputs, targets, torch.ones_like(targets, dtype=torch.bool))

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        if self.train_tokens is not None:  # memory-mapped: only the windows are read
            inputs, targets = self.train_tokens.random_windows(batch_size, self.config.seq_len, generator)
            return Batch(inputs, targets, torch.ones_like(targets, dtype=torch.bool))
        high = len(self.train_data) - self.config.seq_len - 1
        starts = torch.randint(0, high + 1, (batch_size,), generator=generator)
        return self._windows(self.train_data, starts)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        T = self.config.seq_len
        n = min(self.config.eval_windows, (len(self.val_data) - 1) // T)
        starts = torch.arange(n) * T  # non-overlapping windows from the start of the held-out split
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
        # the predicted tokens are 1 .. n*T: they cover the characters after token 0's end
        chars = max(int(self.val_ends[n * T] - self.val_ends[0]), 1)
        loss = total / count
        out = {"val_loss": loss, "val_bpc": bits(total / chars), "val_ppl": math.exp(loss)}
        return out | (self.baseline_metrics(n * T + 1) if self.config.ngram_baseline else {})

    def baseline_metrics(self, tokens: int) -> dict[str, float]:
        """``val_bpc_unigram`` / ``val_bpc_bigram`` on the first ``tokens`` held-out ids (cached)."""
        if self._baseline is None:
            from seqlab.evaluation.lm_baselines import ngram_bpc  # evaluation sits above tasks

            train = self.train_tokens.data if self.train_tokens is not None else self.train_data
            V = self.tokenizer.vocab_size
            scores = ngram_bpc(train, self.val_data[:tokens], self.val_ends, V, orders=(1, 2))
            self._baseline = {"val_bpc_unigram": scores[1]["bpc"], "val_bpc_bigram": scores[2]["bpc"]}
        return self._baseline

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")
