"""``seqlab`` command line: list, train (and resume), evaluate, generate, gradients, data.

Errors in user input print one line ``error: ...`` to stderr and exit with status 2
(``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError, SeqlabError

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except (SeqlabError, KeyboardInterrupt) as err:
        if args.debug:
            raise
        message = "interrupted" if isinstance(err, KeyboardInterrupt) else str(err)
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, SeqlabError) else 130


def _common_options(default) -> argparse.ArgumentParser:
    """--debug / --verbose, accepted before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=default, help="show tracebacks on errors")
    common.add_argument("--verbose", "-v", action="store_true", default=default, help="log at INFO level")
    return common


def build_parser() -> argparse.ArgumentParser:
    # the subcommands' copies must not reset a flag given before the subcommand
    common = _common_options(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="seqlab",
        parents=[_common_options(False)],
        description="Train, evaluate and compare sequence models (RNN, LSTM, GRU, ...).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "list",
        parents=[common],
        help="list registered mixers, models or tasks",
        description="List registered names with a one-line description.",
    )
    p.add_argument("kind", choices=["mixers", "models", "tasks"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model on a task",
        description="Train a model preset on a task and write a run directory.",
    )
    p.add_argument("--task", default=None, help="task name (see `seqlab list tasks`); default from --config")
    p.add_argument("--model", default=None, help="model preset (see `seqlab list models`), default lstm")
    p.add_argument("--config", type=Path, help="YAML/JSON experiment config (task/model/train sections)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.d_model=64 (repeatable)",
    )
    p.add_argument("--out", type=Path, help="run directory (default runs/<task>-<model>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="allow an existing, non-empty run directory")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest good checkpoint (config from RUN_DIR; "
        "--set may change e.g. train.steps, train.eval_every, train.patience, train.threads)",
    )
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON line last")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "generate",
        parents=[common],
        help="sample text from a trained language model",
        description="Continue a prompt with a trained language model's run directory.",
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument(
        "--prompt", default=None, help="text to continue (default: a newline; after --label: nothing)"
    )
    p.add_argument("--label", default=None, help="condlm runs: the label to condition on, e.g. positive")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (deterministic)")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument(
        "--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats (CTRL); 1 = off"
    )
    p.add_argument("--beam", type=int, default=0, help="beam search of this width instead of sampling")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    from seqlab.cli import baseline, classify, compare, evaluate, gradients, report, series, suite, translate
    from seqlab.cli.bench import add_parser as add_bench_parser
    from seqlab.cli.data import add_data_parser
    from seqlab.cli.export import add_parser as add_export_parser

    evaluate.add_parser(sub, common)
    gradients.add_parser(sub, common)
    classify.add_parser(sub, common)
    translate.add_parser(sub, common)
    series.add_parser(sub, common)
    suite.add_parser(sub, common)
    compare.add_parser(sub, common)
    baseline.add_parser(sub, common)
    add_export_parser(sub, common)
    report.add_parser(sub, common)
    add_bench_parser(sub, common)
    add_data_parser(sub, common)
    return parser


# -- list -----------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from seqlab.mixers import MIXERS
    from seqlab.models import MODELS
    from seqlab.tasks import TASKS

    registry = {"mixers": MIXERS, "models": MODELS, "tasks": TASKS}[args.kind]
    width = max(map(len, registry.names()), default=0)
    for name in registry.names():
        doc = (registry.get(name).__doc__ or "").strip().splitlines()
        print(f"{name:{width}s}  {doc[0] if doc else ''}")
    return 0


# -- train ----------------------------------------------------------------------------------------


