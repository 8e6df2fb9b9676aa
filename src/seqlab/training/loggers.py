"""Where a run's numbers go: JSONL, TensorBoard, an optional MLflow store, and the terminal.

* ``metrics.jsonl`` — one JSON object per logged step / evaluation, flushed per line (a killed
  run keeps its history); on resume, records after the checkpoint's step (and a final
  evaluation, which the resumed run repeats) are dropped first so the file reads as if the run
  had never stopped;
* TensorBoard event files in ``tb/`` (``torch.utils.tensorboard``; ``purge_step`` on resume);
* MLflow (``train.mlflow``, needs ``pip install 'seqlab[mlflow]'``): a local sqlite store
  ``mlflow.db`` in the run directory, nothing over the network;
* progress: a tqdm bar with ETA and throughput on a TTY, plain periodic lines otherwise.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text


class MetricsLog:
    """JSONL metrics file. ``resume_step`` keeps only the records up to that step."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is not None and path.is_file():
            kept = [
                line for line in path.read_text(encoding="utf-8").splitlines() if _keep(line, resume_step)
            ]
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        self.file = path.open("a" if resume_step is not None else "w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(_finite(record), allow_nan=False) + "\n")  # NaN/inf -> null: valid JSON
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _keep(line: str, step: int) -> bool:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:  # a line cut short by the kill
        return False
    return record.get("step", 0) <= step and not record.get("final")  # a resumed run ends anew


class RunLoggers:
    """Fans one record out to every sink; scalars only go to TensorBoard / MLflow."""

    def __init__(self, run_dir: Path, config, resume_step: int | None = None, enabled: bool = True) -> None:
        self.enabled = enabled  # False on every rank but 0 of a distributed run
        self.jsonl = self.tb = self.mlflow = None
        if not enabled:
            return
        self.jsonl = MetricsLog(run_dir / "metrics.jsonl", resume_step)
        if config.train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge)
        if config.train.mlflow:
            self.mlflow = _start_mlflow(run_dir, config)

    def write(self, record: dict[str, Any], step: int) -> None:
        if not self.enabled:
            return
        self.jsonl.write(record)
        scalars = _flatten(record)
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, step)
        if self.mlflow is not None:
            self.mlflow.log_metrics({k.replace("/", "."): v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
        if self.mlflow is not None:
            self.mlflow.end_run()


def _flatten(record: dict[str, Any]) -> dict[str, float]:
    """{"loss": 2.1, "eval": {"val_bpc": 1.9}} -> {"train/loss": 2.1, "eval/val_bpc": 1.9}."""
    out = {}
    for key, value in record.items():
        if key in ("step", "event"):
            continue
        if isinstance(value, dict):
            out |= {f"{key}/{k}": float(v) for k, v in value.items() if _is_number(v)}
        elif _is_number(value):
            out[f"train/{key}"] = float(value)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _start_mlflow(run_dir: Path, config):
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "train.mlflow: MLflow is not installed; pip install 'seqlab[mlflow]' (mlflow-skinny)"
        ) from None
    mlflow.set_tracking_uri(f"sqlite:///{(run_dir / 'mlflow.db').resolve()}")
    mlflow.set_experiment(config.task.name)
    mlflow.start_run(run_name=run_dir.name)
    mlflow.log_params({f"train.{k}": v for k, v in vars(config.train).items()})
    return mlflow


class Progress:
    """tqdm bar (ETA, it/s, loss) on a TTY; otherwise a plain line every ``every`` steps."""

    def __init__(
        self, total: int, start: int, enabled: bool, every: int, stream: TextIO = sys.stderr
    ) -> None:
        self.total, self.every, self.stream = total, max(every, 1), stream
        self.enabled = enabled
        self.tty = enabled and stream.isatty()
        self.bar = (
            tqdm(total=total, initial=start, file=stream, desc="train", dynamic_ncols=True)
            if self.tty
            else None
        )
        self.start_step, self.start_time = start, time.perf_counter()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:.0f}", refresh=False)
        elif self.enabled and (step % self.every == 0 or step == self.total):
            done = step - self.start_step
            rate = done / max(time.perf_counter() - self.start_time, 1e-9)
            eta = (self.total - step) / max(rate, 1e-9)
            print(
                f"step {step}/{self.total} ({100 * step / self.total:.0f}%)  loss {loss:.4f}  "
                f"{tokens_per_s:,.0f} tok/s  eta {_duration(eta)}",
                file=self.stream,
                flush=True,
            )

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif self.enabled:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )
