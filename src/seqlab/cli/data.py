"""``seqlab data list|show|prepare``: the registered datasets, their cards, and token directories.

``list`` reads only the cards (nothing is loaded); ``show`` loads the dataset and prints its
card, the statistics of every split (``container.stats()``) and a few training examples::

    $ seqlab data list
    $ seqlab data show movie-reviews --examples 5
    $ seqlab data show cmudict --json
    $ seqlab data prepare tokens --text big.txt --tokenizer bpe --vocab-size 8192 --out data/big

``prepare tokens`` streams a corpus through a tokenizer into a memory-mapped token directory
(:mod:`seqlab.data.tokendir`) for ``seqlab train --task charlm --set task.tokens=DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

__all__ = ["add_data_parser", "cmd_data_list", "cmd_data_prepare", "cmd_data_show"]


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {value}")
    return value


def add_data_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``data list`` and ``data show`` on ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "data",
        parents=[common_parent],
        help="list the bundled datasets or show one's data card, statistics and examples",
        description="Real datasets that load offline, each with a data card (source, licence, splits).",
    )
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    lp = actions.add_parser(
        "list",
        parents=[common_parent],
        help="name, kind, split sizes and summary of every registered dataset",
        description="List the registered datasets (from their cards; nothing is loaded).",
    )
    lp.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    lp.set_defaults(func=cmd_data_list)
    sp = actions.add_parser(
        "show",
        parents=[common_parent],
        help="a dataset's card, the statistics of each split and a few examples",
        description="Load a dataset and print its data card, per-split statistics and examples.",
    )
    sp.add_argument("name", help="dataset name (see `seqlab data list`)")
    sp.add_argument("--examples", type=_count, default=3, metavar="N", help="training examples (default 3)")
    sp.add_argument("--json", action="store_true", help="card, stats and examples as one JSON object")
    sp.set_defaults(func=cmd_data_show)
    _add_prepare_parser(actions, common_parent)
    return p


def _add_prepare_parser(actions: Any, common_parent: argparse.ArgumentParser) -> None:
    pp = actions.add_parser(
        "prepare",
        parents=[common_parent],
        help="tokenise a corpus once into a memory-mapped token directory (for corpora larger than RAM)",
        description=(
            "Train a tokenizer on the training text and stream the text through it into DIR "
            "(tokenizer.json, train.bin + sidecar, validation.txt); then train with "
            "`seqlab train --task charlm --set task.tokens=DIR`."
        ),
    )
    pp.add_argument("what", choices=["tokens"], help="what to prepare")
    pp.add_argument("--out", required=True, help="the token directory to create")
    source = pp.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a UTF-8 training text file (streamed, any size)")
    source.add_argument("--dataset", help="a registered text dataset (its train/validation splits)")
    pp.add_argument("--validation", help="held-out text file (default: the last --val-fraction of --text)")
    pp.add_argument(
        "--val-fraction", type=float, default=0.1, help="held-out tail of --text (default 0.1, at most 1 MiB)"
    )
    pp.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe", "wordpiece", "unigram"])
    pp.add_argument("--vocab-size", type=int, default=None, help="largest vocabulary, specials included")
    pp.add_argument("--min-frequency", type=int, default=1)
    pp.add_argument("--overwrite", action="store_true", help="replace DIR (once the new one is complete)")
    pp.set_defaults(func=cmd_data_prepare)


def cmd_data_prepare(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from seqlab.data.tokendir import prepare_token_dir
    from seqlab.errors import ConfigError

    if not 0 < args.val_fraction < 1:
        raise ConfigError(f"--val-fraction: expected a fraction in (0, 1), got {args.val_fraction}")
    options = {
        "kind": args.tokenizer,
        "vocab_size": args.vocab_size,
        "min_frequency": args.min_frequency,
        "overwrite": args.overwrite,
    }
    if args.text is not None:
        summary = prepare_token_dir(
            args.out, train=args.text, validation=args.validation, val_fraction=args.val_fraction, **options
        )
    else:
        if args.validation is not None:
            raise ConfigError("--validation goes with --text; a dataset brings its own validation split")
        train, validation = _text_splits(args.dataset)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "train.txt").write_text(train, encoding="utf-8")
            (Path(tmp) / "validation.txt").write_text(validation, encoding="utf-8")
            summary = prepare_token_dir(
                args.out, train=Path(tmp) / "train.txt", validation=Path(tmp) / "validation.txt", **options
            )
            summary["source"] = f"dataset {args.dataset}"
    print(json.dumps(summary, indent=2))
    return 0


def _text_splits(name: str) -> tuple[str, str]:
    from seqlab.data.types import Text
    from seqlab.errors import ConfigError

    splits = _registry().get(name)().load()
    train, validation = splits.get("train"), splits.get("validation")
    if not (isinstance(train, Text) and isinstance(validation, Text)):
        raise ConfigError(f"--dataset: {name!r} is not a text dataset (see `seqlab data list`, kind text)")
    return train.text, validation.text


def _registry():
    from seqlab.data.datasets import DATASETS

    return DATASETS


def _sizes(card) -> str:
    return " / ".join(f"{v:,}" for v in card.splits.values()) + f" {card.unit}"


def cmd_data_list(args: argparse.Namespace) -> int:
    datasets = _registry()
    cards = [datasets.get(name).card for name in datasets.names()]
    if args.json:
        rows = [
            {"name": c.name, "kind": c.kind, "unit": c.unit, "splits": c.splits, "summary": c.summary}
            for c in cards
        ]
        print(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "KIND", "SIZES (train / validation / test)", "SUMMARY")]
    table += [(c.name, c.kind, _sizes(c), c.summary) for c in cards]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3])
    return 0


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _format_stats(stats: dict) -> str:
    parts = []
    for key, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items())
            parts.append(f"{key} ({value})")
        else:
            parts.append(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}")
    return ", ".join(parts)


def cmd_data_show(args: argparse.Namespace) -> int:
    dataset = _registry().get(args.name)()  # an unknown name lists the choices
    splits = dataset.load()
    stats = {split: _plain(container.stats()) for split, container in splits.items()}
    examples = dataset.examples(args.examples) if args.examples else []
    if args.json:
        card = _plain(dataclasses.asdict(dataset.card))
        print(json.dumps({"card": card, "stats": stats, "examples": examples}, indent=2, ensure_ascii=False))
        return 0
    print(dataset.card.to_markdown())
    print("## statistics\n")
    for split, values in stats.items():
        print(f"- {split}: {_format_stats(values)}")
    if examples:
        print("\n## examples (train)\n")
        for example in examples:
            print(example.rstrip("\n"))
            print()
    return 0
