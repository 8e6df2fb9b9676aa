"""``seqlab gradients``: gradient flow over time for presets (fresh init) and trained runs.

Writes ``gradient_flow.json`` and ``gradient_flow.png`` into ``--out`` and prints one table row per
model: g(1), g(T), their ratio and the largest recurrent spectral radius
(:mod:`seqlab.evaluation.gradient_flow` defines them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError, RunDirError, UnknownNameError

DTYPES = ("float64", "float32")


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the ``gradients`` subcommand on ``subparsers`` (from ``add_subparsers``)."""
    from seqlab.evaluation.gradient_flow import DEFAULT_MODELS, DEFAULT_TASK

    p = subparsers.add_parser(
        "gradients",
        parents=[common_parent],
        help="gradient flow over time (vanishing gradients): RNN vs LSTM vs GRU vs ...",
        description=(
            "Put a loss at the last step T only and measure ||dL/du_t|| at every step t and block "
            "(u_t: the mixer's input), plus the spectral radius of the recurrent matrices. Presets are "
            "built fresh (default init) and probed on the same batch of --task; run directories are "
            "loaded from their checkpoint and probed on their own task."
        ),
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="RUN_DIR_OR_PRESET",
        help="run directories (config.yaml + checkpoint/) or model presets (see `seqlab list models`)",
    )
    p.add_argument(
        "--models",
        default=None,
        help=f"comma-separated presets; default {','.join(DEFAULT_MODELS)} when nothing else is given",
    )
    p.add_argument(
        "--task", default=DEFAULT_TASK, help=f"task probed with the presets (default {DEFAULT_TASK})"
    )
    p.add_argument("--length", type=int, default=100, help="T: steps from the first input to the loss")
    p.add_argument("--batch-size", type=int, default=16, help="sequences averaged over")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe batch and the presets' init")
    p.add_argument(
        "--dtype", choices=DTYPES, default="float64", help="precision (float32 underflows the RNN's ~1e-35)"
    )
    p.add_argument("--out", type=Path, default=Path("runs/gradients"), help="output folder")
    p.set_defaults(func=cmd_gradients)
    return p


def cmd_gradients(args: argparse.Namespace) -> int:
    import torch

    from seqlab.evaluation.gradient_flow import (
        DEFAULT_MODELS,
        gradient_flow_study,
        model_gradient_flow,
        plot_gradient_flow,
        probe_batch,
    )
    from seqlab.fileio import atomic_write_text

    # 1. which presets and which runs
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out} exists and is not a directory")
    presets, runs = _split_targets(args.targets)
    presets += [m.strip() for m in (args.models or "").split(",") if m.strip()]
    if not presets and not runs:
        presets = list(DEFAULT_MODELS)
    dtype = getattr(torch, args.dtype)
    # 2. presets: fresh init, one shared batch; runs: their own task and weights
    result = (
        gradient_flow_study(
            presets,
            task=args.task,
            length=args.length,
            batch_size=args.batch_size,
            seed=args.seed,
            dtype=dtype,
        )
        if presets
        else _empty_study(args)
    )
    for record in result["models"].values():
        record["source"] = "preset"
    for run in runs:
        model, task = _load_run(run)
        batch = probe_batch(task, args.length, args.batch_size, args.seed)
        name = run.name if run.name not in result["models"] else str(run)
        result["models"][name] = model_gradient_flow(model, task, batch, dtype) | {"source": str(run)}
    # 3. write and summarise
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "gradient_flow.json", json.dumps(result, indent=1) + "\n")
    plot_gradient_flow(result, args.out / "gradient_flow.png")
    print(_table(result))
    print(f"wrote {args.out / 'gradient_flow.json'} and {args.out / 'gradient_flow.png'}", file=sys.stderr)
    return 0


def _split_targets(targets: list[str]) -> tuple[list[str], list[Path]]:
    """Positional arguments: existing directories are runs, anything else must be a preset."""
    from seqlab.models import MODELS

    presets, runs = [], []
    for target in targets:
        if Path(target).is_dir():
            runs.append(Path(target))
            continue
        try:
            MODELS.get(target)
        except UnknownNameError:
            raise ConfigError(
                f"{target!r} is neither a run directory nor a model preset "
                f"(presets: {', '.join(MODELS.names())})"
            ) from None
        presets.append(target)
    return presets, runs


def _load_run(run: Path) -> tuple[Any, Any]:
    """The trained model of a run directory and its task (built from the run's config)."""
    from seqlab.models import build_model
    from seqlab.tasks import build_task
    from seqlab.training import load_checkpoint
    from seqlab.training.rundir import load_run_config

    if not (run / "checkpoint").is_dir():
        raise RunDirError(f"{run} is not a run directory (expected config.yaml and checkpoint/)")
    config = load_run_config(run, "gradient flow needs a per-step sequence model")
    task = build_task(config.task.name, config.task.options, seed=config.train.seed)
    model = build_model(config.model, task.io)
    load_checkpoint(run / "checkpoint", model)
    return model, task


def _empty_study(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "task": None,  # no presets: each run is probed on its own task
        "length": args.length,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "dtype": args.dtype,
        "models": {},
    }


def _table(result: dict[str, Any]) -> str:
    """One row per model: g(1), g(T), g(1)/g(T) of the first block, and max ρ(W_hh)."""
    T = result["length"]
    rows = [f"{'model':18s} {'task':8s} {'g(1)':>10s} {f'g({T})':>10s} {'ratio':>10s} {'max rho':>8s}"]
    for name, r in result["models"].items():
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3g}"
        rho = "-" if r["max_spectral_radius"] is None else f"{r['max_spectral_radius']:.3f}"
        rows.append(
            f"{name:18s} {r['task']:8s} {r['g_first']:10.3g} {r['g_last']:10.3g} {ratio:>10s} {rho:>8s}"
        )
    return "\n".join(rows)
