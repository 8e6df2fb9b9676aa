"""Time-series forecasting: sliding windows, a direct multi-horizon head, metrics in original units.

Shape legend: B batch · T time (= context L) · C channels · H horizon · W forecast windows ·
O = H·C model outputs per step.

**Data.** A bundled series (``dataset``, e.g. ``airpassengers``) or a user's CSV (``csv`` with
``timestamp`` / ``values`` columns, cut into train / validation / test by ``split`` fractions).
Missing values are filled by ``missing`` **per split** (:func:`~seqlab.data.split_series`), so no
training value is computed from a later one. Values are standardised per channel,
z = (y − μ_c) / σ_c, with μ, σ fitted on the **training split only** (σ = 1 for a constant
channel).

**Model.** Inputs are the scaled values (B, L, C); the model is causal and emits O = H·C numbers
at every step: the direct multi-horizon forecast ŷ_{t+1..t+H} made at step t (one head for all
H steps, no autoregressive roll-out, so errors do not compound). Output index h·C + c is step
h + 1 ahead of channel c.

With ``normalise="last"`` (the default) each window is also shifted by its last input: the model reads
z_{o−L..o−1} − z_{o−1} and forecasts z_{o..o+H−1} − z_{o−1} (a level-free form that extrapolates
trends beyond the training range, like the naive forecast it refines); then only the last step
of a training segment is scored, since earlier steps would see a reference from their future.
Measured (LSTM, 1500 steps): co2 test MASE 0.34 with ``last`` vs 12.2 with ``global`` (test
values far above the training range); sunspots (no trend) 2.48 vs 2.25.

**Training** samples segments y[s : s + L + H] of the scaled training split (uniform start s);
the loss is the MSE of the forecast made at **every** step t < L against y[t+1 .. t+H] (all
available inside the segment), so one segment trains L forecasts with contexts 1..L.

Worked example (C = 1, L = 3, H = 2, segment [1, 2, 3, 4, 5])::

    inputs  [[1], [2], [3]]
    targets [[2, 3], [3, 4], [4, 5]]      (row t: the H values after step t)

**Evaluation (rolling origin).** For a split occupying points [a, b) of the whole series
(train + validation + test, each filled on its own), every origin o = a, a + s, ... with o + H ≤ b
(s = ``eval_stride``) gives one window: the model reads the L observed points y[o−L : o] (which may
lie in an earlier split: observed history) and its forecast at the last step is scored against
y[o : o+H]. Metrics are computed in **original units** over all W·H forecast values with
:mod:`seqlab.metrics.forecasting`: ``{split}_mae``, ``_rmse``, ``_smape``, ``_mase`` (scale Q from
the training split with season m), plus ``_mae_by_horizon`` (H values), and the same metrics for
the seasonal-naive forecast from each origin (``{split}_mase_naive``, ...) and, with ``arima``,
for the ARIMA baseline (:mod:`seqlab.evaluation.forecast_baselines`). ``primary_metric`` is
``val_mase`` (lower is better; < ``val_mase_naive`` beats the baseline).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.config import check_one_source, check_positive, check_split
from seqlab.data.series_csv import POLICIES
from seqlab.data.types import TimeSeries
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.metrics import forecasting as fm
from seqlab.spec import IOSpec
from seqlab.tasks.base import TASKS, Batch, Predict, Task

__all__ = [
    "ForecastConfig",
    "ForecastTask",
    "Scaler",
    "SeriesData",
    "forecast_windows",
    "load_splits",
    "predict_scaled",
    "season_for_freq",
    "training_windows",
]

SERIES_FILE = "series.json"  # what inference needs besides the weights (see ForecastTask.save)
SPLITS = ("train", "validation", "test")


def season_for_freq(freq: str | None) -> int:
    """The usual season length m of a pandas-style frequency: yearly 1, quarterly 4, monthly 12,
    weekly 52, daily 7, hourly 24, k-minute 1440/k (30min → 48); 1 when unknown.

    Example: ``season_for_freq("MS") == 12``, ``season_for_freq("30min") == 48``.
    """
    if not freq:
        return 1
    f = freq.upper()
    match = re.fullmatch(r"(\d*)(MIN|T)", f)
    if match:
        k = int(match.group(1) or 1)
        return max(1, 1440 // k)
    for prefixes, m in (
        (("A", "Y"), 1),
        (("Q",), 4),
        (("M",), 12),
        (("W",), 52),
        (("D", "B"), 7),
        (("H",), 24),
    ):
        if f.startswith(prefixes):
            return m
    return 1


@dataclass
class ForecastConfig:
    """Data source, missing-value policy, window sizes and evaluation options.

    ``dataset``: a bundled series (``seqlab data list``); ``csv``: a user's file with
    ``timestamp`` (column or None) and ``values`` (columns; None = all but the timestamp), cut
    by ``split`` fractions; ``freq`` names its sampling frequency (sets the default season).
    ``missing``: policy applied to each split separately. ``context`` L: points the model reads;
    ``horizon`` H: points forecast from each origin. ``season`` m for MASE and seasonal naive
    (None: from the frequency, :func:`season_for_freq`). ``eval_stride``: spacing of evaluation
    origins. ``normalise``: ``last`` (default: after the train-split standardisation, subtract each
    window's last input from its inputs and targets, so trending series whose later values leave
    the training range stay forecastable; see the module doc) or ``global`` (standardisation only).
    ``arima``: also score the ARIMA baseline (needs statsmodels; fitted once per task).
    """

    dataset: str | None = None
    csv: str | None = None
    timestamp: str | int | None = None
    values: list[str | int] | None = None
    freq: str | None = None
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    missing: str = "interpolate"
    context: int = 24
    horizon: int = 12
    season: int | None = None
    eval_stride: int = 1
    normalise: Literal["global", "last"] = "last"
    arima: bool = False

    def __post_init__(self) -> None:
        check_one_source(dataset=self.dataset, csv=self.csv)
        check_split(self.split, sizes=(3,))
        if self.normalise not in ("global", "last"):
            raise ConfigError(f"normalise: expected 'global' or 'last', got {self.normalise!r}")
        if self.missing not in POLICIES:
            raise ConfigError(f"missing: expected one of {list(POLICIES)}, got {self.missing!r}")
        for name in ("context", "horizon", "eval_stride"):
            check_positive(name, getattr(self, name))
        if self.season is not None:
            check_positive("season", self.season)


def load_splits(c: Any, default_dataset: str, labels: str | int | None = None) -> dict[str, TimeSeries]:
    """Train / validation / test :class:`TimeSeries`, missing values filled per split.

    ``labels`` names a 0/1 label column of the CSV (anomaly detection), attached as ``labels``.
    """
    from seqlab.data import read_series_csv, split_series
    from seqlab.data.datasets import load_dataset

    if c.csv:
        series = read_series_csv(c.csv, timestamp=c.timestamp, values=c.values, missing="keep", freq=c.freq)
        if labels is not None:
            lab = read_series_csv(c.csv, values=[labels], missing="error")
            if not np.isin(lab.values, (0, 1)).all():
                raise ConfigError(f"{c.csv}: label column {labels!r} must hold 0 or 1")
            keep = [i for i, name in enumerate(series.columns) if name != lab.columns[0]]  # not a channel
            series = TimeSeries(
                series.values[:, keep],
                [series.columns[i] for i in keep],
                series.timestamps,
                series.freq,
                lab.values[:, 0].astype(np.int64),
                series.notes,
            )
        return split_series(series, c.split, missing=c.missing)
    from seqlab.data.series_files import fill_missing

    data = load_dataset(c.dataset or default_dataset)
    if not isinstance(data.get("train"), TimeSeries):
        raise ConfigError(f"dataset {c.dataset!r} is not a time series (see `seqlab data list`)")
    return {name: fill_missing(data[name], c.missing) for name in SPLITS}


class Scaler:
    """Per-channel standardisation z = (y − μ) / σ, fitted on one array (the training split)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (y - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean


class SeriesData:
    """The splits, their concatenation (original and scaled) and where each split starts.

    ``bounds[name] = (a, b)``: the split occupies points [a, b) of ``values`` (N, C).
    """

    def __init__(self, splits: dict[str, TimeSeries]) -> None:
        self.splits = splits
        self.columns = list(splits["train"].columns)
        self.values = np.concatenate([splits[n].values for n in SPLITS])  # (N, C) original units
        if not np.isfinite(self.values).all():
            raise ConfigError("the series has missing values; choose a missing policy other than 'keep'")
        self.scaler = Scaler.fit(splits["train"].values)
        self.scaled = self.scaler.transform(self.values)
        sizes = np.cumsum([0] + [len(splits[n]) for n in SPLITS])
        self.bounds = {n: (int(sizes[i]), int(sizes[i + 1])) for i, n in enumerate(SPLITS)}
        stamps = [splits[n].timestamps for n in SPLITS]
        self.timestamps = None if any(s is None for s in stamps) else [t for s in stamps for t in s]
        self.freq = splits["train"].freq
        labels = [splits[n].labels for n in SPLITS]
        self.labels = None if any(lab is None for lab in labels) else np.concatenate(labels)


def training_windows(
    scaled: np.ndarray, starts: np.ndarray, context: int, horizon: int, relative: bool = False
) -> Batch:
    """Segments y[s : s + L + H] as a batch: inputs (B, L, C), targets (B, L, H·C).

    Row t of the targets is y[s+t+1 .. s+t+H] flattened step-major (index h·C + c); every row is
    scored. ``relative``: inputs and targets minus the last input y[s+L−1] and only the last row
    scored (an earlier row's target would leak the later reference value into its inputs).
    """
    L, H = context, horizon
    idx = starts[:, None] + np.arange(L + H)[None, :]  # (B, L + H)
    seg = torch.from_numpy(scaled[idx]).float()  # (B, L + H, C)
    B, _, C = seg.shape
    mask = torch.ones(B, L, dtype=torch.bool)
    if relative:
        seg = seg - seg[:, L - 1 : L]  # (B, L + H, C): relative to the last input
        mask[:, : L - 1] = False
    future = seg.unfold(1, H, 1)[:, 1 : L + 1]  # (B, L, C, H): windows starting at t + 1
    targets = future.permute(0, 1, 3, 2).reshape(B, L, H * C)  # (B, L, H·C)
    return Batch(seg[:, :L], targets, mask)


def forecast_windows(scaled: np.ndarray, origins: np.ndarray, context: int) -> Tensor:
    """Model inputs (W, L, C) for forecasts from ``origins``: the L points before each origin."""
    idx = origins[:, None] - context + np.arange(context)[None, :]  # (W, L)
    return torch.from_numpy(scaled[idx]).float()


def predict_scaled(
    predict: Predict, scaled: np.ndarray, origins: np.ndarray, context: int, relative: bool, batch_size: int
) -> np.ndarray:
    """Forecasts (W, H, C) in scaled units from each origin: the model's output at its last step
    (plus the last input y_{o−1} when ``relative``)."""
    inputs = forecast_windows(scaled, origins, context)  # (W, L, C)
    ref = inputs[:, -1:] if relative else torch.zeros_like(inputs[:, -1:])  # (W, 1, C)
    outs = []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size] - ref[start : start + batch_size]  # (b, L, C)
        mask = torch.ones(x.shape[:2], dtype=torch.bool)
        outs.append(predict(Batch(x, torch.zeros(*x.shape[:2], 1), mask))[:, -1])  # (b, H·C)
    W, C = inputs.shape[0], inputs.shape[2]
    out = torch.cat(outs).double().view(W, -1, C) + ref.double()  # (W, H, C)
    return out.numpy()


