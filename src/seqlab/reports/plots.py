"""Plots of one training run, from its ``metrics.jsonl`` and final metrics.

* :func:`read_metrics_log` — the log split into training records and evaluation records.
* :func:`plot_training_curves` — loss against step and against training time (two panels):
  the training loss raw (faint) and smoothed, validation loss as points.
* :func:`plot_length_accuracy` — accuracy by test length, drawn by
  :func:`seqlab.evaluation.plots.plot_by_length` (the plot ``seqlab evaluate`` writes).

Every PNG is written atomically (a temp file renamed over the target). matplotlib runs on the
Agg canvas directly: no display, no global pyplot state.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from seqlab.evaluation.plots import moving_average
from seqlab.fileio import atomic_write

log = logging.getLogger(__name__)

BY_LENGTH = "_acc_by_length"  # final metrics such as test_acc_by_length: {length: accuracy}


@dataclass
class MetricsLog:
    """A run's ``metrics.jsonl``: training records (with ``loss``), evaluation records (the
    ``eval`` dicts, with their ``step``) and events (start, resume, nonfinite)."""

    train: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def read_metrics_log(path: str | Path) -> MetricsLog:
    """Parse ``metrics.jsonl``; a line cut short (a killed run) is skipped with a warning."""
    out = MetricsLog()
    path = Path(path)
    if not path.is_file():
        return out
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            log.warning("%s:%d: not a JSON line (a run killed mid-write?); skipped", path, number)
            continue
        if "event" in record:
            out.events.append(record)
        elif isinstance(record.get("eval"), dict):
            out.evals.append({"step": record.get("step", 0)} | record["eval"])
        elif "loss" in record:
            out.train.append(record)
    return out


def smoothing_window(n: int) -> int:
    """An odd moving-average window of about 1/20 of the points (1 for short logs)."""
    window = max(1, n // 20)
    return window if window % 2 else window + 1


def plot_training_curves(metrics: MetricsLog, path: str | Path, title: str) -> Path | None:
    """Loss against step (left) and against training time (right); None (nothing written)
    when the log has no training records.

    Validation loss points sit at their evaluation step; on the time axis at the training time
    interpolated between the logged steps around them.
    """
    steps = [r["step"] for r in metrics.train]
    if not steps:
        return None
    atomic_write(Path(path), partial(_draw_curves, metrics, title=title))
    return Path(path)


def _draw_curves(metrics: MetricsLog, tmp: str, *, title: str) -> None:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # 1. the series: training loss (raw, smoothed) and validation loss where evaluated
    steps = np.array([r["step"] for r in metrics.train], dtype=float)
    times = np.array([r.get("time_s", math.nan) for r in metrics.train], dtype=float)
    loss = [_float(r["loss"]) for r in metrics.train]
    window = smoothing_window(len(loss))
    smooth = moving_average(loss, window)
    evals = [e for e in metrics.evals if isinstance(e.get("val_loss"), int | float)]
    eval_steps = np.array([e["step"] for e in evals], dtype=float)
    val_loss = [_float(e["val_loss"]) for e in evals]
    # 2. two panels sharing the y axis
    fig = Figure(figsize=(10, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    has_time = bool(np.isfinite(times).any())
    for ax, x, x_eval, label in (
        (axes[0], steps, eval_steps, "step"),
        (
            axes[1],
            times,
            np.interp(eval_steps, steps, times) if has_time else eval_steps,
            "training time (s)",
        ),
    ):
        if window > 1:  # the raw log faint behind its moving average
            ax.plot(x, loss, color="C0", alpha=0.25, lw=1.0, label="train loss (as logged)")
        smoothed = f"train loss (moving average over {window})" if window > 1 else "train loss"
        ax.plot(x, smooth, color="C0", lw=1.8, label=smoothed)
        if val_loss:
            ax.plot(x_eval, val_loss, "o", color="C3", ms=5, label="validation loss")
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    if not has_time:
        axes[1].set_title("no training times in the log", fontsize=9)
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(tmp, format="png")  # explicit: the temp file has no .png suffix


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def length_curves(final: dict[str, Any]) -> dict[str, dict[int, float]]:
    """``{"test": {41: 0.5, ...}}`` from final metrics such as ``test_acc_by_length``
    (JSON's string keys become int lengths); empty when no metric is by length."""
    return {
        key[: -len(BY_LENGTH)]: {int(n): float(a) for n, a in value.items()}
        for key, value in final.items()
        if key.endswith(BY_LENGTH) and isinstance(value, dict) and value
    }


def plot_length_accuracy(
    curves: dict[str, dict[int, float]], path: str | Path, title: str, chance: float | None
) -> Path:
    """Accuracy against test length, a line per split, chance dashed (written atomically)."""
    from seqlab.evaluation.plots import plot_by_length

    atomic_write(Path(path), partial(plot_by_length, curves, title=title, chance=chance))
    return Path(path)
