"""Encoder-decoder seq2seq on real text pairs: G2P (``cmudict``) and translation (``translation-en-es``).

Shape legend: B batch · S source tokens · T target tokens + 1 (BOS … / … EOS).

Each pair is a source string and a target string, tokenised by **separate** tokenizers fitted on
the training split only (validation / test tokens they never saw become ``[UNK]``). The source
is fed to the encoder as it is (no BOS / EOS); the decoder is fed ``BOS y_1 … y_n`` and scored on
``y_1 … y_n EOS`` (teacher forcing). Worked example (G2P: source ``char``, target ``space`` =
whitespace-separated symbols; [PAD] = 0, [BOS] = 2, [EOS] = 3)::

    "ab" -> "AH0 B"   source ids [7, 8]   target ids [9, 10]
    "b"  -> "B"       source ids [8]      target ids [10]

    source       [[7, 8], [8, 0]]              source_mask [[1, 1], [1, 0]]
    inputs       [[2, 9, 10], [2, 10, 0]]      mask        [[1, 1, 1], [1, 1, 0]]
    targets      [[9, 10, 3], [10, 3, -100]]   target_mask = mask

Lengths: training pairs whose source has more than ``max_source_len`` tokens or whose target has
more than ``max_target_len`` tokens are **dropped** (counted in :attr:`PairsTask.dropped`);
validation / test sources are **truncated** to ``max_source_len`` and scored against their full
reference strings, so the metrics never flatter a model by shortening references.

Metrics (``val_*`` and ``test_*``): ``loss`` / ``acc`` (teacher-forced cross-entropy and token
accuracy over every pair of the split), then greedy decoding (at most ``max_target_len`` tokens)
of the first ``eval_size`` validation pairs and the first ``test_size`` test pairs (None = all),
scored on the decoded strings against the reference strings:

* ``g2p`` (default when the target tokenizer is ``space``, e.g. ``cmudict``): ``per`` (phoneme
  error rate, Σ edits / Σ reference phonemes), ``wer_g2p`` (= 1 − exact match: the fraction of
  words whose pronunciation is wrong, the "WER" of the G2P literature) and ``exact_match``;
* ``text`` (translation): ``bleu`` and ``chrf`` (sacrebleu, corpus level, 0–100), ``wer``
  (word edit distance / reference words) and ``exact_match``.

After a run's final evaluation (and ``seqlab evaluate``), :meth:`PairsTask.write_predictions`
writes ``predictions.jsonl``: one row per decoded test pair (validation when there is no test
split): source, reference, hypothesis, correct.

Models: ``--model seq2seq`` (Transformer) or ``--model rnn-seq2seq`` (RNN with attention). Both
share source and target embeddings exactly when the task has one vocabulary
(``shared_vocabulary``, the default for ``translation-en-es``: one joint BPE); G2P has two
tokenizers, so its embeddings stay separate (``model.share_embeddings=true`` there is an error).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from seqlab.config import check_one_source, check_positive, check_split
from seqlab.data import TextPairs, Tokenizer, train_tokenizer
from seqlab.data.batching import bucket_batches, pad_sequences
from seqlab.data.tokenizers import SUBWORD_KINDS
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.metrics.text import bleu, chrf, exact_match, phoneme_error_rate, word_error_rate
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, Task, classification_counts, summarise

__all__ = ["PairEncoder", "PairsConfig", "PairsTask", "make_pair_batch", "score_decoded"]

DEFAULT_DATASET = "cmudict"
G2P_DATASETS = ("cmudict",)
SUBWORD_VOCAB = 4000  # vocabulary of each subword tokenizer when vocab_size is not given
SPACE_PATTERN = r"\S+"  # the ``space`` tokenizer: symbols separated by whitespace (phonemes)
Kind = Literal["char", "word", "space", "bpe", "wordpiece", "unigram"]


@dataclass
class PairsConfig:
    """Where the pairs come from, how each side is tokenised, length caps and evaluation sizes.

    ``dataset``: a registered pairs dataset (``cmudict``, ``translation-en-es``); ``table``: a
    CSV / TSV / JSON Lines file with columns ``source_column`` and ``target_column`` (names, or
    0-based indices with ``header: false``), cut into train / validation (/ test) by ``split``
    with ``seed``. At most one of the two; neither = the task's default dataset.
    ``source_tokenizer`` / ``target_tokenizer``: ``char``, ``word``, ``space`` (whitespace-
    separated symbols), ``bpe``, ``wordpiece`` or ``unigram``; None = the dataset's default
    (G2P: char → space; otherwise bpe → bpe). ``vocab_size`` caps each vocabulary (subword
    default 4000). ``lowercase_source``: None = on for G2P (the dictionary is lower-case).
    ``shared_vocabulary``: one tokenizer (of ``source_tokenizer``'s kind) fitted on both sides, so
    models may share embeddings; None = on for ``translation-en-es`` (joint BPE), off otherwise.
    ``metrics``: ``g2p``, ``text`` or ``auto`` (g2p when the target tokenizer is ``space``).
    """

    dataset: str | None = None
    table: str | None = None
    source_column: str | int = "source"
    target_column: str | int = "target"
    header: bool = True
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    source_tokenizer: Kind | None = None
    target_tokenizer: Kind | None = None
    vocab_size: int | None = None
    min_frequency: int = 1
    lowercase_source: bool | None = None
    shared_vocabulary: bool | None = None
    max_source_len: int = 100
    max_target_len: int = 100
    eval_size: int = 500
    test_size: int | None = None
    metrics: Literal["auto", "g2p", "text"] = "auto"

    def __post_init__(self) -> None:
        check_one_source(dataset=self.dataset, table=self.table)
        check_split(self.split)
        for name in ("min_frequency", "max_source_len", "max_target_len", "eval_size"):
            check_positive(name, getattr(self, name))
        for name in ("vocab_size", "test_size"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))


class PairEncoder:
    """Strings <-> ids for both sides, with the options resolved against the task's defaults.

    Built by the task (which fits the tokenizers) and, from a run's config and tokenizer files,
    by ``seqlab translate`` — so both encode sources identically.
    """

    def __init__(self, config: PairsConfig, default_dataset: str = DEFAULT_DATASET) -> None:
        self.config = config
        self.dataset = None if config.table else (config.dataset or default_dataset)
        g2p = self.dataset in G2P_DATASETS
        self.source_kind = config.source_tokenizer or ("char" if g2p else "bpe")
        shared = config.shared_vocabulary
        self.shared = self.dataset == "translation-en-es" if shared is None else shared
        target_kind = config.target_tokenizer or ("space" if g2p else "bpe")
        self.target_kind = self.source_kind if self.shared else target_kind  # one tokenizer if shared
        self.lowercase = g2p if config.lowercase_source is None else config.lowercase_source
        auto = "g2p" if self.target_kind == "space" else "text"
        self.metrics = auto if config.metrics == "auto" else config.metrics
        self.source: Tokenizer | None = None
        self.target: Tokenizer | None = None

    @property
    def source_where(self) -> str:
        """What the data comes from, for messages."""
        return f"table {self.config.table!r}" if self.config.table else f"dataset {self.dataset!r}"

    def _train(self, kind: str, texts: Sequence[str]) -> Tokenizer:
        c = self.config
        size = SUBWORD_VOCAB if kind in SUBWORD_KINDS and c.vocab_size is None else c.vocab_size
        extra = {"pattern": SPACE_PATTERN} if kind == "space" else {}  # space = word split on whitespace
        kind = "word" if kind == "space" else kind
        return train_tokenizer(kind, texts, vocab_size=size, min_frequency=c.min_frequency, **extra)

    def fit(self, train: TextPairs) -> None:
        """Fit both tokenizers on the training pairs (only); one on both sides if ``shared``."""
        sources = self.normalise(train.sources)
        if self.shared:
            self.source = self.target = self._train(self.source_kind, [*sources, *train.targets])
            return
        self.source = self._train(self.source_kind, sources)
        self.target = self._train(self.target_kind, train.targets)

    def io(self) -> IOSpec:
        """What a model of these (fitted or loaded) tokenizers reads and writes."""
        V = self.target.vocab_size
        return IOSpec(
            output_dim=V, vocab_size=V, source_vocab_size=self.source.vocab_size, shared_vocab=self.shared
        )

    def normalise(self, sources: Sequence[str]) -> list[str]:
        return [s.lower() for s in sources] if self.lowercase else list(sources)

    def encode_sources(self, sources: Sequence[str], truncate: bool = True) -> list[Tensor]:
        """(n_i,) ids per source (``[UNK]`` for an empty one), cut to ``max_source_len`` if ``truncate``."""
        cap = self.config.max_source_len if truncate else None
        out = []
        for text in self.normalise(sources):
            ids = self.source.encode(text)[:cap] or [self.source.unk_id]
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    def encode_targets(self, targets: Sequence[str], truncate: bool = True) -> list[Tensor]:
        cap = self.config.max_target_len if truncate else None
        return [torch.tensor(self.target.encode(t)[:cap], dtype=torch.long) for t in targets]

    def decode_targets(self, ids: Tensor) -> list[str]:
        """(B, N) decoded ids -> strings, each cut at its first EOS."""
        eos = self.target.eos_id
        return [self.target.decode(r[: r.index(eos)] if eos in r else r) for r in ids.tolist()]


def make_pair_batch(
    sources: Sequence[Tensor], targets: Sequence[Tensor] | None, pad: int, bos: int, eos: int
) -> Batch:
    """Pad sources and targets into a seq2seq batch (layout in the module docstring).

    ``targets`` None (inference) gives empty targets: inputs = BOS, targets = EOS.
    """
    source, source_mask = pad_sequences(list(sources), pad_value=pad)  # (B, S)
    B = source.shape[0]
    ys = list(targets) if targets is not None else [torch.zeros(0, dtype=torch.long)] * B
    y, ymask = pad_sequences(ys, pad_value=pad)  # (B, N)
    n = ymask.sum(dim=1)  # (B,)
    T = y.shape[1] + 1
    pos = torch.arange(T)[None, :]
    mask = pos < (n + 1)[:, None]  # (B, T): BOS + n tokens in, n tokens + EOS out
    pad_col = torch.full((B, 1), pad, dtype=torch.long)
    inputs = torch.cat([torch.full((B, 1), bos, dtype=torch.long), y], dim=1).masked_fill(~mask, pad)
    out = torch.where(pos == n[:, None], eos, torch.cat([y, pad_col], dim=1)).masked_fill(~mask, IGNORE)
    return Batch(inputs, out, mask, mask, source_mask.sum(dim=1), source, source_mask)


def score_decoded(hypotheses: list[str], references: list[str], kind: str, prefix: str) -> dict[str, float]:
    """The decoded-string metrics of ``kind`` (``g2p`` or ``text``), named ``{prefix}_...``."""
    em = exact_match(hypotheses, references)
    if kind == "g2p":
        return {
            f"{prefix}_per": phoneme_error_rate(hypotheses, references),
            f"{prefix}_wer_g2p": 1.0 - em,
            f"{prefix}_exact_match": em,
        }
    return {
        f"{prefix}_bleu": float(bleu(hypotheses, references)["score"]),
        f"{prefix}_chrf": float(chrf(hypotheses, references)["score"]),
        f"{prefix}_wer": word_error_rate(hypotheses, references),
        f"{prefix}_exact_match": em,
    }


@TASKS.register("pairs")
class PairsTask(Task):
    """Encoder-decoder seq2seq on text pairs: G2P (PER, WER) or translation (BLEU, chrF)."""

    Config = PairsConfig
    default_dataset: ClassVar[str] = DEFAULT_DATASET
    train_defaults: ClassVar[dict[str, Any]] = dict(
        steps=3000, batch_size=64, lr=2e-3, warmup_steps=100, eval_every=1000, eval_batch_size=256
    )

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.encoder = PairEncoder(self.config, self.default_dataset)
        self.raw = self._load_splits()
        self.encoder.fit(self.raw["train"])  # the training split only
        self.data: dict[str, tuple[list[Tensor], list[Tensor]]] = {}
        enc = self.encoder
        for name, part in self.raw.items():
            cut = name != "train"  # the training split is measured untruncated, then filtered
            self.data[name] = (enc.encode_sources(part.sources, cut), enc.encode_targets(part.targets, cut))
        self.dropped = self._filter_training()
        self.lengths = {name: self._lengths(name) for name in self.data}  # (N,) source + target + 1
        self._order = torch.argsort(self.lengths["train"], stable=True)  # training pairs by length
        self._rank = torch.argsort(self._order)  # position of each training pair in _order
        tgt = self.encoder.target
        self.pad, self.bos, self.eos = tgt.pad_id or 0, tgt.bos_id, tgt.eos_id
        self.primary_metric = "val_per" if self.encoder.metrics == "g2p" else "val_bleu"
        self.io = self.encoder.io()

    def _load_splits(self) -> dict[str, TextPairs]:
        """{train, validation[, test]} from the table or the dataset; clear errors otherwise."""
        c, where = self.config, self.encoder.source_where
        if c.table:
            from seqlab.data import read_table, split_items

            data = read_table(c.table, source=c.source_column, target=c.target_column, header=c.header)
            _check_nonempty(data, where)
            splits = split_items(data, c.split, c.seed)
        else:
            from seqlab.data.datasets import load_dataset

            splits = load_dataset(self.encoder.dataset)
        if not all(isinstance(splits.get(k), TextPairs) for k in ("train", "validation")):
            kinds = ", ".join(f"{k}: {type(v).__name__}" for k, v in splits.items())
            raise ConfigError(f"pairs: {where} is not a pairs dataset with train/validation ({kinds})")
        for name, part in splits.items():
            _check_nonempty(part, f"{where}, {name} split")
        return {k: v for k, v in splits.items() if k in ("train", "validation", "test")}

    def _filter_training(self) -> int:
        """Drop training pairs over the length caps (measured before truncation); returns how many."""
        c, part = self.config, self.raw["train"]
        full_src, full_tgt = self.data["train"]
        keep = [
            i
            for i, (s, t) in enumerate(zip(full_src, full_tgt, strict=True))
            if len(s) <= c.max_source_len and len(t) <= c.max_target_len
        ]
        if not keep:
            raise ConfigError(
                f"pairs: every training pair of {self.encoder.source_where} is longer than max_source_len="
                f"{c.max_source_len} / max_target_len={c.max_target_len} tokens"
            )
        self.raw["train"] = part.subset(keep)
        self.data["train"] = ([full_src[i] for i in keep], [full_tgt[i] for i in keep])
        return len(full_src) - len(keep)

    # -- training batches ------------------------------------------------------------------------

    def _lengths(self, split: str) -> Tensor:
        """(N,) token slots per pair: source + target + 1 (what a batch pays for it)."""
        src, tgt = self.data[split]
        return torch.tensor([len(s) + len(t) + 1 for s, t in zip(src, tgt, strict=True)])

    @property
    def train_length(self) -> int:
        return int(self.lengths["train"].max())

    def batch(self, split: str, index: Sequence[int] | Tensor) -> Batch:
        """The pairs ``index`` of ``split`` as one padded batch."""
        src, tgt = self.data[split]
        idx = index.tolist() if isinstance(index, Tensor) else list(index)
        return make_pair_batch([src[i] for i in idx], [tgt[i] for i in idx], self.pad, self.bos, self.eos)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` training pairs drawn uniformly (with replacement)."""
        n = len(self.data["train"][0])
        return self.batch("train", torch.randint(0, n, (batch_size,), generator=generator))

    def train_batch_tokens(self, max_tokens: int, generator: torch.Generator) -> Batch:
        """Pairs of similar length, ``B · (S + T) ≤ max_tokens``: draw one pair uniformly, then
        fill the batch from the ~4·B pairs nearest to it in length (source + target + 1)."""
        self.check_token_budget(max_tokens)
        lengths = self.lengths["train"]
        first = int(torch.randint(0, len(lengths), (1,), generator=generator))
        half, at = 2 * (max_tokens // int(lengths[first])), int(self._rank[first])
        pool = self._order[max(0, at - half) : at + half + 1]
        B = max(1, max_tokens // int(lengths[pool].max()))
        return self.batch("train", pool[torch.randint(0, len(pool), (B,), generator=generator)])

    # -- evaluation ------------------------------------------------------------------------------

    def decode(self, predict: Predict, split: str, count: int | None, batch_size: int) -> list[str]:
        """Greedy hypotheses for the first ``count`` pairs of ``split`` (None = all), in split order."""
        n = len(self.data[split][0]) if count is None else min(count, len(self.data[split][0]))
        src_len = torch.tensor([len(s) for s in self.data[split][0][:n]])
        out: list[str] = [""] * n
        for index in bucket_batches(src_len, batch_size=batch_size, shuffle=False):
            batch = self.batch(split, index)
            ids = predict.decode(batch, self.config.max_target_len + 1, self.bos, self.eos, self.pad)
            texts = self.encoder.decode_targets(ids[:, : self.config.max_target_len])
            for i, text in zip(index.tolist(), texts, strict=True):
                out[i] = text
        return out

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        """``val_*`` / ``test_*``: teacher-forced loss / acc, then decoded metrics (module docstring)."""
        metrics: dict[str, Any] = {}
        c = self.config
        for split, prefix, count in (("validation", "val", c.eval_size), ("test", "test", c.test_size)):
            if split not in self.data:
                continue
            counts = [
                classification_counts(predict(b := self.batch(split, index)), b)
                for index in bucket_batches(self.lengths[split], batch_size=batch_size, shuffle=False)
            ]
            teacher = summarise(counts, prefix)
            metrics |= {k: v for k, v in teacher.items() if not k.endswith("_seq_acc")}  # loss, acc
            hyps = self.decode(predict, split, count, batch_size)
            part = self.raw[split]
            metrics |= score_decoded(hyps, part.targets[: len(hyps)], self.encoder.metrics, prefix)
        return metrics

    # -- run directory ---------------------------------------------------------------------------

    def save(self, run_dir: Path) -> None:
        """What ``seqlab translate`` needs besides the weights: the two tokenizer files."""
        run_dir = Path(run_dir)
        self.encoder.source.save(run_dir / "source_tokenizer.json")
        self.encoder.target.save(run_dir / "target_tokenizer.json")

    def write_predictions(self, run_dir: Path, predict: Predict, batch_size: int) -> None:
        """Decode the test pairs (validation without a test split; at most ``test_size`` /
        ``eval_size``, as evaluated) into ``predictions.jsonl``: source, reference, hypothesis,
        correct — written atomically, after a run's final evaluation and by ``seqlab evaluate``."""
        split, count = ("test", self.config.test_size) if "test" in self.data else ("validation", None)
        count = self.config.eval_size if split == "validation" else count
        part = self.raw[split]
        rows = [
            {"source": s, "reference": r, "hypothesis": h, "correct": h.split() == r.split()}
            for s, r, h in zip(part.sources, part.targets, self.decode(predict, split, count, batch_size))
        ]
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(Path(run_dir) / "predictions.jsonl", text)


def _check_nonempty(pairs: TextPairs, where: str) -> None:
    """Every source and target is a non-blank string, or a ConfigError naming the first bad pair."""
    for i, (s, t) in enumerate(zip(pairs.sources, pairs.targets, strict=True)):
        for side, text in (("source", s), ("target", t)):
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"pairs: {where}: pair {i + 1} has an empty {side} ({s!r} -> {t!r})")


@TASKS.register("translation")
class TranslationTask(PairsTask):
    """The ``pairs`` task with ``translation-en-es`` (English → Spanish, BPE both sides) by default."""

    default_dataset: ClassVar[str] = "translation-en-es"
