"""``seqlab forecast RUN_DIR --horizon H`` and ``seqlab detect RUN_DIR FILE``: use a trained series run.

Shape legend: N points · C channels · L context · H horizon.

Both read the run directory only: ``config.yaml`` (the model), ``series.json`` (columns, the
training split's scaler μ/σ, context L, horizon, frequency, the last points of the run's data,
and for ``anomaly`` runs the validation-chosen threshold and the residual spread) and the final
``checkpoint/``.

``forecast`` continues the run's data (its test split) — or, with ``--csv FILE``, a user's recent
history read with the run's columns and missing-value policy — by H steps, printed one per line
as ``timestamp<TAB>value...`` in original units (``--json``: a list of ``{"timestamp", column:
value}``). The model's head forecasts the run's horizon at once; a longer ``--horizon`` feeds its
own forecasts back as history (iterated direct forecasting: errors compound). Timestamps
continue the history's by its frequency (``MS``, ``W-SAT``, ``30min``...), else by the step
between its last two timestamps, else are ``+1``, ``+2``...

``detect`` scores every point of FILE that has L points before it by its one-step forecast error
(:mod:`seqlab.tasks.anomaly`) and prints the points whose score reaches the run's threshold:
``timestamp<TAB>value...<TAB>score`` (the row number when the file has no timestamps). Example::

    $ seqlab forecast runs/air --horizon 3
    1961-01-01	452.1
    1961-02-01	431.7
    1961-03-01	480.2
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.errors import ConfigError, RunDirError

__all__ = ["SeriesRun", "add_parser", "future_timestamps", "load_series_run"]

MONTHS = {"M": 1, "Q": 3, "A": 12, "Y": 12}
TIMESTAMP_HELP = "timestamp column of the file (default: the run's; 'none' for a file without one)"


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register the ``forecast`` and ``detect`` subcommands on ``subparsers``."""
    p = subparsers.add_parser(
        "forecast",
        parents=[common_parent],
        help="forecast the next H points with a trained forecast run",
        description="Forecast H steps past the run's data (or past --csv FILE) in original units.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run of task 'forecast' (or 'anomaly')")
    p.add_argument("--horizon", type=int, default=None, metavar="H", help="steps ahead (default: the run's)")
    p.add_argument("--csv", type=Path, default=None, metavar="FILE", help="recent history to continue")
    p.add_argument("--timestamp", default=None, metavar="COL", help=TIMESTAMP_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_forecast)
    p = subparsers.add_parser(
        "detect",
        parents=[common_parent],
        help="flag anomalous points of a CSV series with a trained anomaly run",
        description="Score each point by its one-step forecast error; print those ≥ the run's threshold.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory of task 'anomaly'")
    p.add_argument("file", type=Path, metavar="FILE", help="CSV/TSV with the run's columns")
    p.add_argument("--timestamp", default=None, metavar="COL", help=TIMESTAMP_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON list of flagged points")
    p.set_defaults(func=cmd_detect)


class SeriesRun:
    """A trained forecast/anomaly run: model (eval mode) and ``series.json``'s contents."""

    def __init__(self, model: Any, info: dict[str, Any]) -> None:
        self.model, self.info = model.eval(), info
        self.mean, self.std = np.asarray(info["mean"]), np.asarray(info["std"])
        self.context, self.horizon = int(info["context"]), int(info["horizon"])

    def predict(self, history: np.ndarray) -> np.ndarray:
        """The model's H forecasts (H, C), original units, from the last L rows of ``history`` (N, C)."""
        scaled = (history - self.mean) / self.std
        return self.scaled_forecasts(scaled, np.array([len(history)]))[0] * self.std + self.mean

    def scaled_forecasts(self, scaled: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Forecasts (W, H, C) in scaled units from ``origins`` of a scaled series (N, C)."""
        import torch

        from seqlab.tasks.forecast import predict_scaled
        from seqlab.training.evaluation import Predictor

        relative = self.info.get("normalise") == "last"
        with torch.no_grad():
            return predict_scaled(Predictor(self.model), scaled, origins, self.context, relative, 256)

    def forecast(self, history: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` forecasts (steps, C); beyond the run's horizon the forecasts become history."""
        self.check_history(history)
        out: list[np.ndarray] = []
        while sum(len(o) for o in out) < steps:
            out.append(self.predict(np.concatenate([history, *out]) if out else history))
        return np.concatenate(out)[:steps]

    def check_history(self, history: np.ndarray) -> None:
        if len(history) < self.context:
            raise ConfigError(f"the history has {len(history)} points; the model reads {self.context}")

    def read(self, path: Path, timestamp: str | None = None) -> tuple[np.ndarray, list[str] | None]:
        """Values (N, C) of the run's columns in ``path`` (missing values filled) and timestamps
        (column ``timestamp``, else the run's; ``"none"``: no timestamps)."""
        from seqlab.data import read_series_csv

        policy = self.info.get("missing") or "interpolate"
        column = timestamp or self.info.get("timestamp")
        column = None if column in (None, "none") else column
        series = read_series_csv(path, timestamp=column, values=self.info["columns"], missing=policy)
        return series.values, series.timestamps


def load_series_run(run: Path, tasks: tuple[str, ...]) -> SeriesRun:
    """The model and ``series.json`` of a run directory of one of ``tasks`` (``forecast``, ``anomaly``)."""
    import seqlab.tasks.anomaly  # noqa: F401  (registers 'forecast' and 'anomaly' for the config)
    from seqlab.models import build_model
    from seqlab.spec import IOSpec
    from seqlab.training import load_checkpoint
    from seqlab.training.rundir import load_run_config

    run = Path(run)
    config = load_run_config(run, f"{tasks[0]} needs a per-step sequence model")
    if config.task.name not in tasks:
        raise ConfigError(
            f"{run}: a run of task {config.task.name!r}; this command reads runs of task "
            + " or ".join(map(repr, tasks))
        )
    try:
        info = json.loads((run / "series.json").read_text(encoding="utf-8"))
        C, H = len(info["columns"]), int(info["horizon"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f"{run / 'series.json'}: missing or damaged") from None
    model = build_model(config.model, IOSpec(output_dim=H * C, input_dim=C))
    load_checkpoint(run / "checkpoint", model)
    return SeriesRun(model, info)


def future_timestamps(stamps: list[str] | None, freq: str | None, n: int) -> list[str]:
    """``n`` timestamps after ``stamps[-1]``: by ``freq``, else the last step, else ``+1``, ``+2``...

    Example: ``future_timestamps(["1960-11-01", "1960-12-01"], "MS", 2) == ["1961-01-01", "1961-02-01"]``.
    """
    fallback = [f"+{i}" for i in range(1, n + 1)]
    if not stamps:
        return fallback
    try:
        last = datetime.fromisoformat(stamps[-1])
    except ValueError:
        try:  # numeric timestamps: continue by the last step
            a, b = float(stamps[-2]), float(stamps[-1])
            return [_number(b + i * (b - a)) for i in range(1, n + 1)]
        except (ValueError, IndexError):
            return fallback
    months = _months(freq)
    if months:
        out = [_add_months(last, i * months) for i in range(1, n + 1)]
    else:
        step = _timedelta(freq) or (last - datetime.fromisoformat(stamps[-2]) if len(stamps) > 1 else None)
        if not step:
            return fallback
        out = [last + i * step for i in range(1, n + 1)]
    dated = "T" not in stamps[-1] and " " not in stamps[-1]
    return [t.date().isoformat() if dated else t.isoformat(timespec="minutes") for t in out]


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _months(freq: str | None) -> int:
    """Months per step of a month-based frequency (``MS`` 1, ``QS`` 3, ``YS``/``A`` 12, ``2MS`` 2), else 0."""
    if not freq:
        return 0
    head = freq.upper().lstrip("0123456789")
    if not head or head.startswith("MIN"):
        return 0
    return MONTHS.get(head[0], 0) * int(freq[: len(freq) - len(head)] or 1)


def _timedelta(freq: str | None) -> timedelta | None:
    """The step of a fixed-length frequency (``W-SAT``, ``D``, ``H``, ``30min``), else None."""
    if not freq:
        return None
    head = freq.lower().lstrip("0123456789")
    k = int(freq[: len(freq) - len(head)] or 1)
    units = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
    if head.startswith(("min", "t")):
        return k * timedelta(minutes=1)
    return k * units[head[0]] if head[:1] in units else None


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=m + 1)


def cmd_forecast(args: argparse.Namespace) -> int:
    run = load_series_run(args.run_dir, ("forecast", "anomaly"))  # an anomaly run forecasts 1 step
    steps = args.horizon if args.horizon is not None else run.horizon
    if steps < 1:
        raise ConfigError(f"--horizon: expected a positive integer, got {steps}")
    if args.csv is not None:
        history, stamps = run.read(args.csv, args.timestamp)
    else:
        history, stamps = np.asarray(run.info["history"]["values"]), run.info["history"]["timestamps"]
    values = run.forecast(history, steps)
    when = future_timestamps(stamps, run.info.get("freq"), steps)
    rows = [{"timestamp": t} | dict(zip(run.info["columns"], map(float, v))) for t, v in zip(when, values)]
    if args.json:
        print(json.dumps(rows))
        return 0
    for t, v in zip(when, values):
        print("\t".join([t, *(f"{x:.6g}" for x in v)]))
    return 0


def detect_points(run: SeriesRun, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N − L,) of points L..N−1 of ``values`` (N, C) and their row indices."""
    from seqlab.tasks.anomaly import anomaly_scores

    run.check_history(values[:-1])
    scaled = (values - run.mean) / run.std
    points = np.arange(run.context, len(values))
    pred = run.scaled_forecasts(scaled, points)[:, 0]  # (N − L, C): one step ahead
    return anomaly_scores(scaled[points] - pred, np.asarray(run.info["spread"])), points


def cmd_detect(args: argparse.Namespace) -> int:
    run = load_series_run(args.run_dir, ("anomaly",))
    if run.info.get("threshold") is None or run.info.get("spread") is None:
        raise RunDirError(f"{args.run_dir / 'series.json'}: no threshold yet (the run was never evaluated)")
    values, stamps = run.read(args.file, args.timestamp)
    scores, points = detect_points(run, values)
    flagged = points[scores >= run.info["threshold"]]
    rows = [
        {"timestamp": stamps[j] if stamps else str(j), "score": float(scores[j - run.context])}
        | dict(zip(run.info["columns"], map(float, values[j])))
        for j in flagged
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print("\t".join([r["timestamp"], *(f"{r[c]:.6g}" for c in run.info["columns"]), f"{r['score']:.4g}"]))
    return 0
