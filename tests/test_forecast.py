"""Forecast task: windows, train-only scaling, metrics in original units, baselines, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

import seqlab.tasks.forecast  # noqa: F401  (registration)
from seqlab.cli import series as series_cli
from seqlab.errors import ConfigError
from seqlab.evaluation.forecast_baselines import seasonal_naive_forecasts
from seqlab.metrics import forecasting as fm
from seqlab.tasks.base import Batch
from seqlab.tasks.forecast import ForecastTask, forecast_windows, season_for_freq, training_windows
from seqlab.training import ExperimentConfig, train


def _write_csv(path, n=120, bad_line=None, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.1 * t + rng.normal(0, 0.3, n)
    rows = ["month,y"] + [f"{2000 + i // 12}-{i % 12 + 1:02d}-01,{v:.4f}" for i, v in enumerate(y)]
    if bad_line is not None:
        rows[bad_line - 1] = rows[bad_line - 1].split(",")[0] + ",oops"
    path.write_text("\n".join(rows) + "\n")
    return path


def _task(path, **options):
    base = {"csv": str(path), "timestamp": "month", "freq": "MS", "context": 12, "horizon": 3}
    base["normalise"] = "global"  # the fake models below forecast scaled values, not changes
    return ForecastTask(base | options)


class Exact:
    """A fake model that forecasts y_{t+h} by a known function of the (scaled) inputs."""

    def __init__(self, task, fn):
        self.task, self.fn = task, fn

    def __call__(self, batch: Batch) -> torch.Tensor:
        return self.fn(batch.inputs)


def test_training_windows_match_the_docstring_example():
    batch = training_windows(np.arange(1.0, 6.0)[:, None], np.array([0]), context=3, horizon=2)
    assert batch.inputs[0, :, 0].tolist() == [1, 2, 3]
    assert batch.targets[0].tolist() == [[2, 3], [3, 4], [4, 5]]
    assert batch.target_mask.all()


def test_multichannel_targets_are_step_major():
    y = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)  # (10, 2)
    batch = training_windows(y, np.array([2]), context=4, horizon=2)
    assert batch.inputs.shape == (1, 4, 2) and batch.targets.shape == (1, 4, 4)
    # at the last step t = 3 (value 5): step 1 = (6, 106), step 2 = (7, 107)
    assert batch.targets[0, -1].tolist() == [6, 106, 7, 107]
    x = forecast_windows(y, np.array([6]), context=4)
    assert x[0, :, 0].tolist() == [2, 3, 4, 5]


def test_season_defaults_from_the_frequency():
    assert [season_for_freq(f) for f in ("YS", "QS", "MS", "W-SAT", "30min", "D", None)] == [
        1,
        4,
        12,
        52,
        48,
        7,
        1,
    ]


def test_scaler_is_fitted_on_the_training_split_only(tmp_path):
    path = _write_csv(tmp_path / "a.csv")
    task = _task(path)
    a, b = task.data.bounds["train"]
    assert np.allclose(task.data.scaler.mean, task.data.values[a:b].mean(axis=0))
    text = path.read_text().splitlines()
    text[-5] = text[-5].split(",")[0] + ",1000"  # change a test value, then a validation value
    va, _ = task.data.bounds["validation"]
    text[va + 2] = text[va + 2].split(",")[0] + ",-500"
    (tmp_path / "b.csv").write_text("\n".join(text) + "\n")
    other = _task(tmp_path / "b.csv")
    assert np.array_equal(other.data.scaler.mean, task.data.scaler.mean)
    assert np.array_equal(other.data.scaler.std, task.data.scaler.std)


def test_metrics_are_in_original_units_and_equal_the_metric_functions(tmp_path):
    task = _task(_write_csv(tmp_path / "a.csv"))
    H, L = task.horizon, task.config.context
    # a "model" that repeats the last scaled input H times: the naive forecast (m = 1)
    last = Exact(task, lambda x: x[:, :, :1].repeat(1, 1, H))
    metrics = task.evaluate(last, batch_size=7)
    origins = task.origins("validation")
    assert origins[0] == task.data.bounds["validation"][0] and len(origins) == metrics["val_windows"]
    truth = np.stack([task.data.values[o : o + H] for o in origins])  # (W, H, 1)
    pred = np.stack([np.repeat(task.data.values[o - 1 : o], H, axis=0) for o in origins])
    y_train = task.data.splits["train"].values
    assert metrics["val_mae"] == pytest.approx(fm.mae(truth.reshape(-1, 1), pred.reshape(-1, 1)))
    assert metrics["val_smape"] == pytest.approx(fm.smape(truth.reshape(-1, 1), pred.reshape(-1, 1)))
    assert metrics["val_mase"] == pytest.approx(
        fm.mase(truth.reshape(-1, 1), pred.reshape(-1, 1), y_train, 12), rel=1e-6
    )
    assert L == 12


def test_naive_baseline_equals_seasonal_naive(tmp_path):
    task = _task(_write_csv(tmp_path / "a.csv"))
    origins = task.origins("test")
    naive = seasonal_naive_forecasts(task.data.values, origins, task.horizon, 12)
    for w, o in enumerate(origins):
        assert np.array_equal(naive[w], fm.seasonal_naive(task.data.values[:o], task.horizon, 12))
    metrics = task.evaluate(Exact(task, lambda x: torch.zeros(*x.shape[:2], task.horizon)), 16)
    truth = task.truth(origins).reshape(-1, 1)
    expected = fm.mase(truth, naive.reshape(-1, 1), task.data.splits["train"].values, 12)
    assert metrics["test_mase_naive"] == pytest.approx(expected)


def test_mase_by_hand_through_the_task(tmp_path):
    # train [1, 3, 2, 4, 3] (Q = 1.5 with m = 1): the mase docstring's example, checked via point_metrics
    from seqlab.tasks.forecast import point_metrics

    out = point_metrics(
        np.array([[[5.0], [4.0]]]), np.array([[[4.0], [4.0]]]), np.array([1, 3, 2, 4, 3.0]), 1
    )
    assert out["mase"] == pytest.approx(1 / 3) and out["mae"] == pytest.approx(0.5)


def test_non_numeric_csv_names_the_line_and_creates_no_run_dir(tmp_path):
    path = _write_csv(tmp_path / "bad.csv", bad_line=7)
    run = tmp_path / "run"
    config = ExperimentConfig.from_dict(
        {"task": {"name": "forecast", "csv": str(path), "timestamp": "month"}, "train": {"steps": 1}}
    )
    with pytest.raises(ConfigError, match=r"bad\.csv:7: column 'y'.*not a number"):
        train(config, run, progress=False)
    assert not run.exists()


def test_too_short_training_split_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="smaller context"):
        _task(_write_csv(tmp_path / "a.csv", n=30), context=24)


def _parser():
    parser = argparse.ArgumentParser(prog="seqlab")
    sub = parser.add_subparsers(dest="command", required=True)
    series_cli.add_parser(sub, argparse.ArgumentParser(add_help=False))
    return parser


@pytest.mark.parametrize("normalise", ["global", "last"])
def test_end_to_end_train_and_forecast_cli(tmp_path, capsys, normalise):
    path = _write_csv(tmp_path / "a.csv")
    run = tmp_path / "run"
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "forecast", "csv": str(path), "timestamp": "month", "freq": "MS", "context": 12}
            | {"normalise": normalise},
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {"steps": 20, "batch_size": 8, "eval_every": 0, "threads": 1},
        }
    )
    metrics = train(config, run, progress=False)
    assert np.isfinite(metrics["val_mase"]) and "val_mase_naive" in metrics and "test_mase" in metrics
    info = json.loads((run / "series.json").read_text())
    assert info["context"] == 12 and info["horizon"] == 12 and info["season"] == 12
    assert info["normalise"] == normalise
    args = _parser().parse_args(["forecast", str(run), "--horizon", "14", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 14 and rows[0]["timestamp"] == "2010-01-01" and rows[13]["timestamp"] == "2011-02-01"
    assert all(np.isfinite(r["y"]) for r in rows)
    args = _parser().parse_args(["forecast", str(run), "--csv", str(path), "--horizon", "2"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["2010-01-01", "2010-02-01"]


def test_future_timestamps():
    ft = series_cli.future_timestamps
    assert ft(["1960-11-01", "1960-12-01"], "MS", 2) == ["1961-01-01", "1961-02-01"]
    assert ft(["2000-08-27T23:00", "2000-08-27T23:30"], "30min", 2) == [
        "2000-08-28T00:00",
        "2000-08-28T00:30",
    ]
    assert ft(["1998", "1999"], None, 2) == ["2000", "2001"]
    assert ft(["2001-01-01"], "QS", 1) == ["2001-04-01"]
    assert ft(None, None, 2) == ["+1", "+2"]


def test_arima_baseline_is_reported_when_statsmodels_is_installed(tmp_path):
    pytest.importorskip("statsmodels")
    task = _task(_write_csv(tmp_path / "a.csv"), arima=True, horizon=2)
    metrics = task.evaluate(Exact(task, lambda x: torch.zeros(*x.shape[:2], 2)), 16)
    assert metrics["val_mase_arima"] < metrics["val_mase"]  # ARIMA beats forecasting the mean
    assert np.isfinite(metrics["test_mase_arima"])


def test_relative_windows_subtract_the_last_input_and_score_the_last_step():
    batch = training_windows(np.arange(1.0, 6.0)[:, None], np.array([0]), context=3, horizon=2, relative=True)
    assert batch.inputs[0, :, 0].tolist() == [-2, -1, 0]
    assert batch.targets[0, -1].tolist() == [1, 2] and batch.target_mask[0].tolist() == [False, False, True]


def test_relative_forecasts_add_the_last_value_back(tmp_path):
    task = _task(_write_csv(tmp_path / "a.csv"), normalise="last")
    H = task.horizon
    metrics = task.evaluate(Exact(task, lambda x: torch.zeros(*x.shape[:2], H)), 16)  # "no change"
    origins = task.origins("validation")
    naive1 = np.stack([fm.seasonal_naive(task.data.values[:o], H, 1) for o in origins]).reshape(-1, 1)
    assert metrics["val_mae"] == pytest.approx(fm.mae(task.truth(origins).reshape(-1, 1), naive1))


def test_arima_with_a_long_season_uses_fourier_terms(tmp_path):
    pytest.importorskip("statsmodels")
    from seqlab.evaluation.forecast_baselines import fit_arima, fourier_terms

    t = np.arange(160)
    y = 5 + 2 * np.sin(2 * np.pi * t / 30) + np.random.default_rng(0).normal(0, 0.1, 160)
    _, info = fit_arima(y, 30)
    assert info["fourier_pairs"] == 3 and info["seasonal_order"] == (0, 0, 0, 0)
    X = fourier_terms(np.array([0, 15]), 30, 1)
    assert np.allclose(X, [[0, 1], [0, -1]], atol=1e-12)
