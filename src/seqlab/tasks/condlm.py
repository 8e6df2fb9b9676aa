"""One-to-many generation: a language model conditioned on a label by a control token.

Shape legend: B batch · T time (tokens of the longest example in the batch) · V tokenizer
vocabulary · C labels.

Each labelled text becomes ``[LABEL_k] text [EOS]`` (CTRL, Keskar et al. 2019): the control token
``[LABEL_k]`` is an extra vocabulary entry after the tokenizer's V tokens (id ``V + k``), read as
the first input; the model learns ``p(text, [EOS] | label) = Π_t p(x_t | [LABEL_k], x_<t)``. The
loss is next-token cross-entropy on the text and [EOS], **never on the control token** (it is
an input only, so nothing asks the model to guess the label).

Worked example (char tokens: the 7 special tokens [PAD]=0 … [EOS]=3 … [MASK]=6, then
a=7 b=8 d=9 k=10 o=11, so V = 12; labels negative → [LABEL_negative] = 12, positive → 13)::

    "ok"  (positive)   [13, 11, 10, 3]     = [LABEL_positive] o k [EOS]
    "bad" (negative)   [12, 8, 7, 9, 3]    = [LABEL_negative] b a d [EOS]

    inputs       [[13, 11, 10, 0], [12, 8, 7, 9]]          (all but the last token; pad 0)
    targets      [[11, 10, 3, -100], [8, 7, 9, 3]]         (all but the control token)
    target_mask  [[1, 1, 1, 0], [1, 1, 1, 1]]

The data options are those of the ``classify`` task (``dataset`` — default ``movie-reviews`` —
or a user's ``table`` with ``text_column`` / ``label_column`` / ``split``; ``tokenizer`` — here
``char`` by default, or ``bpe`` …, trained on the training split only; ``lowercase``,
``preprocess``, ``min_frequency``, ``vocab_size``); ``max_len`` caps the **text** tokens
(the control token and [EOS] come on top).

Metrics, for ``val_*`` and ``test_*`` (the loss of example i under label k, in nats, is
``L_i(k) = −Σ_t log p(x_t | [LABEL_k], x_<t)`` over its text tokens and [EOS]):

- ``loss = Σ_i L_i(y_i) / Σ_i (n_i + 1)`` (nats per token), ``ppl = exp(loss)``, and
  ``bpc = Σ_i L_i(y_i) / ln 2 / Σ_i (c_i + 1)``: bits per character of the texts, where c_i is
  the number of characters the kept tokens cover and [EOS] counts as one character (the end of
  the line), so for char tokens ``bpc = loss / ln 2``;
- the same with a **wrong** label, ``w(y) = (y + 1) mod C`` — a derangement of the labels
  (w(k) ≠ k for every k, and every label is some label's wrong one): ``loss_wrong``,
  ``ppl_wrong``, ``bpc_wrong``, and ``cond_gain_bpc = bpc_wrong − bpc``, > 0 when the model
  uses the label (≈ 0 for a model that ignores it);
- ``label_acc``: the model as a generative classifier, ``argmin_k L_i(k) == y_i`` (uniform prior).

**Control accuracy** (``control_acc``, and ``control_acc_<label>`` per label): ``control_samples``
texts are sampled per label (seeded by the task seed, ``sample_temperature``, at most
``sample_max_len`` tokens; a sample ends at [EOS]) and classified by the TF-IDF n-gram logistic
regression of :func:`~seqlab.evaluation.baselines.fit_ngram_logreg`, fitted on the training split
(C chosen on validation); the share classified as the requested label. For scale,
``control_classifier_acc`` is that classifier's accuracy on the real test (else validation) texts.
:meth:`CondLMTask.write_predictions` writes the samples to ``samples.json`` / ``samples.md``.
``seqlab generate RUN_DIR --label positive [--prompt TEXT]`` samples from a trained run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_positive
from seqlab.data import Tokenizer
from seqlab.data.batching import bucket_batches, pad_sequences
from seqlab.errors import ConfigError, RunDirError
from seqlab.fileio import atomic_write_text
from seqlab.spec import IOSpec
from seqlab.tasks.base import IGNORE, TASKS, Batch, Predict, bits
from seqlab.tasks.classify import ClassifyConfig, ClassifyTask, TextEncoder

__all__ = [
    "CondLMConfig",
    "CondLMTask",
    "LabelVocab",
    "generation_prompt",
    "make_batch",
    "sample",
    "wrong_labels",
]


@dataclass
class CondLMConfig(ClassifyConfig):
    """The ``classify`` data options (see :class:`~seqlab.tasks.classify.ClassifyConfig`), with
    char tokens by default, ``max_len`` = most **text** tokens (300: no movie-review sentence is
    cut), and the sampling of the control-accuracy metric: ``control_samples`` per label (0 = off),
    ``sample_temperature`` (0 = greedy), ``sample_max_len`` tokens at most per sample."""

    tokenizer: Literal["char", "word", "bpe", "wordpiece", "unigram"] = "char"
    max_len: int = 300
    cls_token: bool = field(default=False, init=False)  # no [CLS] read-out: not an option here
    control_samples: int = 32
    sample_temperature: float = 1.0
    sample_max_len: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("control_samples", self.control_samples, allow_zero=True)
        check_positive("sample_temperature", self.sample_temperature, allow_zero=True)
        check_positive("sample_max_len", self.sample_max_len)


class LabelVocab:
    """The vocabulary of a conditioned LM: the tokenizer's V tokens, then one control token per label.

    Ids ``0 … V−1`` are the tokenizer's (its special tokens, [EOS] among them, come first);
    id ``V + k`` is ``[LABEL_<name_k>]``. Size ``V + C``; the model's input and output both use it.
    """

    def __init__(self, tokenizer: Tokenizer, label_names: Sequence[str]) -> None:
        if tokenizer.eos_id is None:
            raise ConfigError("condlm: the tokenizer has no [EOS] token to end the texts with")
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.V = tokenizer.vocab_size
        self.eos = tokenizer.eos_id

    @property
    def words(self) -> tuple[str, ...]:
        """Each of the V + C tokens as a plain word (the control tokens as ``[LABEL_name]``)."""
        return (*self.tokenizer.words, *(f"[LABEL_{name}]" for name in self.label_names))

    def label_index(self, name: str) -> int:
        """The index k of label ``name`` (or of the one label it is a prefix of: ``pos`` → positive)."""
        if name in self.label_names:
            return self.label_names.index(name)
        matches = [k for k, n in enumerate(self.label_names) if n.startswith(name)] if name else []
        if len(matches) != 1:
            raise ConfigError(f"--label {name!r}: unknown label; choose from {', '.join(self.label_names)}")
        return matches[0]

    def example(self, label: int, ids: Tensor) -> Tensor:
        """(n + 2,) ``[LABEL_k] ids [EOS]`` from (n,) text token ids."""
        return torch.cat([torch.tensor([self.V + label]), ids, torch.tensor([self.eos])])

    def decode(self, ids: Sequence[int]) -> str:
        """The text of a generated sequence: up to its first [EOS], control tokens dropped."""
        ids = list(ids)
        ids = ids[: ids.index(self.eos)] if self.eos in ids else ids
        return self.tokenizer.decode([i for i in ids if i < self.V])


def make_batch(sequences: Sequence[Tensor], labels: Sequence[int] | Tensor, vocab: LabelVocab) -> Batch:
    """Right-padded batch of ``[LABEL_k] text [EOS]`` examples (see the module docstring).

    ``sequences``: B (n_b,) text token ids; inputs are ``[LABEL_y] text`` and targets
    ``text [EOS]`` (T = max n_b + 1), so the control token is read and never scored.
    """
    y = torch.as_tensor(labels, dtype=torch.long)  # (B,)
    full = [vocab.example(int(k), s) for k, s in zip(y, sequences)]
    pad = vocab.tokenizer.pad_id or 0
    inputs, mask = pad_sequences([f[:-1] for f in full], pad_value=pad)  # (B, T), (B, T)
    targets, _ = pad_sequences([f[1:] for f in full], pad_value=IGNORE)  # (B, T)
    return Batch(inputs, targets, mask.clone(), mask, mask.sum(dim=1), labels=y)


def wrong_labels(labels: Tensor, num_labels: int) -> Tensor:
    """The wrong label of each example, ``(y + 1) mod C``: a derangement (never the true label)."""
    return (labels + 1) % num_labels


@torch.no_grad()
def sample(
    predict: Predict,
    prompts: Tensor,
    max_new_tokens: int,
    temperature: float,
    vocab: LabelVocab,
    generator: torch.Generator,
) -> list[list[int]]:
    """Sample continuations of ``prompts`` (B, T0) through ``predict`` until [EOS] or the cap.

    Model-agnostic: each step re-reads the prefix (teacher-forced outputs, last position), so
    the cost grows with the square of the length — fine for sentences. Only the tokenizer's V
    tokens are drawn (never a control token), from ``softmax(logits / temperature)``
    (``temperature = 0``: argmax). Rows stop at their first [EOS]; only unfinished rows are run.

    Returns:
        B lists of new token ids, each ending in [EOS] unless it reached ``max_new_tokens``.
    """
    tokens = prompts.clone()  # (B, t)
    B = tokens.shape[0]
    new: list[list[int]] = [[] for _ in range(B)]
    active = torch.arange(B)
    for _ in range(max_new_tokens):
        x = tokens[active]  # (b, t)
        logits = predict(Batch(x, torch.zeros_like(x), torch.ones_like(x, dtype=torch.bool)))
        logits = logits[:, -1, : vocab.V].float()  # (b, V): the next token, control tokens excluded
        if temperature == 0:
            nxt = logits.argmax(-1)  # (b,)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
        step = torch.full((B,), vocab.eos, dtype=torch.long)
        step[active] = nxt
        tokens = torch.cat([tokens, step[:, None]], dim=1)  # (B, t + 1)
        for row, tok in zip(active.tolist(), nxt.tolist()):
            new[row].append(tok)
        active = active[nxt != vocab.eos]
        if len(active) == 0:
            break
    return new


@TASKS.register("condlm")
class CondLMTask(ClassifyTask):
    """One-to-many generation from a label (control token); bpc with true vs wrong label, control accuracy."""

    Config = CondLMConfig
    primary_metric = "val_bpc"
    train_defaults: ClassVar[dict[str, Any]] = {
        "steps": 1500,
        "batch_tokens": 2048,
        "lr": 4e-3,
        "warmup_steps": 50,
        "eval_every": 500,
        "eval_batch_size": 128,
    }

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        # the classify task loads the splits, fits the tokenizer on the training texts, encodes
        # them (no [CLS]: self.data holds the text ids) and buckets the training texts by length
        super().__init__(config, seed)
        self.vocab = LabelVocab(self.tokenizer, self.label_names)
        # an example is read as n + 1 inputs ([LABEL_k] + text): the lengths batches pad to
        self.lengths = {split: n + 1 for split, n in self.lengths.items()}
        size = self.vocab.V + len(self.label_names)
        self.io = IOSpec(output_dim=size, vocab_size=size, vocab=self.vocab.words)
        self._classifier: Any = None

    def _batch(self, split: str, index: Tensor, labels: Tensor | None = None) -> Batch:
        """Examples ``index`` of ``split``, conditioned on their own labels or on ``labels`` (B,)."""
        seqs = [self.data[split][i] for i in index.tolist()]
        return make_batch(seqs, self.labels[split][index] if labels is None else labels, self.vocab)

    # -- evaluation ------------------------------------------------------------------------------

    def label_nll(self, predict: Predict, split: str, batch_size: int) -> Tensor:
        """(N, C) ``L_i(k)``: nats of example i's text and [EOS] when conditioned on label k."""
        N, C = len(self.data[split]), len(self.label_names)
        nll = torch.zeros(N, C, dtype=torch.float64)
        for index in bucket_batches(self.lengths[split], batch_size=batch_size, shuffle=False):
            for k in range(C):
                batch = self._batch(split, index, torch.full((len(index),), k))
                logits = predict(batch)  # (B, T, V + C)
                ce = F.cross_entropy(logits.transpose(1, 2), batch.targets, reduction="none")  # (B, T)
                nll[index, k] = (ce.double() * batch.target_mask).sum(dim=1)  # sums in float64
        return nll

    def characters(self, split: str) -> Tensor:
        """(N,) characters the kept text tokens of each example cover (its normalised text)."""
        texts = self.encoder.normalise(self.raw[split].texts)
        out = []
        for text, ids in zip(texts, self.data[split]):
            spans = self.tokenizer.encode_with_offsets(text)[1][: len(ids)]
            out.append(spans[-1][1] if spans else 0)
        return torch.tensor(out, dtype=torch.float64)

    def split_metrics(self, nll: Tensor, split: str, prefix: str) -> dict[str, float]:
        """Metrics of one split from its (N, C) :meth:`label_nll` (equations in the module docstring)."""
        y = self.labels[split]
        rows = torch.arange(len(y))
        tokens = float((self.lengths[split]).sum())  # n_i + 1 scored tokens per example
        chars = float((self.characters(split) + 1).sum())  # [EOS] counts as one character
        out: dict[str, float] = {}
        for suffix, labels in (("", y), ("_wrong", wrong_labels(y, len(self.label_names)))):
            nats = float(nll[rows, labels].double().sum())
            out[f"{prefix}_loss{suffix}"] = nats / tokens
            out[f"{prefix}_ppl{suffix}"] = math.exp(nats / tokens)
            out[f"{prefix}_bpc{suffix}"] = bits(nats / chars)
        out[f"{prefix}_cond_gain_bpc"] = out[f"{prefix}_bpc_wrong"] - out[f"{prefix}_bpc"]
        out[f"{prefix}_label_acc"] = float((nll.argmin(dim=1) == y).double().mean())
        return out

    def classifier(self) -> Any:
        """The TF-IDF n-gram logistic regression of the control accuracy (fitted once, on train)."""
        if self._classifier is None:
            from seqlab.evaluation.baselines import fit_ngram_logreg

            self._classifier = fit_ngram_logreg(self.raw)
        return self._classifier

    def samples(self, predict: Predict) -> dict[str, list[str]]:
        """``control_samples`` sampled texts per label, seeded by the task seed (same every call)."""
        c, n = self.config, self.config.control_samples
        labels = torch.arange(len(self.label_names)).repeat_interleave(n)  # (C·n,)
        prompts = (self.vocab.V + labels)[:, None]  # (C·n, 1): the control tokens
        generator = torch.Generator().manual_seed(self.seed)
        new = sample(predict, prompts, c.sample_max_len, c.sample_temperature, self.vocab, generator)
        texts = [self.vocab.decode(ids) for ids in new]
        return {name: texts[k * n : (k + 1) * n] for k, name in enumerate(self.label_names)}

    def control_metrics(self, samples: dict[str, list[str]]) -> dict[str, float]:
        """``control_acc`` (all samples), ``control_acc_<label>`` and ``control_classifier_acc``."""
        clf = self.classifier()
        out, hits = {}, []
        for k, (name, texts) in enumerate(samples.items()):
            right = [p == k for p in clf.predict(texts)]
            out[f"control_acc_{name}"] = sum(right) / max(len(right), 1)
            hits += right
        real = self.raw["test" if "test" in self.raw else "validation"]
        predicted = clf.predict(real.texts)
        out["control_classifier_acc"] = sum(p == y for p, y in zip(predicted, real.labels)) / len(real.labels)
        return {"control_acc": sum(hits) / max(len(hits), 1)} | out

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        """``val_*`` / ``test_*`` bpc with the true and a wrong label, and the control accuracy."""
        metrics: dict[str, Any] = {}
        for split, prefix in (("validation", "val"), ("test", "test")):
            if split in self.data:
                metrics |= self.split_metrics(self.label_nll(predict, split, batch_size), split, prefix)
        if self.config.control_samples:
            metrics |= self.control_metrics(self.samples(predict))
        return metrics

    # -- run directory ---------------------------------------------------------------------------

    def write_predictions(self, run_dir: Path, predict: Predict, batch_size: int) -> None:
        """``samples.json`` and ``samples.md``: the control-accuracy samples per label, each with
        the label the classifier gives it. Inherited :meth:`save` writes tokenizer.json and labels.json."""
        if not self.config.control_samples:
            return
        samples, clf = self.samples(predict), self.classifier()
        report = {
            name: [
                {"text": t, "classified_as": self.label_names[p]} for t, p in zip(texts, clf.predict(texts))
            ]
            for name, texts in samples.items()
        }
        run_dir = Path(run_dir)
        atomic_write_text(run_dir / "samples.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        lines = [f"# Samples per label (temperature {self.config.sample_temperature})"]
        for name, rows in report.items():
            right = sum(r["classified_as"] == name for r in rows)
            lines += ["", f"## {name} ({right} of {len(rows)} classified as {name})", ""]
            lines += [f"- [{r['classified_as']}] {r['text']}" for r in rows]
        atomic_write_text(run_dir / "samples.md", "\n".join(lines) + "\n")


def generation_prompt(
    run: Path, task: Any, tokenizer: Tokenizer, label: str | None, prompt: str | None
) -> tuple[LabelVocab, list[int]]:
    """For ``seqlab generate --label``: the run's :class:`LabelVocab` and the prompt's ids
    ``[LABEL_k] + prompt`` (the prompt normalised as the training texts were).

    Args:
        run: the run directory (its labels.json names the labels).
        task: the run's task section (``name`` and ``options``).
        label: a label name (or a prefix of exactly one); required for a condlm run.
        prompt: text the sample starts with (None: nothing after the control token).

    Raises:
        ConfigError: ``--label`` on a run that is not a condlm run, no ``--label`` on one, or an
            unknown label (the choices are listed).
    """
    if task.name != "condlm":
        raise ConfigError(
            f"--label: {run} is a run of task {task.name!r}, which is not conditioned on a label; "
            "--label needs a run of task 'condlm'"
        )
    path = Path(run) / "labels.json"
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["label_names"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f'{path}: missing or damaged (expected {{"label_names": [...]}})') from None
    vocab = LabelVocab(tokenizer, names)
    if label is None:
        raise ConfigError(f"--label: {run} is a condlm run; choose a label from {', '.join(names)}")
    k = vocab.label_index(label)
    text = TextEncoder(task.options, tokenizer).normalise([prompt])[0] if prompt else ""
    return vocab, [vocab.V + k, *tokenizer.encode(text)]