def point_metrics(truth: np.ndarray, pred: np.ndarray, y_train: np.ndarray, season: int) -> dict[str, float]:
    """MAE, RMSE, sMAPE and MASE of forecasts (W, H, C) in original units, over all W·H values."""
    C = truth.shape[-1]
    a, f = truth.reshape(-1, C), pred.reshape(-1, C)
    return {
        "mae": fm.mae(a, f),
        "rmse": fm.rmse(a, f),
        "smape": fm.smape(a, f),
        "mase": fm.mase(a, f, y_train, season),
    }


@TASKS.register("forecast")
class ForecastTask(Task):
    """Multi-step forecasting with a direct H-step head; MASE vs seasonal naive (and ARIMA)."""

    Config = ForecastConfig
    primary_metric = "val_mase"
    train_defaults = {"steps": 1500, "batch_size": 32, "lr": 3e-3, "eval_every": 250}
    default_dataset = "airpassengers"

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = self.config
        self.data = self._load()
        self.season = c.season or season_for_freq(self.data.freq)
        self.horizon = self.output_horizon
        C = len(self.data.columns)
        self.io = IOSpec(output_dim=self.horizon * C, input_dim=C)
        self._check_sizes()
        self.run_dir: Path | None = None
        self._arima: dict[str, np.ndarray] | None = None

    def _load(self) -> SeriesData:
        return SeriesData(load_splits(self.config, self.default_dataset))

    @property
    def output_horizon(self) -> int:
        """H: the forecast steps of the model's head."""
        return self.config.horizon

    @property
    def train_length(self) -> int:
        return self.config.context

    def _check_sizes(self) -> None:
        L, H, m = self.config.context, self.horizon, self.season
        n_train = len(self.data.splits["train"])
        if n_train < L + H:
            raise ConfigError(
                f"the training split has {n_train} points, fewer than context + horizon = {L + H}; "
                "use a smaller context or horizon"
            )
        if n_train <= m:
            raise ConfigError(f"the training split has {n_train} points; MASE needs more than season={m}")
        for name in SPLITS[1:]:
            if len(self.data.splits[name]) < H:
                raise ConfigError(
                    f"the {name} split has {len(self.data.splits[name])} points, fewer than H={H}"
                )

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        L, H = self.config.context, self.horizon
        n_start = len(self.data.splits["train"]) - (L + H) + 1
        starts = torch.randint(0, n_start, (batch_size,), generator=generator).numpy()
        return training_windows(self.data.scaled, starts, L, H, self.relative)

    def loss(self, outputs: Tensor, batch: Batch, label_smoothing: float = 0.0) -> Tensor:
        """Mean squared error over scored steps and all H·C outputs (scaled units)."""
        if label_smoothing:
            raise ConfigError("train.label_smoothing applies to classification; forecasting is regression")
        tm = batch.target_mask
        return F.mse_loss(outputs[tm], batch.targets[tm])

    def origins(self, split: str) -> np.ndarray:
        """Rolling forecast origins of ``split``: a, a + stride, ... with o + H ≤ b (and o ≥ L)."""
        a, b = self.data.bounds[split]
        return np.arange(max(a, self.config.context), b - self.horizon + 1, self.config.eval_stride)

    @property
    def relative(self) -> bool:
        return self.config.normalise == "last"

    def forecast(self, predict: Predict, origins: np.ndarray, batch_size: int) -> np.ndarray:
        """Forecasts (W, H, C) in original units from each origin."""
        c = self.config
        out = predict_scaled(predict, self.data.scaled, origins, c.context, self.relative, batch_size)
        return self.data.scaler.inverse(out)

    def truth(self, origins: np.ndarray) -> np.ndarray:
        """Observed values (W, H, C) after each origin, original units."""
        return self.data.values[origins[:, None] + np.arange(self.horizon)[None, :]]

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        from seqlab.evaluation.forecast_baselines import arima_forecasts, seasonal_naive_forecasts

        y_train, m = self.data.splits["train"].values, self.season
        out: dict[str, Any] = {"season": m, "horizon": self.horizon}
        if self.config.arima and self._arima is None:
            self._arima = {
                s: arima_forecasts(self.data, self.origins(s), self.horizon, m) for s in SPLITS[1:]
            }
        for split, prefix in (("validation", "val"), ("test", "test")):
            origins = self.origins(split)
            truth, pred = self.truth(origins), self.forecast(predict, origins, batch_size)
            out[f"{prefix}_windows"] = len(origins)
            out |= {f"{prefix}_{k}": v for k, v in point_metrics(truth, pred, y_train, m).items()}
            out[f"{prefix}_mae_by_horizon"] = [
                round(float(v), 6) for v in np.abs(pred - truth).mean(axis=(0, 2))
            ]
            naive = seasonal_naive_forecasts(self.data.values, origins, self.horizon, m)
            out |= {f"{prefix}_{k}_naive": v for k, v in point_metrics(truth, naive, y_train, m).items()}
            if self._arima is not None:
                arima = self._arima[split]
                out |= {f"{prefix}_{k}_arima": v for k, v in point_metrics(truth, arima, y_train, m).items()}
        return out

    def inference_info(self) -> dict[str, Any]:
        """What ``seqlab forecast`` / ``detect`` need besides the weights (JSON-serialisable)."""
        d, L = self.data, self.config.context
        tail = max(L, self.season)
        return {
            "task": type(self).__name__,
            "columns": d.columns,
            "mean": d.scaler.mean.tolist(),
            "std": d.scaler.std.tolist(),
            "context": L,
            "horizon": self.horizon,
            "season": self.season,
            "freq": d.freq,
            "timestamp": self.config.timestamp if self.config.csv else "timestamp",  # built-in format
            "missing": self.config.missing,
            "normalise": self.config.normalise,
            "history": {
                "values": d.values[-tail:].tolist(),
                "timestamps": None if d.timestamps is None else d.timestamps[-tail:],
            },
        }

    def save(self, run_dir: Path) -> None:
        """Write ``series.json`` (:meth:`inference_info`): scaler, context, horizon, data tail."""
        self.run_dir = Path(run_dir)
        atomic_write_text(self.run_dir / SERIES_FILE, json.dumps(self.inference_info(), indent=1) + "\n")
