"""``seqlab translate RUN_DIR TEXT...``: decode texts with a trained ``pairs`` / ``translation`` run.

The run directory gives everything: ``config.yaml`` (task options: lower-casing, length caps;
the model), ``source_tokenizer.json``, ``target_tokenizer.json`` and the final ``checkpoint/``.
Each text is encoded exactly as the task encoded its sources
(:class:`~seqlab.tasks.pairs.PairEncoder`), then decoded greedily or, with ``--beam K``, by beam
search of width K (GNMT length penalty ``--alpha``). Output: one line per text,
``hypothesis<TAB>text``; with ``--json`` one JSON list of ``{"text", "hypothesis", "score"}``
(score: the hypothesis' log-probability, divided by the length penalty under beam search).
Example::

    $ seqlab translate runs/g2p-rnn hello world
    HH AH0 L OW1	hello
    W ER1 L D	world
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError, RunDirError

__all__ = ["Translator", "add_parser", "cmd_translate", "load_translator"]

PAIR_TASKS = ("pairs", "translation")


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the ``translate`` subcommand on ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "translate",
        parents=[common_parent],
        help="decode texts with a trained seq2seq run (G2P, translation; greedy or beam search)",
        description="Print the decoded output for each TEXT (task pairs / translation runs).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of task pairs/translation")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="source texts (quote each one)")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="beam width (1 = greedy, the default)")
    p.add_argument("--alpha", type=float, default=0.0, help="GNMT length penalty α of beam search")
    p.add_argument(
        "--max-len", type=int, default=None, metavar="N", help="most output tokens (default: max_target_len)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list of results")
    p.set_defaults(func=cmd_translate)
    return p


class Translator:
    """A trained seq2seq run, ready to decode texts (eval mode, CPU, no gradients)."""

    def __init__(self, model: Any, encoder: Any) -> None:
        self.model, self.encoder = model.eval(), encoder

    def translate(
        self, texts: Sequence[str], beam: int = 1, max_len: int | None = None, alpha: float = 0.0
    ) -> list[dict[str, Any]]:
        """One ``{"text", "hypothesis", "score"}`` per text; ``beam`` 1 decodes greedily."""
        import torch

        from seqlab.data.batching import pad_sequences
        from seqlab.models.decoding import beam_search

        if beam < 1:
            raise ConfigError(f"--beam: expected a positive integer, got {beam}")
        max_len = self.encoder.config.max_target_len if max_len is None else max_len
        if max_len < 1:
            raise ConfigError(f"--max-len: expected a positive integer, got {max_len}")
        tgt = self.encoder.target
        source, mask = pad_sequences(self.encoder.encode_sources(texts), pad_value=tgt.pad_id or 0)
        with torch.no_grad():
            state = self.model.start(source, mask)
            start = torch.full((len(texts),), tgt.bos_id, dtype=torch.long)
            # width 1 is greedy search (argmax each step) and also returns the log-probability
            result = beam_search(self.model, state, start, max_len + 1, beam, tgt.eos_id, tgt.pad_id, alpha)
        hyps = self.encoder.decode_targets(result.tokens[:, :max_len])  # the EOS step is not output
        return [
            {"text": t, "hypothesis": h, "score": round(float(s), 6)}
            for t, h, s in zip(texts, hyps, result.scores, strict=True)
        ]


def load_translator(run: Path) -> Translator:
    """The model and both tokenizers of a ``pairs`` / ``translation`` run directory."""
    from seqlab.config import load_file
    from seqlab.data import load_tokenizer
    from seqlab.models import build_model
    from seqlab.tasks import TASKS
    from seqlab.tasks.pairs import PairEncoder
    from seqlab.training import ExperimentConfig, load_checkpoint

    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise RunDirError(f"{run} is not a run directory (no config.yaml)")
    config = ExperimentConfig.from_dict(load_file(run / "config.yaml"))
    if config.task.name not in PAIR_TASKS:
        raise ConfigError(
            f"{run}: a run of task {config.task.name!r}; seqlab translate reads runs of task "
            f"{' or '.join(repr(t) for t in PAIR_TASKS)}"
        )
    encoder = PairEncoder(config.task.options, TASKS.get(config.task.name).default_dataset)
    encoder.source = load_tokenizer(run / "source_tokenizer.json")
    encoder.target = load_tokenizer(run / "target_tokenizer.json")
    model = build_model(config.model, encoder.io())
    load_checkpoint(run / "checkpoint", model)
    return Translator(model, encoder)


def cmd_translate(args: argparse.Namespace) -> int:
    results = load_translator(args.run_dir).translate(args.texts, args.beam, args.max_len, args.alpha)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    for r in results:
        print(f"{r['hypothesis']}\t{r['text']}")
    return 0
