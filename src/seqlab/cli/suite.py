"""``seqlab suite [PRESET] --out DIR``: train a task × model × seed grid and report it.

Every run is its own ``seqlab train`` process under ``DIR/runs/<task>/<model>/seed-<s>``; the
results go to ``DIR/results.jsonl``, ``DIR/table.md`` and ``DIR/per_length_<task>.png``
(see :mod:`seqlab.evaluation.suite`). Re-running the same command skips finished runs and
resumes interrupted ones.

    $ seqlab suite long-range --out runs/long-range --jobs 2
    $ seqlab suite --tasks parity even-pairs --models lstm transformer --steps 100 --out /tmp/lr
    $ seqlab suite --out /tmp/lr --set copy:task.test_max_len=100 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from seqlab.evaluation.suite import PRESETS

    p = sub.add_parser(
        "suite",
        parents=[common],
        help="train a task × model grid (e.g. the long-range benchmarks) and write a table and plots",
        description="Train every (task, model, seed) of a suite as its own run; skip finished runs and "
        "resume interrupted ones; write results.jsonl, table.md and per-length plots.",
    )
    p.add_argument("preset", nargs="?", default="long-range", help=f"one of: {', '.join(sorted(PRESETS))}")
    p.add_argument("--out", type=Path, required=True, help="the suite's directory (re-use it to resume)")
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks to run (default: the preset's)")
    p.add_argument("--models", nargs="+", metavar="MODEL", help="model presets (default: the preset's)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="seeds (default: 0)")
    p.add_argument("--steps", type=int, help="training steps per run (sets train.steps)")
    add_scoped_set(p)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, each with cores // jobs threads")
    p.set_defaults(func=cmd_suite)


def add_scoped_set(p: argparse.ArgumentParser) -> None:
    """``--set [NAME:]KEY=VALUE`` (repeatable) of the grid commands (suite, compare)."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[NAME:]KEY=VALUE",
        help="override a config value in every run, or with NAME: in one task's or model's runs only, "
        "e.g. --set model.d_model=64 --set copy:task.test_max_len=100 (repeatable, after the preset's)",
    )


def cmd_suite(args: argparse.Namespace) -> int:
    from seqlab.errors import ConfigError
    from seqlab.evaluation.suite import preset, run_suite
    from seqlab.training.config import resolve_config

    suite = preset(args.preset)
    suite.tasks = args.tasks or suite.tasks
    suite.models = args.models or suite.models
    suite.seeds = args.seeds if args.seeds is not None else suite.seeds
    if args.steps is not None:
        if args.steps <= 0:
            raise ConfigError(f"--steps: expected a positive integer, got {args.steps}")
        suite.overrides.append(f"train.steps={args.steps}")
    suite.overrides += args.overrides
    suite.check()  # names first: nothing below builds a config for an unknown task

    def check(spec: Any) -> None:  # every run's config resolves (bad --set keys fail before training)
        resolve_config(spec.task, spec.model, None, list(spec.overrides))

    # `kill PID` (SIGTERM) unwinds like Ctrl-C: the runner stops its trainers (checkpoints stay)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.perf_counter()
    result = run_suite(suite, args.out, jobs=args.jobs, check=check, report=say)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items())
    say(f"done in {time.perf_counter() - start:.0f} s ({counts}); table: {args.out / 'table.md'}")
    print((args.out / "table.md").read_text(), end="")
    return 1 if result.counts["failed"] else 0


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)
