"""The task contract: a task makes batches, owns the loss and computes the metrics.

Shape legend: B batch · T time · O model outputs per step.

Tasks know nothing about models: they publish an :class:`~seqlab.spec.IOSpec` and evaluate
through a ``predict(batch) -> outputs (B, T, O)`` callable the trainer hands them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import from_dict
from seqlab.errors import ConfigError
from seqlab.registry import Registry
from seqlab.spec import IOSpec

IGNORE = -100  # target id of positions that are not scored


@dataclass
class Batch:
    """One batch. ``targets`` are ids (B, T) with IGNORE at unscored steps, or floats (B, T, O)."""

    inputs: Tensor  # (B, T) token ids or (B, T, F) features
    targets: Tensor  # (B, T) long or (B, T, O) float
    target_mask: Tensor  # (B, T) bool: positions the loss and metrics score
    mask: Tensor | None = None  # (B, T) bool: real input tokens (None = no padding)
    lengths: Tensor | None = None  # (B,) sequence lengths, for per-length metrics
    source: Tensor | None = None  # (B, S) source token ids of sequence-to-sequence tasks
    source_mask: Tensor | None = None  # (B, S) bool: real source tokens
    segments: Tensor | None = None  # (B, T) segment ids (BERT's sentence A / B)
    labels: Tensor | None = None  # (B,) one label per sequence (e.g. is-next-sentence)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{k: None if v is None else v.to(device) for k, v in vars(self).items()})

    def rows(self, index: Tensor) -> Batch:
        """The sub-batch of rows ``index`` (bool mask or ids)."""
        return Batch(**{k: None if v is None else v[index] for k, v in vars(self).items()})


class Predict(Protocol):
    """What a task evaluates through (the trainer builds it around a model, in eval mode)."""

    def __call__(self, batch: Batch) -> Tensor:
        """Teacher-forced outputs (B, T, O) for ``batch.inputs`` (and ``batch.source``)."""
        ...

    def decode(self, batch: Batch, max_new_tokens: int, bos: int, eos: int, pad: int) -> Tensor:
        """Greedy free-running decoding from ``bos`` (seq2seq): (B, N) tokens, ``pad`` after EOS."""
        ...


TASKS: Registry[type[Task]] = Registry("task")


class Task:
    """Base class. Subclasses set ``Config`` (a dataclass), ``io`` and the methods below.

    ``train_defaults`` are train-config values this task needs to learn in a reasonable time
    (applied before the user's overrides); ``primary_metric`` names the headline metric.
    """

    Config: ClassVar[type]
    train_defaults: ClassVar[dict[str, Any]] = {}
    primary_metric: ClassVar[str] = "val_loss"
    io: IOSpec
    train_length: int  # padded tokens of the longest training sequence (defined by each task)

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        self.config = from_dict(self.Config, config if config is not None else {})
        self.seed = seed

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def train_batch_tokens(self, max_tokens: int, generator: torch.Generator) -> Batch:
        """A training batch of at most ``max_tokens`` padded tokens: ``B · T ≤ max_tokens``.

        This default serves fixed-length tasks: ``B = max_tokens // train_length`` sequences
        from :meth:`train_batch`, e.g. ``max_tokens=1000`` with ``train_length=128`` gives
        B = 7 (896 tokens). Variable-length tasks override it with length bucketing
        (:class:`~seqlab.tasks.lengths.LengthGeneralisationTask`).

        Raises:
            ConfigError: ``max_tokens`` is not positive or is smaller than one training
                sequence, or the task defines no ``train_length`` (use ``train.batch_size``).
        """
        return self.train_batch(max_tokens // self.check_token_budget(max_tokens), generator)

    def check_token_budget(self, max_tokens: int) -> int:
        """``train_length`` after checking that ``max_tokens`` holds at least one training sequence."""
        name = next((n for n in TASKS if TASKS.get(n) is type(self)), type(self).__name__)
        length = getattr(self, "train_length", None)
        if length is None:
            raise ConfigError(
                f"task {name!r} has no train_length, so it cannot size batches by a token budget; "
                "set train.batch_size instead of train.batch_tokens"
            )
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ConfigError(f"train.batch_tokens: expected a positive integer, got {max_tokens!r}")
        if max_tokens < length:
            raise ConfigError(
                f"train.batch_tokens={max_tokens} is smaller than one training sequence of task "
                f"{name!r} ({length} tokens); use at least {length}"
            )
        return length

    def loss(self, outputs: Tensor, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Mean cross-entropy over scored positions (``Σ mask·L / Σ mask``), optionally against
        targets smoothed to ``(1 − ε)·onehot + ε/O`` (Szegedy et al. 2016)."""
        tm = batch.target_mask
        return F.cross_entropy(outputs[tm], batch.targets[tm], label_smoothing=label_smoothing)

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, run_dir: Path) -> None:
        """Write what inference needs besides the weights (e.g. a tokenizer)."""

    def write_predictions(self, run_dir: Path, predict: Predict, batch_size: int) -> None:
        """Write predictions for error analysis into ``run_dir`` (default: nothing).

        Called after the final evaluation of a run and by ``seqlab evaluate``; tasks that keep
        predictions (classification: ``predictions.jsonl`` + errors grouped by true → predicted
        label) write them atomically here.
        """


