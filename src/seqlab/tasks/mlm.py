"""Masked-language-model pre-training (BERT, Devlin et al. 2019) on characters of a text.

Shape legend: B batch · T time · V vocabulary (characters + 4 special tokens).

Each sequence is ``[CLS] window [SEP]`` — or, with ``next_sentence``, ``[CLS] A [SEP] B [SEP]``
with segment ids 0 / 1, where B is the text right after A (label 1) or a random window (label 0),
half and half. BERT's corruption (:func:`mask_tokens`): each non-special token is selected with
probability ``mask_rate`` (15 %); a selected token becomes [MASK] 80 % of the time, a random
regular token 10 %, and stays unchanged 10 %; the loss is the cross-entropy of the original token
at the selected positions only (plus the next-sentence cross-entropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_positive, check_range
from seqlab.data import CharTokenizer, read_text
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")  # ids V_chars + 0..3


def mask_tokens(
    tokens: Tensor,
    maskable: Tensor,
    mask_id: int,
    num_regular: int,
    generator: torch.Generator,
    rate: float = 0.15,
    mask_p: float = 0.8,
    random_p: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """BERT's corruption of ``tokens`` (B, T).

    Args:
        maskable: (B, T) bool, the positions that may be selected (not special, not padding).
        mask_id: the [MASK] id; num_regular: random replacements are drawn from [0, num_regular).

    Returns:
        (inputs (B, T) corrupted tokens, targets (B, T): the original at selected positions,
        IGNORE elsewhere).
    """
    selected = (torch.rand(tokens.shape, generator=generator) < rate) & maskable
    r = torch.rand(tokens.shape, generator=generator)
    replacements = torch.randint(0, num_regular, tokens.shape, generator=generator)
    inputs = torch.where(selected & (r < mask_p + random_p), replacements, tokens)
    inputs = torch.where(selected & (r < mask_p), torch.full_like(tokens, mask_id), inputs)
    return inputs, torch.where(selected, tokens, torch.full_like(tokens, IGNORE))


@dataclass
class MLMConfig:
    """``text`` (None = the built-in corpus), sequence length including special tokens, the
    selection rate, the next-sentence objective, the held-out fraction and evaluation size."""

    text: str | None = None
    seq_len: int = 128
    mask_rate: float = 0.15
    next_sentence: bool = False
    val_fraction: float = 0.1
    eval_windows: int = 128

    def __post_init__(self) -> None:
        check_positive("eval_windows", self.eval_windows)
        check_range("mask_rate", self.mask_rate, 0.01, 1.0)
        check_range("val_fraction", self.val_fraction, 0.01, 0.5)
        if self.seq_len < 8:
            raise ConfigError(
                f"seq_len: expected at least 8 (room for [CLS], [SEP] and text), got {self.seq_len}"
            )


@TASKS.register("mlm")
class MaskedLMTask(Task):
    """BERT-style masked-LM (+ optional next-sentence) pre-training on characters."""

    Config = MLMConfig
    primary_metric = "val_loss"
    train_defaults = {"steps": 1000, "batch_size": 32, "lr": 3e-3, "warmup_steps": 100, "eval_every": 500}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = self.config
        text = read_text(c.text)
        self.tokenizer = CharTokenizer.from_text(text)
        n = self.tokenizer.vocab_size
        self.pad, self.cls, self.sep, self.mask = range(n, n + 4)
        data = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        split = int(len(data) * (1 - c.val_fraction))
        self.train_data, self.val_data = data[:split], data[split:]
        if len(self.val_data) < 2 * c.seq_len:
            raise ConfigError(
                f"mlm: the held-out split has {len(self.val_data)} characters, fewer than 2·seq_len"
            )
        V = n + len(SPECIALS)
        self.io = IOSpec(output_dim=V + (2 if c.next_sentence else 0), vocab_size=V)

    @property
    def train_length(self) -> int:
        """``[CLS] window [SEP]`` is seq_len tokens; ``[CLS] A [SEP] B [SEP]`` is 2·⌊(seq_len − 3)/2⌋ + 3."""
        c = self.config
        return 2 * ((c.seq_len - 3) // 2) + 3 if c.next_sentence else c.seq_len

    def make_batch(self, data: Tensor, batch_size: int, generator: torch.Generator) -> Batch:
        c, B = self.config, batch_size
        if not c.next_sentence:
            L = c.seq_len - 2
            starts = torch.randint(0, len(data) - L, (B,), generator=generator)
            text = data[starts[:, None] + torch.arange(L)]  # (B, L)
            tokens = torch.cat([torch.full((B, 1), self.cls), text, torch.full((B, 1), self.sep)], 1)
            segments, labels = None, None
        else:
            L = (c.seq_len - 3) // 2
            a_start = torch.randint(0, len(data) - 2 * L, (B,), generator=generator)
            labels = (torch.rand(B, generator=generator) < 0.5).long()  # 1 = B follows A
            random_start = torch.randint(0, len(data) - L, (B,), generator=generator)
            b_start = torch.where(labels.bool(), a_start + L, random_start)
            a, b = data[a_start[:, None] + torch.arange(L)], data[b_start[:, None] + torch.arange(L)]
            cls, sep = torch.full((B, 1), self.cls), torch.full((B, 1), self.sep)
            tokens = torch.cat([cls, a, sep, b, sep], 1)  # (B, 2L + 3)
            segments = (torch.arange(tokens.shape[1]) > L + 1).long().expand(B, -1)
        maskable = tokens < self.tokenizer.vocab_size
        inputs, targets = mask_tokens(
            tokens, maskable, self.mask, self.tokenizer.vocab_size, generator, c.mask_rate
        )
        return Batch(inputs, targets, targets != IGNORE, segments=segments, labels=labels)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        return self.make_batch(self.train_data, batch_size, generator)

    def loss(self, outputs: Tensor, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        V = self.io.vocab_size
        tm = batch.target_mask
        loss = F.cross_entropy(outputs[..., :V][tm], batch.targets[tm], label_smoothing=label_smoothing)
        if self.config.next_sentence:
            loss = loss + F.cross_entropy(outputs[:, 0, V:], batch.labels, label_smoothing=label_smoothing)
        return loss

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        """Masked-token loss / accuracy (and next-sentence accuracy) on the held-out text, with a
        fixed corruption (seeded), so evaluations are comparable across steps and runs."""
        generator = torch.Generator().manual_seed(self.seed + 1)
        V, n = self.io.vocab_size, self.config.eval_windows
        loss_sum = correct = count = nsp_correct = 0.0
        for start in range(0, n, batch_size):
            batch = self.make_batch(self.val_data, min(batch_size, n - start), generator)
            outputs = predict(batch)
            tm = batch.target_mask
            logits, targets = outputs[..., :V][tm], batch.targets[tm]
            loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
            correct += float((logits.argmax(-1) == targets).sum())
            count += float(tm.sum())
            if batch.labels is not None:
                nsp_correct += float((outputs[:, 0, V:].argmax(-1) == batch.labels).sum())
        loss = loss_sum / max(count, 1.0)
        out = {"val_loss": loss, "val_acc": correct / max(count, 1.0), "val_ppl": math.exp(loss)}
        if self.config.next_sentence:
            out["val_nsp_acc"] = nsp_correct / n
        return out

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save(Path(run_dir) / "tokenizer.json")
