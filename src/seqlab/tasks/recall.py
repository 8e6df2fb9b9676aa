"""Recall tasks: multi-query associative recall (MQAR) and selective copy.

Shape legend: B batch · T time · P key-value pairs · M tokens to copy.

* ``mqar`` — Arora et al. 2023 ("Zoology"): key-value pairs, then queries of the keys; predict
  each queried key's value at the query position. Attention and matrix memories (mLSTM) solve
  it at (T, P) = (64, 4), (128, 8), (256, 16); fixed-size recurrent states fall short as P grows.
* ``selective-copy`` — Gu & Dao 2023 (Mamba, after S4's copying task): a few data tokens
  scattered among noise; output them in order. Needs content-aware (selective) memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task, classification_counts, summarise
from seqlab.tasks.lengths import LengthConfig, LengthGeneralisationTask


@dataclass
class MQARConfig:
    """Zoology's settings: vocabulary 8192, (seq_len, num_kv_pairs) = (64, 4) by default.

    ``test_seq_len`` (None: ``seq_len``) evaluates a longer context with the same number of
    pairs — optional length generalisation; ``power_a`` shapes the query-distance power law.
    """

    vocab_size: int = 8192
    seq_len: int = 64
    num_kv_pairs: int = 4
    power_a: float = 0.01
    val_size: int = 1000
    test_seq_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "num_kv_pairs", "val_size"):
            check_positive(name, getattr(self, name))
        check_range("power_a", self.power_a, 1e-6, 1.0)
        for T in (self.seq_len, self.eval_seq_len):
            if T % 2 or 4 * self.num_kv_pairs > T:
                raise ConfigError(f"mqar: sequence length {T} must be even and ≥ 4 · num_kv_pairs")
        if self.vocab_size // 2 - 1 < self.num_kv_pairs or self.vocab_size <= self.eval_seq_len:
            raise ConfigError(
                f"mqar: vocab_size {self.vocab_size} must exceed the sequence length and hold "
                f"num_kv_pairs={self.num_kv_pairs} distinct keys in its first half"
            )

    @property
    def eval_seq_len(self) -> int:
        return self.seq_len if self.test_seq_len is None else self.test_seq_len


def mqar_layout(keys: Tensor, values: Tensor, slots: Tensor, fill: Tensor) -> tuple[Tensor, Tensor]:
    """Zoology's MQAR layout: ``k_1 v_1 … k_P v_P`` then each key again at query slot ``s``.

    Slot s is position 2P + 2s; its target is that key's value; everything else in ``fill``
    (random tokens, never scored) stays. Example, P = 2, T = 12::

        keys [2, 4], values [8, 7], slots [3, 0], fill all 0
        inputs   2 8 4 7 | 4 0 0 0 0 0 2 0
        targets  · · · · | 7 · · · · · 8 ·

    Args:
        keys, values: (B, P) token ids; slots: (B, P) distinct query slots in [0, (T − 2P) / 2);
            fill: (B, T) token ids.
    Returns:
        inputs (B, T), targets (B, T) with IGNORE off the query positions.
    """
    P = keys.shape[1]
    inputs = fill.clone()
    inputs[:, 0 : 2 * P : 2], inputs[:, 1 : 2 * P : 2] = keys, values
    queries = 2 * P + 2 * slots  # (B, P)
    inputs.scatter_(1, queries, keys)
    targets = torch.full_like(inputs, IGNORE).scatter_(1, queries, values)
    return inputs, targets


def distinct(rows: int, n: int, k: int, generator: torch.Generator) -> Tensor:
    """(rows, k) distinct integers uniform over [0, n), in random order: the top k of n uniforms."""
    return torch.rand(rows, n, generator=generator).topk(k, dim=1).indices


@TASKS.register("mqar")
class MQARTask(Task):
    """Multi-query associative recall; accuracy over the queries (``val_acc``, ``test_acc``).

    Keys are distinct, uniform over ``[1, V/2)``; values distinct, uniform over ``[V/2, V)``.
    Query slots are drawn without replacement with P(slot s) ∝ (s + 1)^(a − 1) (a = ``power_a``:
    most queries come soon after the pairs, a few far); the other positions hold uniform random
    tokens over the whole vocabulary, as in Zoology's ``random_non_queries``.
    """

    Config = MQARConfig
    primary_metric = "val_acc"
    train_defaults = {"steps": 2000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "eval_every": 500}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        V = self.config.vocab_size
        self.io = IOSpec(output_dim=V, vocab_size=V)

    @property
    def train_length(self) -> int:
        return self.config.seq_len

    def make_batch(self, batch_size: int, seq_len: int, generator: torch.Generator) -> Batch:
        """``batch_size`` MQAR sequences of ``seq_len`` tokens (no padding)."""
        c, B, P = self.config, batch_size, self.config.num_kv_pairs
        half = c.vocab_size // 2
        keys = 1 + distinct(B, half - 1, P, generator)
        values = half + distinct(B, c.vocab_size - half, P, generator)
        space = (seq_len - 2 * P) // 2
        weights = torch.arange(1, space + 1, dtype=torch.float64) ** (c.power_a - 1)
        slots = torch.multinomial(weights.expand(B, space), P, generator=generator)
        fill = torch.randint(0, c.vocab_size, (B, seq_len), generator=generator)
        inputs, targets = mqar_layout(keys, values, slots, fill)
        return Batch(inputs, targets, targets != IGNORE)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        return self.make_batch(batch_size, self.config.seq_len, generator)

    def evaluate(self, predict: Predict, batch_size: int) -> dict:
        c, out = self.config, {}
        for prefix, T, offset in [("val", c.seq_len, 1), ("test", c.eval_seq_len, 2)]:
            generator = torch.Generator().manual_seed(self.seed + offset)
            counts = []
            for start in range(0, c.val_size, batch_size):
                batch = self.make_batch(min(batch_size, c.val_size - start), T, generator)
                counts.append(classification_counts(predict(batch), batch))
            out |= summarise(counts, prefix)
        return out


@dataclass
class SelectiveCopyConfig(LengthConfig):
    """Data alphabet, tokens to copy; region lengths 8–40 for training, 41–256 for testing.

    Mamba's setting is 16 tokens in a sequence of 4096 over a vocabulary of 16 (14 data symbols,
    noise and the marker), one fixed length: ``num_tokens=16``, ``min_len=max_len=4080`` — far
    beyond a CPU budget, hence the short defaults here.
    """

    num_symbols: int = 14
    num_tokens: int = 8
    min_len: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("num_symbols", self.num_symbols)
        check_positive("num_tokens", self.num_tokens)
        if self.min_len < self.num_tokens:
            raise ConfigError(
                f"selective-copy: min_len ({self.min_len}) must be at least num_tokens ({self.num_tokens})"
            )


def selective_copy_layout(
    data: Tensor, positions: Tensor, lengths: Tensor, noise: int, marker: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Data tokens at ``positions`` of a noise region of ``lengths``, then M markers to read at.

    Example, M = 2, noise N = 14, marker K = 15, region of 6::

        data [3, 1], positions [1, 4]
        inputs   N 3 N N 1 N K K
        targets  · · · · · · 3 1

    Args:
        data: (B, M) symbols; positions: (B, M) increasing positions < lengths; lengths: (B,).
    Returns:
        inputs (B, T), targets (B, T), mask (B, T) of real tokens, with T = max(lengths) + M.
    """
    B, M = data.shape
    total = lengths + M
    T = int(total.max())
    pos, n = torch.arange(T)[None, :], lengths[:, None]  # (1, T), (B, 1)
    mask = pos < total[:, None]  # (B, T)
    inputs = torch.where(pos < n, noise, marker).expand(B, T).clone()
    inputs.scatter_(1, positions, data)
    inputs = inputs * mask
    k = (pos - n).clamp(0, M - 1)  # (B, T): index of the copied token
    is_out = (pos >= n) & mask
    targets = torch.where(is_out, data.gather(1, k), torch.full_like(inputs, IGNORE))
    return inputs, targets, mask