def classification_counts(outputs: Tensor, batch: Batch) -> dict[str, float]:
    """Sums over a batch: CE loss, correct predictions, scored positions, fully-correct sequences."""
    tm = batch.target_mask
    logits, targets = outputs[tm], batch.targets[tm]
    correct = outputs.argmax(-1).eq(batch.targets) | ~tm  # (B, T): unscored count as right
    return {
        "loss_sum": float(F.cross_entropy(logits, targets, reduction="sum")),
        "correct": float((logits.argmax(-1) == targets).sum()),
        "count": float(tm.sum()),
        "seq_correct": float(correct.all(dim=1).sum()),
        "seqs": float(outputs.shape[0]),
    }


def summarise(counts: Iterable[dict[str, float]], prefix: str) -> dict[str, float]:
    """Aggregate :func:`classification_counts` into ``{prefix}_loss``, ``_acc``, ``_seq_acc``."""
    total: dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0.0) + v
    return {
        f"{prefix}_loss": total["loss_sum"] / max(total["count"], 1.0),
        f"{prefix}_acc": total["correct"] / max(total["count"], 1.0),
        f"{prefix}_seq_acc": total["seq_correct"] / max(total["seqs"], 1.0),
    }


def evaluate_by_length(
    make_batch: Callable[[Tensor, torch.Generator], Batch],
    lengths: range,
    per_length: int,
    predict: Predict,
    batch_size: int,
    seed: int,
    prefix: str,
) -> dict[str, Any]:
    """Length-generalisation evaluation (Delétang et al. 2022): accuracy per length and averaged.

    ``make_batch(lengths (B,), generator)`` builds a padded batch of sequences of those lengths.
    Lengths are processed in ascending order so each batch pads little. Returns
    ``{prefix}_acc`` (mean over lengths of the per-length accuracy), ``{prefix}_acc_min``,
    ``{prefix}_seq_acc``, ``{prefix}_loss`` (each averaged over lengths) and
    ``{prefix}_acc_by_length`` ({length: accuracy}).
    """
    generator = torch.Generator().manual_seed(seed)
    all_lengths = torch.tensor(list(lengths)).repeat_interleave(per_length)  # ascending
    by_length: dict[int, list[dict[str, float]]] = {}
    for start in range(0, len(all_lengths), batch_size):
        chunk = all_lengths[start : start + batch_size]
        batch = make_batch(chunk, generator)
        outputs = predict(batch)
        for n in chunk.unique().tolist():
            rows = chunk == n
            by_length.setdefault(n, []).append(classification_counts(outputs[rows], batch.rows(rows)))
    per = {n: summarise(c, "x") for n, c in sorted(by_length.items())}
    accs = [p["x_acc"] for p in per.values()]
    return {
        f"{prefix}_acc": sum(accs) / len(accs),
        f"{prefix}_acc_min": min(accs),
        f"{prefix}_seq_acc": sum(p["x_seq_acc"] for p in per.values()) / len(per),
        f"{prefix}_loss": sum(p["x_loss"] for p in per.values()) / len(per),
        f"{prefix}_acc_by_length": {n: round(p["x_acc"], 4) for n, p in per.items()},
    }


def lengths_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool mask of real (left-aligned) positions."""
    return torch.arange(T)[None, :] < lengths[:, None]


def bits(nats: float) -> float:
    return nats / math.log(2)


def build_task(name: str, config: Any = None, seed: int = 0) -> Task:
    return TASKS.get(name)(config, seed)
