"""``seqlab evaluate RUN_DIR [--split validation|test|all] [--json]``: re-evaluate a trained run.

Rebuilds the run's task from its saved config (same data, same seeded splits), loads the final
weights from ``RUN_DIR/checkpoint`` (or ``--checkpoint best|step-N`` from ``checkpoints/``),
runs the task's own evaluation — the metrics the run reported, e.g. accuracy per test length
for the length-generalisation tasks — and writes ``evaluation.json`` (atomically), a plot of
accuracy against length (``accuracy_by_length.png``) when the metrics have one, plus, for
tasks that keep them, the predictions for error analysis: into ``RUN_DIR`` for the final model,
into ``RUN_DIR/evaluation-<checkpoint>/`` for ``--checkpoint``, so the final model's files are
never replaced by another checkpoint's. Nothing is trained.

    $ seqlab evaluate runs/parity --split test
    $ seqlab evaluate runs/mr --json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError

SPLITS = {"validation": "val_", "test": "test_"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="re-evaluate a trained run on its validation and/or test split",
        description="Rebuild a run's task and model, load its weights and print the task's metrics.",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by `seqlab train`")
    p.add_argument("--split", choices=["validation", "test", "all"], default="all")
    p.add_argument(
        "--checkpoint", default=None, help="best | step-N (from checkpoints/); default: the final model"
    )
    p.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=cmd_evaluate)


def select(metrics: dict[str, Any], split: str) -> dict[str, Any]:
    """The metrics of one split (by the ``val_`` / ``test_`` prefix), or all of them."""
    if split == "all":
        return metrics
    chosen = {k: v for k, v in metrics.items() if k.startswith(SPLITS[split])}
    if not chosen:
        raise ConfigError(f"this task reports no {split} metrics (it has: {', '.join(sorted(metrics))})")
    return chosen


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqlab.fileio import atomic_write_text
    from seqlab.training.evaluation import evaluate, write_predictions
    from seqlab.training.rundir import load_trained

    run = args.run_dir
    trained = load_trained(run, args.checkpoint)
    config, task, model = trained.config, trained.task, trained.model
    batch_size = args.batch_size or config.train.eval_batch_size
    if batch_size <= 0:
        raise ConfigError(f"--batch-size: expected a positive integer, got {batch_size}")
    metrics = select(evaluate(model, task, batch_size), args.split)
    # the final model's files sit in the run directory; another checkpoint's in a folder of its own
    out = run if args.checkpoint is None else run / f"evaluation-{args.checkpoint}"
    out.mkdir(exist_ok=True)
    write_predictions(model, task, out, batch_size)  # for error analysis, where the task keeps them
    atomic_write_text(out / "evaluation.json", json.dumps(metrics, indent=2, default=str) + "\n")
    plot_accuracy_by_length(metrics, task, out / "accuracy_by_length.png", f"{config.task.name}: {run.name}")
    if args.json:
        print(json.dumps(metrics, default=str))
    else:
        for key, value in metrics.items():
            print(f"{key:28s} {_show(value)}")
    return 0


def plot_accuracy_by_length(metrics: dict[str, Any], task: Any, path: Path, title: str) -> Path | None:
    """Accuracy against length, a line per split that reports it (``test_acc_by_length``, ...),
    chance dashed where known; None (nothing written) when no metric is by length."""
    from functools import partial

    from seqlab.evaluation.plots import plot_by_length
    from seqlab.evaluation.suite import chance_level
    from seqlab.fileio import atomic_write

    suffix = "_acc_by_length"
    curves = {
        key[: -len(suffix)]: {int(n): float(a) for n, a in value.items()}
        for key, value in metrics.items()
        if key.endswith(suffix) and isinstance(value, dict) and value
    }
    if not curves:
        return None
    atomic_write(path, partial(plot_by_length, curves, title=title, chance=chance_level(task)))
    return path


def _show(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, dict) and len(value) > 8:  # e.g. accuracy by length: one line, compact
        return json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in value.items()})
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
