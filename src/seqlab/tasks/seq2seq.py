"""Synthetic sequence-to-sequence tasks: ``reverse`` and ``sort`` a string of symbols.

Shape legend: B batch · S source length · T target length (n + 1).

Source ``x_1 … x_n`` (n uniform in [min_len, max_len], symbols uniform over ``num_symbols``);
target ``y_1 … y_n`` = the reversed / sorted source. The decoder is fed ``BOS y_1 … y_n`` and
scored on ``y_1 … y_n EOS`` (teacher forcing). Evaluation decodes greedily from BOS and counts a
sequence correct only if every token and the EOS after it match (``*_seq_acc``, exact match);
``*_acc`` / ``*_loss`` are the teacher-forced token accuracy and cross-entropy. The test set has
longer sources (length generalisation), scored per length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, classification_counts, lengths_mask, summarise
from seqlab.tasks.lengths import LengthConfig, LengthGeneralisationTask


@dataclass
class TransductionConfig(LengthConfig):
    """Alphabet size; training lengths 1–12, test lengths 13–16."""

    num_symbols: int = 10
    max_len: int = 12
    test_min_len: int = 13
    test_max_len: int = 16
    test_per_length: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("num_symbols", self.num_symbols)


class TransductionTask(LengthGeneralisationTask):
    """Base of the synthetic string transductions; subclasses define :meth:`transform`."""

    Config = TransductionConfig
    primary_metric = "val_seq_acc"
    train_defaults = {"steps": 1500, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "eval_every": 500}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        S = self.config.num_symbols
        self.pad, self.bos, self.eos = S, S + 1, S + 2
        V = S + 3
        self.io = IOSpec(output_dim=V, vocab_size=V, source_vocab_size=V, shared_vocab=True)

    def transform(self, symbols: Tensor, lengths: Tensor) -> Tensor:
        """symbols (B, S) with the first n of each row real -> targets (B, S), first n real."""
        raise NotImplementedError

    def sequence_tokens(self, n: int) -> int:
        """Source + target: n source tokens and n + 1 decoder tokens (BOS y / y EOS) = 2n + 1.

        Source + target, not max(source, target) as fairseq counts: the encoder and the decoder
        both hold activations, so a batch costs ``B · (S + T)`` token slots — and a budget then
        buys the same batch as the decoder-only ``copy`` layout ``x SEP blanks`` (also 2n + 1).
        """
        return 2 * n + 1

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        B, n_max = len(lengths), int(lengths.max())
        symbols = torch.randint(0, self.config.num_symbols, (B, n_max), generator=generator)
        source_mask = lengths_mask(lengths, n_max)  # (B, S)
        source = symbols.masked_fill(~source_mask, self.pad)
        y = self.transform(source, lengths)  # (B, S)
        T = n_max + 1
        mask = lengths_mask(lengths + 1, T)  # (B, T): BOS + n tokens in, n tokens + EOS out
        pos = torch.arange(T)[None, :]
        y_pad = torch.cat([y, torch.full((B, 1), self.pad)], dim=1)  # (B, T)
        targets = torch.where(pos == lengths[:, None], self.eos, y_pad).masked_fill(~mask, IGNORE)
        inputs = torch.cat([torch.full((B, 1), self.bos), y], dim=1).masked_fill(~mask, self.pad)
        return Batch(inputs, targets, mask, mask, lengths, source, source_mask)

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        c = self.config
        per_length = max(1, c.val_size // (c.max_len - c.min_len + 1))
        val = self._evaluate(predict, range(c.min_len, c.max_len + 1), per_length, batch_size, 1)
        test = self._evaluate(
            predict, range(c.test_min_len, c.test_max_len + 1), c.test_per_length, batch_size, 2
        )
        out = {f"val_{k}": v for k, v in val.items() if k != "seq_acc_by_length"}
        return out | {f"test_{k}": v for k, v in test.items()}

    def _evaluate(
        self, predict: Predict, lengths: range, per_length: int, batch_size: int, seed: int
    ) -> dict:
        """Teacher-forced loss/accuracy and greedy-decoded exact match, averaged over lengths."""
        generator = torch.Generator().manual_seed(self.seed + seed)
        all_lengths = torch.tensor(list(lengths)).repeat_interleave(per_length)
        counts: list[dict[str, float]] = []
        exact: dict[int, list[float]] = {}
        for start in range(0, len(all_lengths), batch_size):
            batch = self.make_batch(all_lengths[start : start + batch_size], generator)
            counts.append(classification_counts(predict(batch), batch))
            T = batch.targets.shape[1]
            decoded = predict.decode(batch, T + 1, self.bos, self.eos, self.pad)[:, :T]  # (B, ≤T)
            decoded = torch.nn.functional.pad(decoded, (0, T - decoded.shape[1]), value=self.pad)
            right = (decoded == batch.targets) | ~batch.target_mask  # (B, T)
            for n, ok in zip(batch.lengths.tolist(), right.all(dim=1).tolist(), strict=True):
                exact.setdefault(n, []).append(float(ok))
        by_length = {n: sum(v) / len(v) for n, v in sorted(exact.items())}
        teacher = summarise(counts, "x")
        return {
            "loss": teacher["x_loss"],
            "acc": teacher["x_acc"],
            "seq_acc": sum(by_length.values()) / len(by_length),
            "seq_acc_by_length": {n: round(a, 4) for n, a in by_length.items()},
        }


@TASKS.register("reverse")
class ReverseTask(TransductionTask):
    """Seq2seq: output the source string reversed (exact-match accuracy, greedy decoding)."""

    def transform(self, symbols: Tensor, lengths: Tensor) -> Tensor:
        pos = torch.arange(symbols.shape[1])[None, :]
        index = (lengths[:, None] - 1 - pos).clamp(min=0)  # (B, S)
        return symbols.gather(1, index).masked_fill(pos >= lengths[:, None], self.pad)


@TASKS.register("sort")
class SortTask(TransductionTask):
    """Seq2seq: output the source symbols in ascending order (exact-match accuracy)."""

    def transform(self, symbols: Tensor, lengths: Tensor) -> Tensor:
        # pads (= num_symbols) are larger than every symbol, so they sort to the end
        return symbols.sort(dim=1).values
