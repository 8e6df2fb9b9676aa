"""Many-to-many synchronised tagging: one tag per input word (POS, NER, punctuation, ...).

Shape legend: B batch · T time (words of the longest sentence in the batch) · C tags.

Every real word is scored: ``targets[b, t]`` is the tag id of word t, ``target_mask`` = the
padding mask, and the loss is the mean cross-entropy over real words only,
``L = −Σ_{b,t} m_bt log p(y_bt | x_b) / Σ_{b,t} m_bt``, so padding changes nothing.

Worked example (vocabulary ``[PAD]`` 0, ``[UNK]`` 1, ``the`` 7, ``dog`` 8, ``barks`` 9; tags
DET 0, NOUN 1, VERB 2)::

    "the dog barks" DET NOUN VERB   -> inputs [7, 8, 9]
    "the cat"       DET NOUN        -> inputs [7, 1]      (cat: unseen in training -> [UNK])

    inputs       [[7, 8, 9], [7, 1, 0]]
    targets      [[0, 1, 2], [0, 1, -100]]
    target_mask  [[1, 1, 1], [1, 1, 0]]

**Causal models see only the left context.** Most seqlab models read left to right, so the tag
of word t is predicted from words 1..t: a POS tagger cannot use the next word ("can" before
"openers" vs. "can" before "go"). (seqlab's bidirectional ``bert`` encoder serves ``mlm`` only so
far; a tagging head on it is the natural next step.)
The built-in ``web-punctuation`` data is laid out for this: each word carries the mark written
*before* it, which a causal model can decide once it has read that word.

Data (:class:`TagConfig`): the registered ``web-punctuation`` dataset by default; or a user's
``file`` — CoNLL-U (``.conllu``; ``column=upos|xpos``) or ``token<TAB>tag`` lines with blank
lines between sentences (:mod:`seqlab.data.tagged`) — cut into train / validation / test by
``split`` and ``seed``, or with ``validation_file`` / ``test_file`` given, used as they are.
The word vocabulary comes from the training split (``min_frequency``); other words are
``[UNK]``. Sentences longer than ``max_len`` words are cut into pieces of ``max_len`` (every
word is still tagged and scored; a piece starts without the left context before it).

Metrics per split (``val_*``, ``test_*``): ``loss``, ``acc`` (token accuracy), ``f1`` (macro F1
over the tags that occur in the split's gold or predicted tags), ``seq_acc`` (sentences with
every tag right), ``entity_f1`` / ``entity_precision`` / ``entity_recall`` when the tags are
BIO (:func:`~seqlab.metrics.tagging.entity_f1`), the same for the most-frequent-tag baseline
(``baseline_acc``, ``baseline_f1``, ... — :mod:`seqlab.evaluation.tag_baselines`), and
``test_per_tag`` (precision / recall / F1 / support per tag). :meth:`TagTask.write_predictions`
writes ``predictions.jsonl`` (words, gold, predicted per sentence) and ``errors.json`` /
``errors.md`` (per-tag report, the most confused tag pairs with the words involved).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_one_source, check_positive, check_split
from seqlab.data.batching import bucket_batches, draw_from_a_bucket, length_buckets, pad_sequences
from seqlab.data.tagged import TaggedSentences, read_tagged
from seqlab.data.tokenizers.base import SPECIAL_TOKENS, build_vocab
from seqlab.data.tokenizers.vocab import WordTokenizer
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.metrics.classification import accuracy, classification_report, precision_recall_f1
from seqlab.metrics.tagging import entity_f1
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task

__all__ = ["TagConfig", "TagTask", "is_bio", "make_batch", "score_tags"]

DEFAULT_DATASET = "web-punctuation"
CONFUSIONS_SHOWN = 10  # most confused (gold, predicted) pairs in errors.md


@dataclass
class TagConfig:
    """Where the tagged sentences come from and how words become ids (see the module docstring).

    ``dataset`` or ``file`` (at most one; neither = ``web-punctuation``). ``format``: ``auto``
    (``.conllu`` = CoNLL-U, else ``token<TAB>tag``), ``conllu`` or ``columns``; ``column``: the
    CoNLL-U tag column. ``split`` / ``seed`` cut ``file`` unless ``validation_file`` is given.
    ``lowercase`` lower-cases words; ``min_frequency``: fewest training occurrences of a word to
    get its own id; ``max_len``: most words per piece of a sentence.
    """

    dataset: str | None = None
    file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    format: Literal["auto", "conllu", "columns"] = "auto"
    column: Literal["upos", "xpos"] = "upos"
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    lowercase: bool = False
    min_frequency: int = 2
    max_len: int = 128

    def __post_init__(self) -> None:
        check_one_source(dataset=self.dataset, file=self.file)
        check_split(self.split)
        check_positive("max_len", self.max_len)
        check_positive("min_frequency", self.min_frequency)
        if (self.validation_file or self.test_file) and not self.file:
            raise ConfigError("validation_file / test_file: give the training data as file too")
        if self.test_file and not self.validation_file:
            raise ConfigError("test_file: give validation_file too (or neither, to split file)")


def is_bio(tags: Sequence[str]) -> bool:
    """Whether every tag is ``O``, ``B-X`` or ``I-X`` (and at least one is not ``O``)."""
    return any(t != "O" for t in tags) and all(
        t == "O" or (t[:2] in ("B-", "I-") and len(t) > 2) for t in tags
    )


def score_tags(
    y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]], names: Sequence[str], prefix: str
) -> dict[str, float]:
    """``{prefix}_acc``, ``_f1`` (macro over tags in gold or predictions), ``_seq_acc`` and, for
    BIO tags, ``_entity_f1`` / ``_entity_precision`` / ``_entity_recall``.

    Example: gold [["DET", "NOUN"], ["VERB"]], predicted [["DET", "VERB"], ["VERB"]] →
    acc 2/3, F1 per tag DET 1, NOUN 0, VERB 2/3 → macro 0.5556, seq_acc 1/2.
    """
    labels = list(names) + sorted({t for s in (*y_true, *y_pred) for t in s} - set(names))
    index = {t: i for i, t in enumerate(labels)}
    t = [index[x] for s in y_true for x in s]
    p = [index[x] for s in y_pred for x in s]
    f1 = np.asarray(precision_recall_f1(t, p, len(labels), average="none")["f1"])
    present = sorted(set(t) | set(p))
    out = {
        f"{prefix}_acc": accuracy(t, p),
        f"{prefix}_f1": float(f1[present].mean()),
        f"{prefix}_seq_acc": float(np.mean([list(a) == list(b) for a, b in zip(y_true, y_pred)])),
    }
    if is_bio(labels):
        ent = entity_f1(y_true, y_pred)
        out |= {f"{prefix}_entity_{k}": float(ent[k]) for k in ("f1", "precision", "recall")}
    return out


def make_batch(words: Sequence[Tensor], tags: Sequence[Tensor] | None, pad_id: int = 0) -> Batch:
    """Right-pad word ids (and tag ids) into a batch scored at every real word.

    ``tags`` may be None (inference: targets 0). Tag id ``IGNORE`` (a tag unseen in training)
    stays unscored by the loss but is still a real word of ``target_mask``.
    """
    inputs, mask = pad_sequences(list(words), pad_value=pad_id)  # (B, T), (B, T)
    if tags is None:
        targets = torch.zeros_like(inputs)
    else:
        targets, _ = pad_sequences(list(tags), pad_value=IGNORE)  # (B, T)
    return Batch(inputs, targets, mask, mask, mask.sum(dim=1))


@TASKS.register("tag")
class TagTask(Task):
    """Per-token tagging: token accuracy, macro F1, entity F1 (BIO), most-frequent-tag baseline."""

    Config = TagConfig
    primary_metric = "val_f1"
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 600,
        "batch_tokens": 2048,
        "lr": 3e-3,
        "warmup_steps": 50,
        "eval_every": 200,
        "eval_batch_size": 256,
        "weight_decay": 0.01,
    }
    num_buckets: ClassVar[int] = 16

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = self.config
        self.raw = self._load_splits()  # {split: TaggedSentences}, words lower-cased if asked
        self.tag_names = sorted(self.raw["train"].tag_counts())
        counts = Counter(w for s in self.raw["train"].tokens for w in s)
        words = build_vocab(counts, c.min_frequency)
        self.tokenizer = WordTokenizer(words, SPECIAL_TOKENS, pattern=r"\S+", lowercase=c.lowercase)
        self.pieces = {name: self._pieces(part) for name, part in self.raw.items()}
        self.lengths = {name: torch.tensor([len(w) for w, _ in p]) for name, p in self.pieces.items()}
        self._buckets = length_buckets(self.lengths["train"], self.num_buckets)
        train = self.raw["train"]
        from seqlab.evaluation.tag_baselines import MostFrequentTag  # here: evaluation imports tasks

        self.baseline = MostFrequentTag.fit(train.tokens, train.tags)
        self._baseline_cache: dict[tuple[str, str], dict[str, float]] = {}
        V = self.tokenizer.vocab_size
        self.io = IOSpec(output_dim=len(self.tag_names), vocab_size=V, vocab=tuple(self.tokenizer.words))

    def _load_splits(self) -> dict[str, TaggedSentences]:
        c = self.config
        if c.file:
            from seqlab.data.types import split_items

            read = lambda path: read_tagged(path, c.format, c.column)  # noqa: E731
            if c.validation_file:
                files = {"train": c.file, "validation": c.validation_file, "test": c.test_file}
                splits = {k: read(v) for k, v in files.items() if v}
            else:
                splits = split_items(read(c.file), c.split, c.seed)  # a repeated sentence stays in one split
        else:
            from seqlab.data.datasets import load_dataset

            splits = load_dataset(c.dataset or DEFAULT_DATASET)
            if not all(isinstance(splits.get(k), TaggedSentences) for k in ("train", "validation")):
                raise ConfigError(
                    f"tag: dataset {c.dataset!r} is not a tagged dataset with train and validation "
                    f"splits; tagged datasets: {DEFAULT_DATASET} (seqlab data list)"
                )
        if c.lowercase:
            splits = {
                k: TaggedSentences([[w.lower() for w in s] for s in v.tokens], v.tags)
                for k, v in splits.items()
            }
        if len(splits["train"].tag_counts()) < 2:
            raise ConfigError("tag: the training split has fewer than 2 distinct tags")
        return splits

    def _pieces(self, part: TaggedSentences) -> list[tuple[Tensor, Tensor]]:
        """(word ids, tag ids) per piece of ≤ max_len words, sentences in order, pieces in order."""
        tok, n = self.tokenizer, self.config.max_len
        tag_id = {t: i for i, t in enumerate(self.tag_names)}
        out = []
        for words, tags in zip(part.tokens, part.tags):
            ids = [tok.token_to_id(w) for w in words]
            ids = [tok.unk_id if i is None else i for i in ids]
            labels = [tag_id.get(t, IGNORE) for t in tags]
            for start in range(0, len(ids), n):
                out.append((torch.tensor(ids[start : start + n]), torch.tensor(labels[start : start + n])))
        return out

    # -- training batches ------------------------------------------------------------------------

    @property
    def train_length(self) -> int:
        """Words of the longest training piece (at most ``max_len``)."""
        return int(self.lengths["train"].max())

    def _batch(self, split: str, index: Tensor) -> Batch:
        pieces = [self.pieces[split][i] for i in index.tolist()]
        return make_batch([w for w, _ in pieces], [t for _, t in pieces], self.tokenizer.pad_id or 0)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` training pieces drawn uniformly (with replacement), padded to the longest."""
        n = len(self.pieces["train"])
        return self._batch("train", torch.randint(0, n, (batch_size,), generator=generator))

    def train_batch_tokens(self, max_tokens: int, generator: torch.Generator) -> Batch:
        """A length-bucketed batch of ≤ ``max_tokens`` padded words, every piece equally likely
        (as :meth:`seqlab.tasks.classify.ClassifyTask.train_batch_tokens`)."""
        self.check_token_budget(max_tokens)
        return self._batch(
            "train", draw_from_a_bucket(self._buckets, self.lengths["train"], max_tokens, generator)
        )

    # -- evaluation ------------------------------------------------------------------------------

    def predict_tags(self, predict: Predict, split: str, batch_size: int) -> tuple[list[list[str]], float]:
        """(predicted tags per sentence, mean cross-entropy over the words with a known tag)."""
        pieces = self.pieces[split]
        predicted: list[Tensor] = [torch.empty(0, dtype=torch.long)] * len(pieces)
        loss_sum, count = 0.0, 0
        for index in bucket_batches(self.lengths[split], batch_size=batch_size, shuffle=False):
            batch = self._batch(split, index)
            logits = predict(batch).float()  # (B, T, C)
            scored = batch.target_mask & (batch.targets != IGNORE)
            loss_sum += float(F.cross_entropy(logits[scored], batch.targets[scored], reduction="sum"))
            count += int(scored.sum())
            best = logits.argmax(-1)  # (B, T)
            for row, i in enumerate(index.tolist()):
                predicted[i] = best[row, : int(batch.lengths[row])]
        tags, k = [], 0
        for words in self.raw[split].tokens:  # pieces -> sentences
            n_pieces = -(-len(words) // self.config.max_len)
            ids = torch.cat(predicted[k : k + n_pieces]).tolist()
            tags.append([self.tag_names[j] for j in ids])
            k += n_pieces
        return tags, loss_sum / max(count, 1)

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        """``val_*`` and ``test_*`` metrics of the model and of the baseline (module docstring)."""
        metrics: dict[str, Any] = {}
        for split, prefix in (("validation", "val"), ("test", "test")):
            if split not in self.raw:
                continue
            gold = self.raw[split].tags
            tags, loss = self.predict_tags(predict, split, batch_size)
            metrics[f"{prefix}_loss"] = loss
            metrics |= score_tags(gold, tags, self.tag_names, prefix)
            metrics |= self.baseline_scores(split, prefix)
            if prefix == "test" or "test" not in self.raw:
                metrics[f"{prefix}_per_tag"] = self._report(gold, tags)["per_class"]
        return metrics

    def baseline_scores(self, split: str, prefix: str) -> dict[str, float]:
        """``{prefix}_baseline_acc``, ``_f1``, ... of the most-frequent-tag baseline (computed once)."""
        if (split, prefix) not in self._baseline_cache:
            tags = self.baseline.predict(self.raw[split].tokens)
            base = score_tags(self.raw[split].tags, tags, self.tag_names, "b")
            self._baseline_cache[split, prefix] = {f"{prefix}_baseline_{k[2:]}": v for k, v in base.items()}
        return self._baseline_cache[split, prefix]

    def _report(self, gold: list[list[str]], tags: list[list[str]]) -> dict:
        names = self.tag_names + sorted({t for s in gold for t in s} - set(self.tag_names))
        index = {t: i for i, t in enumerate(names)}
        return classification_report(
            [index[t] for s in gold for t in s], [index[t] for s in tags for t in s], names
        )

    # -- run directory ---------------------------------------------------------------------------

    def save(self, run_dir: Path) -> None:
        """tokenizer.json and tags.json (the word vocabulary and the tag names, in id order)."""
        run_dir = Path(run_dir)
        self.tokenizer.save(run_dir / "tokenizer.json")
        atomic_write_text(run_dir / "tags.json", json.dumps({"tag_names": self.tag_names}) + "\n")

    def write_predictions(
        self, run_dir: Path, predict: Predict, batch_size: int, split: str | None = None
    ) -> None:
        """``predictions.jsonl``, ``errors.json``, ``errors.md`` of ``split`` (default: test)."""
        split = split or ("test" if "test" in self.raw else "validation")
        if split not in self.raw:
            raise ConfigError(f"tag: no {split!r} split; choose from {', '.join(self.raw)}")
        part, run_dir = self.raw[split], Path(run_dir)
        tags, _ = self.predict_tags(predict, split, batch_size)
        rows = [
            {"index": i, "words": w, "gold": g, "predicted": p, "correct": g == p}
            for i, (w, g, p) in enumerate(zip(part.tokens, part.tags, tags))
        ]
        atomic_write_text(run_dir / "predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        report = confusion_report(part.tokens, part.tags, tags, split, self._report(part.tags, tags))
        atomic_write_text(run_dir / "errors.json", json.dumps(report, indent=1) + "\n")
        atomic_write_text(run_dir / "errors.md", errors_markdown(report))


def confusion_report(
    words: list[list[str]], gold: list[list[str]], predicted: list[list[str]], split: str, report: dict
) -> dict[str, Any]:
    """Mistagged words grouped by (gold, predicted) tag, largest group first, with its commonest words."""
    pairs: dict[tuple[str, str], Counter[str]] = {}
    for ws, gs, ps in zip(words, gold, predicted):
        for w, g, p in zip(ws, gs, ps):
            if g != p:
                pairs.setdefault((g, p), Counter())[w] += 1
    ordered = sorted(pairs.items(), key=lambda kv: (-kv[1].total(), kv[0]))
    return {
        "split": split,
        "words": int(report["num_examples"]),
        "errors": sum(c.total() for c in pairs.values()),
        "report": report,
        "confusions": [
            {"gold": g, "predicted": p, "count": c.total(), "words": dict(c.most_common(10))}
            for (g, p), c in ordered
        ],
    }


def errors_markdown(report: dict[str, Any]) -> str:
    """A readable :func:`confusion_report`: per-tag P/R/F1, then the most confused tag pairs."""
    n, e, r = report["words"], report["errors"], report["report"]
    lines = [
        f"# Tagging errors ({report['split']} split)",
        "",
        f"{e} of {n} words mistagged (token accuracy {1 - e / max(n, 1):.4f}); macro F1 {r['macro_f1']:.4f}.",
        "",
        "| tag | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {t} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for t, m in r["per_class"].items()
        ),
        "",
        "## Most confused tags (gold → predicted)",
        "",
        "| gold → predicted | count | commonest words |",
        "|---|---:|---|",
    ]
    for c in report["confusions"][:CONFUSIONS_SHOWN]:
        shown = ", ".join(f"{w} ({k})" for w, k in c["words"].items()).replace("|", "\\|")
        lines.append(f"| {c['gold']} → {c['predicted']} | {c['count']} | {shown} |")
    return "\n".join(lines) + "\n"