@TASKS.register("selective-copy")
class SelectiveCopyTask(LengthGeneralisationTask):
    """Selective copy (Mamba, Gu & Dao 2023): recall the non-noise tokens in order.

    A region of n tokens holds M = ``num_tokens`` data symbols (uniform over ``num_symbols``) at
    uniformly chosen positions, noise elsewhere; then M marker tokens, at which the M symbols are
    scored in order. n is the length that generalises (train 8–40, test 41–256 by default).
    Tokens: data 0..S−1, noise S, marker S + 1.
    """

    Config = SelectiveCopyConfig
    primary_metric = "test_acc"
    train_defaults = {"steps": 1500, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50, "eval_every": 500}

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        S = self.config.num_symbols
        self.noise, self.marker = S, S + 1
        self.io = IOSpec(output_dim=S, vocab_size=S + 2)

    def sequence_tokens(self, n: int) -> int:
        """A region of n tokens, then ``num_tokens`` markers."""
        return n + self.config.num_tokens

    def make_batch(self, lengths: Tensor, generator: torch.Generator) -> Batch:
        """Regions of the given lengths (B,) with data at uniform distinct positions."""
        c, B, N = self.config, len(lengths), int(lengths.max())
        if int(lengths.min()) < c.num_tokens:
            raise ConfigError(f"selective-copy: regions must hold num_tokens={c.num_tokens} tokens")
        data = torch.randint(0, c.num_symbols, (B, c.num_tokens), generator=generator)
        scores = torch.rand(B, N, generator=generator)
        scores = torch.where(torch.arange(N) < lengths[:, None], scores, torch.full_like(scores, -1.0))
        positions = scores.topk(c.num_tokens, dim=1).indices.sort(dim=1).values  # (B, M)
        inputs, targets, mask = selective_copy_layout(data, positions, lengths, self.noise, self.marker)
        return Batch(inputs, targets, targets != IGNORE, mask, lengths + c.num_tokens)
