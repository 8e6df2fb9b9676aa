"""``seqlab compare``: the comparison study — every architecture on the same tasks, data and budget.

    $ seqlab compare                          # the quick preset into runs/compare (≤ 10 min, 2 cores)
    $ seqlab compare --preset standard --out runs/std --jobs 2
    $ seqlab compare --models lstm transformer mlstm --tasks parity charlm --out /tmp/c
    $ seqlab compare --data my_series.csv              # your series replaces the forecasting data

Re-running the same command into the same ``--out`` skips finished work and resumes the rest
(also after Ctrl-C or a kill). The report: ``OUT/report.html`` (self-contained), ``report.md``,
``report.json``; ``seqlab report OUT`` rewrites it. See :mod:`seqlab.evaluation.study`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from seqlab.cli.suite import add_scoped_set
    from seqlab.evaluation.study import DEFAULT_MODELS, PRESETS

    p = sub.add_parser(
        "compare",
        parents=[common],
        help="the comparison study: train and measure every architecture, write an HTML report",
        description="Train every selected architecture at a matched parameter budget and a matched "
        "training budget on a task suite, measure speed, memory, latency and gradient flow, and write "
        "a report (HTML, Markdown, JSON). A re-run skips finished work and resumes the rest.",
    )
    p.add_argument("--preset", default="quick", help=f"one of: {', '.join(PRESETS)} (default: quick)")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="the study's directory")
    p.add_argument(
        "--models", nargs="+", metavar="MODEL", help=f"model presets (default: {' '.join(DEFAULT_MODELS)})"
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="study tasks (default: the preset's)")
    p.add_argument(
        "--data",
        type=Path,
        help="your data: a .txt file (char-LM), a CSV/TSV with text,label columns (classification) "
        "or with numeric columns (forecasting); it replaces that task's built-in data",
    )
    p.add_argument("--budget", choices=("time", "steps"), help="matched training seconds or steps per run")
    p.add_argument("--seconds", type=float, help="training seconds per run (--budget time)")
    p.add_argument("--steps", type=int, help="training steps per run (--budget steps; deterministic)")
    p.add_argument("--params", type=int, help="target parameters of each model's blocks")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="seeds (default: the preset's)")
    add_scoped_set(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs in parallel, each with cores // jobs threads (default: min(2, cores))",
    )
    p.set_defaults(func=cmd_compare)


def build_study(args: argparse.Namespace) -> Any:
    """The study the options ask for, checked (unknown names and bad values fail here)."""
    from dataclasses import replace

    from seqlab.errors import ConfigError
    from seqlab.evaluation.study import preset, select, with_data

    study = select(preset(args.preset), args.models, args.tasks)
    changes: dict[str, Any] = {}
    for name in ("budget", "seconds", "steps", "params", "seeds"):
        value = getattr(args, name)
        if value is None:
            continue
        if name in ("seconds", "steps", "params") and value <= 0:
            raise ConfigError(f"--{name}: expected a positive number, got {value}")
        changes["target_params" if name == "params" else name] = value
    if "steps" in changes and "budget" not in changes:
        changes["budget"] = "steps"
    study = replace(study, **changes, overrides=[*study.overrides, *args.overrides])
    if args.data is not None:
        study = with_data(study, args.data)
    return study


def cmd_compare(args: argparse.Namespace) -> int:
    from seqlab.cli.suite import say
    from seqlab.evaluation.study import run_study

    study = build_study(args)
    jobs = args.jobs or max(1, min(2, len(os.sched_getaffinity(0))))
    # `kill PID` (SIGTERM) unwinds like Ctrl-C: the runner stops its trainers (checkpoints stay)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    start = time.perf_counter()
    result = run_study(study, args.out, jobs=jobs, report=say)
    counts = ", ".join(f"{n} {k}" for k, n in result["suite"].counts.items())
    say(f"study done in {time.perf_counter() - start:.0f} s ({counts})")
    for kind, path in result["paths"].items():
        print(f"{kind}: {path}")
    return 1 if result["suite"].counts["failed"] else 0
