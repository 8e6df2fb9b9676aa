"""``seqlab classify RUN_DIR TEXT...``: label texts with a trained ``classify`` run.

The run directory gives everything: ``config.yaml`` (model, preprocessing, lower-casing,
``max_len``, ``[CLS]``), ``tokenizer.json``, ``labels.json`` and the final ``checkpoint/``.
Each text is encoded exactly as the training texts were
(:class:`~seqlab.tasks.classify.TextEncoder`) and scored at its last token. Output, one line per
text: ``label<TAB>probability<TAB>text``; with ``--top-k K`` the K most probable labels
(``label probability`` pairs); with ``--json`` one JSON list of
``{"text", "label", "probability", "probabilities": {label: p, ...}}`` (the top K, or all labels,
most probable first). Example::

    $ seqlab classify runs/mr-lstm "A gorgeous, witty film." "Dull and far too long."
    positive	0.9412	A gorgeous, witty film.
    negative	0.8876	Dull and far too long.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError, RunDirError

__all__ = ["Classifier", "add_parser", "cmd_classify", "load_classifier"]


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the ``classify`` subcommand on ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "classify",
        parents=[common_parent],
        help="label texts with a trained text classifier (task classify)",
        description="Print the most probable label and its probability for each TEXT.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of task 'classify'")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify (quote each one)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="show the K most probable labels")
    p.add_argument("--json", action="store_true", help="print one JSON list of results")
    p.set_defaults(func=cmd_classify)
    return p


class Classifier:
    """A trained classify run, ready to label texts (eval mode, CPU, no gradients)."""

    def __init__(self, model: Any, encoder: Any, label_names: list[str]) -> None:
        self.model, self.encoder, self.label_names = model.eval(), encoder, label_names

    def probabilities(self, texts: Sequence[str]) -> Any:
        """(N, C) class probabilities of ``texts``."""
        import torch

        from seqlab.tasks.classify import make_batch
        from seqlab.training.evaluation import Predictor

        batch = make_batch(self.encoder.encode(texts), None, self.encoder.tokenizer.pad_id or 0)
        logits = Predictor(self.model)(batch)[batch.target_mask]  # (N, C): one scored position per text
        return torch.softmax(logits, dim=-1)

    def classify(self, texts: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """One ``{"text", "label", "probability", "probabilities"}`` per text (top ``top_k`` labels)."""
        C = len(self.label_names)
        k = C if top_k is None else min(top_k, C)
        results = []
        for text, p in zip(texts, self.probabilities(texts), strict=True):
            values, ids = p.topk(k)
            top = {self.label_names[i]: round(float(v), 6) for v, i in zip(values, ids.tolist())}
            label = self.label_names[int(ids[0])]
            results.append({"text": text, "label": label, "probability": top[label], "probabilities": top})
        return results


def load_classifier(run: Path) -> Classifier:
    """The model, text encoder and label names of a ``classify`` run directory."""
    from seqlab.data import load_tokenizer
    from seqlab.models import build_model
    from seqlab.spec import IOSpec
    from seqlab.tasks.classify import TextEncoder
    from seqlab.training import load_checkpoint
    from seqlab.training.rundir import load_run_config

    run = Path(run)
    config = load_run_config(run, "classify needs a per-step sequence model")
    if config.task.name != "classify":
        raise ConfigError(
            f"{run}: a run of task {config.task.name!r}; seqlab classify reads runs of task 'classify'"
        )
    labels_path = run / "labels.json"
    try:
        label_names = json.loads(labels_path.read_text(encoding="utf-8"))["label_names"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f'{labels_path}: missing or damaged (expected {{"label_names": [...]}})') from None
    tokenizer = load_tokenizer(run / "tokenizer.json")
    V = tokenizer.vocab_size
    model = build_model(config.model, IOSpec(len(label_names), V, vocab=tuple(tokenizer.tokens)))
    load_checkpoint(run / "checkpoint", model)
    return Classifier(model, TextEncoder(config.task.options, tokenizer), label_names)


def cmd_classify(args: argparse.Namespace) -> int:
    if args.top_k is not None and args.top_k < 1:
        raise ConfigError(f"--top-k: expected a positive integer, got {args.top_k}")
    results = load_classifier(args.run_dir).classify(args.texts, args.top_k)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    for r in results:
        if args.top_k is None:
            print(f"{r['label']}\t{r['probability']:.4f}\t{r['text']}")
        else:
            top = "  ".join(f"{label} {p:.4f}" for label, p in r["probabilities"].items())
            print(f"{top}\t{r['text']}")
    return 0