def die_with_parent() -> None:
    """A trainer started by ``seqlab suite`` / ``compare`` (``SEQLAB_PARENT_PID`` set) gets
    SIGTERM when that process dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``): a killed
    study leaves no orphan trainer holding its runs; a re-run resumes them from their checkpoints."""
    parent = os.environ.get("SEQLAB_PARENT_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before the line above took effect
        sys.exit(143)


def cmd_train(args: argparse.Namespace) -> int:
    from seqlab.training import train

    die_with_parent()

    if args.resume:
        config = _resume_config(args)
        out = args.resume
    else:
        from seqlab.training.config import resolve_config

        config = resolve_config(args.task, args.model, args.config, args.overrides)
        model_name = args.model or ("config" if args.config else "lstm")
        out = args.out or Path("runs") / f"{config.task.name}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise ConfigError(f"run directory {out} is not empty; pass --overwrite or choose another --out")
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone reports
    if main_process:
        print(f"run directory: {out}", file=sys.stderr)
    metrics = train(
        config, out, progress=not args.no_progress, resume=bool(args.resume), overwrite=args.overwrite
    )
    if not main_process:
        return 0
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in scalars.items():
            print(f"{key:20s} {value:.4f}" if isinstance(value, float) else f"{key:20s} {value}")
    return 0


def _resume_config(args: argparse.Namespace) -> Any:
    """The saved config of the run to resume, with --set overrides. --task/--model/--config, if
    given, must describe the same task and model as the saved run (every difference is named)."""
    from seqlab.config import apply_overrides, load_file
    from seqlab.errors import RunDirError
    from seqlab.training import ExperimentConfig
    from seqlab.training.config import resolve_config
    from seqlab.training.rundir import check_resumable

    saved_path = args.resume / "config.yaml"
    if not saved_path.is_file():
        raise RunDirError(f"--resume {args.resume}: not a run directory (no config.yaml)")
    if args.out and args.out.resolve() != args.resume.resolve():
        raise ConfigError("--resume continues a run in place; do not pass a different --out")
    saved = load_file(saved_path)
    if args.task or args.model or args.config:
        task = args.task or ExperimentConfig.from_dict(saved).task.name
        check_resumable(resolve_config(task, args.model, args.config, args.overrides), args.resume)
    return ExperimentConfig.from_dict(apply_overrides(saved, args.overrides))


# -- generate -------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from seqlab.data import load_tokenizer
    from seqlab.errors import RunDirError
    from seqlab.models import SequenceModel
    from seqlab.spec import IOSpec
    from seqlab.training import load_checkpoint
    from seqlab.training.rundir import load_run_config

    run = args.run_dir
    config = load_run_config(run, "generate continues a causal language model")
    tokenizer_path = run / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise RunDirError(f"{run} has no tokenizer.json: task {config.task.name!r} is not a language model")
    tokenizer = load_tokenizer(tokenizer_path)
    vocab, decode, ids, allowed = tuple(tokenizer.words), tokenizer.decode, None, None
    if args.label is not None or config.task.name == "condlm":  # [LABEL_k] + prompt
        from seqlab.tasks.condlm import generation_prompt

        control, ids = generation_prompt(run, config.task, tokenizer, args.label, args.prompt)
        vocab, decode, allowed = control.words, control.decode, control.V  # never emit [LABEL_k]
        if args.beam:
            raise ConfigError(
                "--beam is not available for condlm runs (--label); sample or use --temperature 0"
            )
    V = len(vocab)
    model = SequenceModel(config.model, IOSpec(output_dim=V, vocab_size=V, vocab=vocab))
    load_checkpoint(run / "checkpoint", model)
    if ids is None:
        if args.prompt == "":
            raise ConfigError("--prompt must not be empty")
        ids = tokenizer.encode("\n" if args.prompt is None else args.prompt)
    prompt = torch.tensor([ids])
    if args.beam:
        from seqlab.models.decoding import lm_beam_search

        out = lm_beam_search(model, prompt, args.max_new_tokens, args.beam)
    else:
        generator = torch.Generator().manual_seed(args.seed)
        out = model.generate(
            prompt,
            args.max_new_tokens,
            args.temperature,
            args.top_k,
            args.top_p,
            generator,
            args.repetition_penalty,
            allowed,
        )
    print(decode(out[0].tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
