"""Run directories: what a run owns in them, replacing an old run safely, resuming the same run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.config import load_file
from seqlab.errors import ConfigError, RunDirError

RUN_FILES = (
    "config.yaml",
    "metrics.jsonl",
    "final_metrics.json",
    "tokenizer.json",
    "checkpoint",
    "mlflow.db",
)
RUN_DIRS = ("checkpoints", "tb")
PREVIOUS = ".previous-run"


def clear_run_dir(run_dir: Path) -> None:
    """Remove the files a previous run wrote into ``run_dir`` (other files are left alone)."""
    for name in RUN_FILES + RUN_DIRS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


class PreviousRun:
    """``--overwrite`` without losing work: the old run's files are moved aside (renames, no
    copies) into ``.previous-run/``, put back if the new run fails before its first evaluation,
    and deleted when it finishes (a killed new run leaves them there; a later ``--overwrite``
    puts them back first, a ``--resume`` that finishes deletes them)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.aside = run_dir, run_dir / PREVIOUS
        if self.aside.is_dir():  # left by a run killed before its first checkpoint
            self.restore()
        names = [n for n in RUN_FILES + RUN_DIRS if (run_dir / n).exists()]
        if names:
            self.aside.mkdir()
            for name in names:
                (run_dir / name).rename(self.aside / name)

    def restore(self) -> None:
        if not self.aside.is_dir():
            return
        clear_run_dir(self.run_dir)
        for path in self.aside.iterdir():
            path.rename(self.run_dir / path.name)
        self.aside.rmdir()

    @staticmethod
    def discard(run_dir: Path) -> None:
        shutil.rmtree(run_dir / PREVIOUS, ignore_errors=True)


# what a resumed run may change: how long and how it runs, not what it optimises
RESUME_MAY_CHANGE = {
    "steps", "time_budget", "eval_every", "eval_batch_size", "log_every", "checkpoint_every", "keep_last",
    "keep_best", "patience", "min_delta", "on_nonfinite", "tensorboard", "mlflow", "threads", "device",
    "precision", "grad_checkpointing", "compile", "deterministic", "gemm", "malloc",
}  # fmt: skip


def check_resumable(config: Any, run_dir: Path) -> None:
    """The run in ``run_dir`` must have the same task and model sections as ``config``, and the
    same train settings except :data:`RESUME_MAY_CHANGE` (the optimiser state, the schedule and
    the data order saved in the checkpoint belong to the others)."""
    from seqlab.training.config import ExperimentConfig

    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise RunDirError(f"cannot resume {run_dir}: it is not a run directory (no config.yaml)")
    saved = ExperimentConfig.from_dict(load_file(saved_path)).to_dict()
    new = config.to_dict()
    diff = sorted(d for section in ("task", "model") for d in _diff(saved[section], new[section], section))
    diff += sorted(d for d in _diff(saved["train"], new["train"], "train") if d[6:] not in RESUME_MAY_CHANGE)
    if diff:
        raise ConfigError(
            f"cannot resume {run_dir}: the config differs from the saved run's in "
            f"{', '.join(diff)}; start a new run directory instead (a resume may change only "
            f"train.{{{', '.join(sorted(RESUME_MAY_CHANGE))}}})"
        )


def _diff(a: Any, b: Any, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in a.keys() | b.keys() for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    return [] if a == b else [path]


def load_run_config(run: Path, purpose: str) -> Any:
    """The ExperimentConfig of a run directory whose model must be a per-step sequence model;
    ``purpose`` completes the error, e.g. "generate continues a causal language model"."""
    from seqlab.models import ModelConfig
    from seqlab.models.archs import arch_name
    from seqlab.training.config import ExperimentConfig

    if not (run / "config.yaml").is_file():
        raise RunDirError(f"{run} is not a run directory (no config.yaml)")
    config = ExperimentConfig.from_dict(load_file(run / "config.yaml"))
    if not isinstance(config.model, ModelConfig):
        raise ConfigError(
            f"{run}: {purpose}; this run's model is arch {arch_name(config.model)!r} "
            f"on task {config.task.name!r}"
        )
    return config


def weights_dir(run: Path, checkpoint: str | None = None) -> Path:
    """The final weights of a run (``checkpoint/``) or a kept one (``checkpoints/<name>``)."""
    if checkpoint is None:
        return run / "checkpoint"
    path = run / "checkpoints" / checkpoint
    if not path.is_dir():
        found = sorted(p.name for p in (run / "checkpoints").glob("*") if p.is_dir())
        raise RunDirError(f"{path} does not exist; choose from: {', '.join(found) or '(none)'}")
    return path


@dataclass
class TrainedRun:
    """A finished (or checkpointed) run, loaded: its config, its task (data built) and its model
    with the weights of the chosen checkpoint, in eval mode."""

    run: Path
    config: Any  # ExperimentConfig
    task: Any  # Task
    model: Any  # nn.Module


def load_trained(run: str | Path, checkpoint: str | None = None) -> TrainedRun:
    """Rebuild a run's task and model from ``config.yaml`` and load its weights.

    Args:
        run: a ``seqlab train --out`` directory.
        checkpoint: a name under ``checkpoints/`` (e.g. ``best``); None = the final weights.

    Raises:
        RunDirError: not a run directory, or no such checkpoint / weights that do not fit.
    """
    from seqlab.models import build_model
    from seqlab.tasks import build_task
    from seqlab.training.checkpoint import load_checkpoint
    from seqlab.training.config import ExperimentConfig

    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise RunDirError(f"{run} is not a run directory (no config.yaml)")
    config = ExperimentConfig.from_dict(load_file(run / "config.yaml"))
    task = build_task(config.task.name, config.task.options, seed=config.train.seed)
    model = build_model(config.model, task.io)
    load_checkpoint(weights_dir(run, checkpoint), model)
    return TrainedRun(run, config, task, model.eval())
