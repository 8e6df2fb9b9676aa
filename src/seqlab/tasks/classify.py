"""Many-to-one text classification (sentiment): one label per text, read at its last token.

Shape legend: B batch · T time (tokens of the longest text in the batch) · C classes.

A causal model reads a text left to right, so the label is scored where the whole text has been
read: at the **last real token** of each right-padded row. With ``cls_token`` (the default) a
``[CLS]`` token is appended and scored — a read-out step that tells the model the text is over
(GPT-1's "extract" token, Radford et al. 2018); without it the last word itself is scored.
Padding is masked (``Batch.mask``), so a row's prediction does not depend on its batch.

Worked example (word tokens, lower-cased, ``[CLS]`` = id 4, labels negative = 0 / positive = 1)::

    "Great film!" (positive)      -> great film ! [CLS]   ids [7, 9, 8, 4]
    "Dull." (negative)            -> dull . [CLS]         ids [10, 11, 4]

    inputs       [[7, 9, 8, 4], [10, 11, 4, 0]]            (pad id 0)
    mask         [[1, 1, 1, 1], [ 1,  1, 1, 0]]
    targets      [[-100, -100, -100, 1], [-100, -100, 0, -100]]
    target_mask  [[0, 0, 0, 1], [0, 0, 1, 0]]

Texts longer than ``max_len`` tokens (``[CLS]`` included) keep their **first** ``max_len − 1``
words and the ``[CLS]`` (truncated, not dropped). The tokenizer is trained on the training split
only; validation and test words it never saw become ``[UNK]``.

Metrics (per split, ``val_*`` for model selection — :attr:`ClassifyTask.primary_metric` is
``val_acc`` — and ``test_*`` reported alongside): ``loss`` (mean cross-entropy), ``acc``,
macro-averaged ``precision`` / ``recall`` / ``f1`` (:mod:`seqlab.metrics.classification`), and
``test_confusion_matrix`` (rows = true labels). After :meth:`ClassifyTask.save` has named the run
directory, each evaluation also writes the test predictions for error analysis:
``predictions.jsonl`` (one row per text: text, true, predicted, probabilities), and
``errors.json`` / ``errors.md`` (misclassified texts grouped by true → predicted label, most
confident mistakes first). The last evaluation of a run (the final model) writes them last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_one_source, check_positive, check_split
from seqlab.data import LabelledTexts, PreprocessConfig, Preprocessor, Tokenizer, train_tokenizer
from seqlab.data.batching import bucket_batches, draw_from_a_bucket, length_buckets, pad_sequences
from seqlab.data.tokenizers import SUBWORD_KINDS
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task

__all__ = ["ClassifyConfig", "ClassifyTask", "TextEncoder", "make_batch", "score_predictions"]

DEFAULT_DATASET = "movie-reviews"
SUBWORD_VOCAB = 4000  # vocabulary of bpe/wordpiece/unigram when vocab_size is not given
ERRORS_SHOWN = 10  # most confident mistakes listed per (true, predicted) group in errors.md


@dataclass
class ClassifyConfig:
    """Where the labelled texts come from, how they are tokenised, and the length cap.

    ``dataset``: a registered labelled-text dataset (``seqlab data list``); ``table``: a user's
    CSV / TSV / JSON Lines file with columns ``text_column`` and ``label_column`` (names, or
    0-based indices), cut into train / validation (/ test) by ``split`` fractions with ``seed``
    (duplicate texts dropped first). At most one of the two; neither = ``movie-reviews``.
    ``tokenizer``: ``word`` (default: fastest to learn from a few thousand sentences), ``char``,
    ``bpe``, ``wordpiece`` or ``unigram``; ``vocab_size`` caps the vocabulary, special tokens
    included (None: no cap for char/word, 4000 for subword kinds); ``min_frequency``: fewest
    training occurrences to be kept. ``lowercase`` lower-cases text before tokenising;
    ``preprocess`` runs a :class:`~seqlab.data.PreprocessConfig` pipeline first (note: the
    English stop-word list holds "good" and "great" — keep them with ``stop_words.keep``).
    ``max_len``: most tokens per text, ``[CLS]`` included (longer texts are truncated).
    """

    dataset: str | None = None
    table: str | None = None
    text_column: str | int = "text"
    label_column: str | int = "label"
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    tokenizer: Literal["char", "word", "bpe", "wordpiece", "unigram"] = "word"
    vocab_size: int | None = None
    min_frequency: int = 2
    lowercase: bool = True
    preprocess: PreprocessConfig | None = None
    max_len: int = 128
    cls_token: bool = True

    def __post_init__(self) -> None:
        check_one_source(dataset=self.dataset, table=self.table)
        check_split(self.split)
        check_positive("max_len", self.max_len)
        check_positive("min_frequency", self.min_frequency)
        if self.max_len < 2 and self.cls_token:
            raise ConfigError("max_len: expected at least 2 (one token and [CLS])")
        if self.vocab_size is not None:
            check_positive("vocab_size", self.vocab_size)

    @property
    def source(self) -> str:
        """What the data comes from, for messages: ``table 'x.csv'`` or ``dataset 'movie-reviews'``."""
        return f"table {self.table!r}" if self.table else f"dataset {self.dataset or DEFAULT_DATASET!r}"


class TextEncoder:
    """Text -> token ids as the task sees them: preprocess, lower-case, tokenise, cap, ``[CLS]``.

    The same object encodes training data and, rebuilt from a run's config and tokenizer.json,
    the texts given to ``seqlab classify``. With ``cls_token`` off, an empty encoding becomes
    ``[UNK]``, so every text has at least one token to score.
    """

    def __init__(self, config: ClassifyConfig, tokenizer: Tokenizer | None = None) -> None:
        self.config = config
        self.preprocessor = Preprocessor(config.preprocess) if config.preprocess is not None else None
        self.tokenizer = tokenizer

    def normalise(self, texts: Sequence[str]) -> list[str]:
        """The preprocessed (and lower-cased) texts the tokenizer is trained on and reads."""
        out = self.preprocessor(texts) if self.preprocessor is not None else list(texts)
        return [t.lower() for t in out] if self.config.lowercase else out

    def fit(self, texts: Sequence[str]) -> Tokenizer:
        """Train the tokenizer on ``texts`` (the training split: already normalised)."""
        c = self.config
        size = SUBWORD_VOCAB if c.tokenizer in SUBWORD_KINDS and c.vocab_size is None else c.vocab_size
        self.tokenizer = train_tokenizer(c.tokenizer, texts, vocab_size=size, min_frequency=c.min_frequency)
        return self.tokenizer

    def encode(self, texts: Sequence[str], normalised: bool = False) -> list[Tensor]:
        """One (n_i,) long tensor per text, ``1 ≤ n_i ≤ max_len``."""
        tok, c = self.tokenizer, self.config
        if tok is None:
            raise ConfigError("TextEncoder: fit or give a tokenizer before encoding")
        keep = c.max_len - 1 if c.cls_token else c.max_len
        out = []
        for text in texts if normalised else self.normalise(texts):
            ids = tok.encode(text)[:keep]
            ids = [*ids, tok.cls_id] if c.cls_token else ids or [tok.unk_id]
            out.append(torch.tensor(ids, dtype=torch.long))
        return out


def make_batch(sequences: Sequence[Tensor], labels: Sequence[int] | Tensor | None, pad_id: int = 0) -> Batch:
    """Right-pad ``sequences`` into a batch scored at each row's last real token.

    ``labels`` (B,) may be None (inference): the last tokens are still marked in
    ``target_mask`` and the targets there are 0.
    """
    inputs, mask = pad_sequences(list(sequences), pad_value=pad_id)  # (B, T), (B, T)
    lengths = mask.sum(dim=1)  # (B,)
    B, T = inputs.shape
    y = torch.zeros(B, dtype=torch.long) if labels is None else torch.as_tensor(labels, dtype=torch.long)
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    targets[torch.arange(B), lengths - 1] = y
    return Batch(inputs, targets, targets != IGNORE, mask, lengths, labels=y)


def score_predictions(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int, prefix: str) -> dict:
    """``{prefix}_acc``, macro ``{prefix}_precision`` / ``_recall`` / ``_f1`` of predicted labels."""
    prf = precision_recall_f1(y_true, y_pred, num_classes, average="macro")
    return {f"{prefix}_acc": accuracy(y_true, y_pred)} | {f"{prefix}_{k}": float(v) for k, v in prf.items()}


@TASKS.register("classify")
class ClassifyTask(Task):
    """Many-to-one text classification (sentiment): accuracy, macro precision/recall/F1."""

    Config = ClassifyConfig
    primary_metric = "val_acc"
    # length-bucketed batches of ≤ 1024 padded tokens (~46 movie-review sentences, 7 % padding);
    # ``--set train.batch_tokens=0`` switches to ``train.batch_size`` uniform draws
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 800,
        "batch_tokens": 1024,
        "lr": 2e-3,
        "warmup_steps": 50,
        "eval_every": 200,
        "eval_batch_size": 128,
        "weight_decay": 0.05,
    }
    num_buckets: ClassVar[int] = 16  # length buckets of :meth:`train_batch_tokens`

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.raw = self._load_splits()  # {split: LabelledTexts}, the texts as given
        self.label_names = self.raw["train"].label_names
        self.encoder = TextEncoder(self.config)
        texts = {name: self.encoder.normalise(part.texts) for name, part in self.raw.items()}
        self.tokenizer = self.encoder.fit(texts["train"])  # the training split only
        self.data = {name: self.encoder.encode(t, normalised=True) for name, t in texts.items()}
        self.labels = {name: torch.tensor(part.labels, dtype=torch.long) for name, part in self.raw.items()}
        self.lengths = {name: torch.tensor([len(s) for s in seqs]) for name, seqs in self.data.items()}
        self._buckets = length_buckets(self.lengths["train"], self.num_buckets)
        V, C = self.tokenizer.vocab_size, len(self.label_names)
        self.io = IOSpec(output_dim=C, vocab_size=V, vocab=tuple(self.tokenizer.words))

    def _load_splits(self) -> dict[str, LabelledTexts]:
        """{train, validation[, test]} from the table or the dataset; clear errors otherwise."""
        c = self.config
        if c.table:
            from seqlab.data import read_table, split_items

            data = read_table(c.table, text=c.text_column, label=c.label_column)
            splits = split_items(data, c.split, c.seed)
        else:
            from seqlab.data.datasets import load_dataset

            splits = load_dataset(c.dataset or DEFAULT_DATASET)
        kinds = {k: type(v).__name__ for k, v in splits.items()}
        if not all(isinstance(splits.get(k), LabelledTexts) for k in ("train", "validation")):
            raise ConfigError(
                f"classify: {c.source} is not a labelled-text dataset with train and validation "
                f"splits (it has {', '.join(f'{k}: {v}' for k, v in kinds.items())})"
            )
        if len(set(splits["train"].labels)) < 2:
            raise ConfigError(f"classify: the training split of {c.source} has fewer than 2 labels")
        return {k: v for k, v in splits.items() if k in ("train", "validation", "test")}

    # -- training batches ------------------------------------------------------------------------

    @property
    def train_length(self) -> int:
        """Tokens of the longest training text (``[CLS]`` included, at most ``max_len``)."""
        return int(self.lengths["train"].max())

    def _batch(self, split: str, index: Tensor) -> Batch:
        seqs = [self.data[split][i] for i in index.tolist()]
        return make_batch(seqs, self.labels[split][index], self.tokenizer.pad_id or 0)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` training texts drawn uniformly (with replacement), padded to the longest."""
        n = len(self.data["train"])
        return self._batch("train", torch.randint(0, n, (batch_size,), generator=generator))

    def train_batch_tokens(self, max_tokens: int, generator: torch.Generator) -> Batch:
        """A length-bucketed batch of at most ``max_tokens`` padded tokens (``B · T ≤ max_tokens``).

        The training texts, sorted by length, are cut into ``num_buckets`` buckets of (nearly)
        equal size and a batch is drawn from one bucket (:func:`~seqlab.data.batching.draw_from_a_bucket`):
        every text is drawn with probability 1 / N, as in :meth:`train_batch`, and batches pad
        only to their bucket's longest text.

        Example: the 8,453 movie-review sentences (word tokens + [CLS]) in 16 buckets of ~528,
        ``max_tokens=1024``: the bucket of 19–21 tokens gives B = 1024 // 21 = 48 sentences; the
        shortest (3–9) B = 113; the longest (40–75) B = 13. Batches of ``max_tokens=512`` pad
        ≈ 7 % of their token slots, against ≈ 49 % for :meth:`train_batch` with 32 sentences.
        """
        self.check_token_budget(max_tokens)
        return self._batch(
            "train", draw_from_a_bucket(self._buckets, self.lengths["train"], max_tokens, generator)
        )

    # -- evaluation ------------------------------------------------------------------------------

    def probabilities(self, predict: Predict, split: str, batch_size: int) -> Tensor:
        """(N, C) class probabilities of one split's texts, in split order (length-bucketed batches)."""
        N, C = len(self.data[split]), len(self.label_names)
        probs = torch.zeros(N, C)
        for index in bucket_batches(self.lengths[split], batch_size=batch_size, shuffle=False):
            batch = self._batch(split, index)
            logits = predict(batch)[batch.target_mask]  # (B, C): one scored position per row
            probs[index] = torch.softmax(logits.float(), dim=-1)
        return probs

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        """``val_*`` and ``test_*`` metrics (see the module docstring); the predictions themselves
        are written by :meth:`write_predictions` (after the final evaluation, and by ``seqlab evaluate``)."""
        metrics: dict[str, Any] = {}
        C = len(self.label_names)
        for split, prefix in (("validation", "val"), ("test", "test")):
            if split not in self.data:
                continue
            probs = self.probabilities(predict, split, batch_size)
            y_true, y_pred = self.labels[split], probs.argmax(dim=1)
            nll = F.nll_loss(probs.clamp_min(1e-12).log(), y_true)
            metrics[f"{prefix}_loss"] = float(nll)
            metrics |= score_predictions(y_true.tolist(), y_pred.tolist(), C, prefix)
            if prefix == "test" or "test" not in self.data:
                cm = confusion_matrix(y_true.tolist(), y_pred.tolist(), C)
                metrics[f"{prefix}_confusion_matrix"] = np.asarray(cm).tolist()
        return metrics

    # -- run directory ---------------------------------------------------------------------------

    def save(self, run_dir: Path) -> None:
        """tokenizer.json and labels.json (what ``seqlab classify`` needs besides the weights)."""
        run_dir = Path(run_dir)
        self.tokenizer.save(run_dir / "tokenizer.json")
        atomic_write_text(run_dir / "labels.json", json.dumps({"label_names": self.label_names}) + "\n")

    def write_predictions(
        self, run_dir: Path, predict: Predict, batch_size: int, split: str | None = None
    ) -> None:
        """Predict ``split`` (default: test, else validation) and write its predictions and errors.

        For a trainer hook after the final evaluation, or ``seqlab evaluate RUN_DIR``; files are
        written atomically: ``predictions.jsonl``, ``errors.json``, ``errors.md``.
        """
        split = split or ("test" if "test" in self.data else "validation")
        if split not in self.data:
            raise ConfigError(f"classify: no {split!r} split; choose from {', '.join(self.data)}")
        self._write_predictions(Path(run_dir), split, self.probabilities(predict, split, batch_size))

    def _write_predictions(self, run_dir: Path, split: str, probs: Tensor) -> None:
        """``predictions.jsonl``, ``errors.json`` and ``errors.md`` of ``split`` from (N, C) ``probs``."""
        names, texts = self.label_names, self.raw[split].texts
        y_true, y_pred = self.labels[split].tolist(), probs.argmax(dim=1).tolist()
        rows = [
            {
                "index": i,
                "text": texts[i],
                "true": names[t],
                "predicted": names[p],
                "correct": t == p,
                "probabilities": {n: round(float(q), 6) for n, q in zip(names, probs[i])},
            }
            for i, (t, p) in enumerate(zip(y_true, y_pred))
        ]
        run_dir = Path(run_dir)
        atomic_write_text(run_dir / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        report = error_report(rows, names, split, classification_report(y_true, y_pred, names))
        atomic_write_text(run_dir / "errors.json", json.dumps(report, indent=1) + "\n")
        atomic_write_text(run_dir / "errors.md", errors_markdown(report))


def error_report(rows: list[dict], names: list[str], split: str, report: dict) -> dict[str, Any]:
    """Misclassified rows grouped by (true, predicted), largest group first, most confident first.

    Each mistake carries ``confidence`` = the probability given to the (wrong) predicted label.
    """
    by_confidence = lambda e: -e["confidence"]  # noqa: E731
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if not r["correct"]:
            entry = {"index": r["index"], "text": r["text"], "confidence": r["probabilities"][r["predicted"]]}
            groups.setdefault((r["true"], r["predicted"]), []).append(entry)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), names.index(kv[0][0])))
    return {
        "split": split,
        "examples": len(rows),
        "errors": sum(len(g) for g in groups.values()),
        "labels": names,
        "report": report,
        "groups": [
            {"true": t, "predicted": p, "count": len(g), "examples": sorted(g, key=by_confidence)}
            for (t, p), g in ordered
        ],
    }


def errors_markdown(report: dict[str, Any]) -> str:
    """A readable summary of :func:`error_report`: counts, then the most confident mistakes."""
    n, e = report["examples"], report["errors"]
    lines = [
        f"# Classification errors ({report['split']} split)",
        "",
        f"{e} of {n} texts misclassified (accuracy {1 - e / max(n, 1):.4f}).",
        "",
        "| true → predicted | count |",
        "|---|---:|",
        *(f"| {g['true']} → {g['predicted']} | {g['count']} |" for g in report["groups"]),
    ]
    for g in report["groups"]:
        lines += ["", f"## {g['true']} → {g['predicted']} ({g['count']})", ""]
        lines += ["| # | confidence | text |", "|---:|---:|---|"]
        for x in g["examples"][:ERRORS_SHOWN]:
            text = x["text"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {x['index']} | {x['confidence']:.3f} | {text} |")
    return "\n".join(lines) + "\n"
