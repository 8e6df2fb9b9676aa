"""Anomaly task: scores, threshold chosen on validation (not test), end to end with the detect CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import seqlab.tasks.anomaly  # noqa: F401  (registration)
from seqlab.cli import series as series_cli
from seqlab.errors import ConfigError
from seqlab.metrics.anomaly import best_f1_threshold, roc_auc
from seqlab.tasks.anomaly import AnomalyTask, anomaly_scores, mad_spread
from seqlab.training import ExperimentConfig, train


def _write_csv(path, n=300, spikes=(200, 201, 260, 280), seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.05, n)
    labels = np.zeros(n, dtype=int)
    for s in spikes:
        y[s] += 4.0
        labels[s] = 1
    rows = ["t,y,label"] + [f"{i},{v:.5f},{lab}" for i, v, lab in zip(t, y, labels)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _options(path):
    return {"csv": str(path), "timestamp": "t", "values": ["y"], "context": 24, "split": [0.6, 0.2, 0.2]}


def test_scores_match_the_docstring_example():
    scores = anomaly_scores(np.array([[0.1], [-0.2], [3.0]]), np.array([0.5]))
    assert scores.tolist() == pytest.approx([0.04, 0.16, 36.0])
    assert mad_spread(np.array([[1.0], [2.0], [3.0], [100.0]]))[0] == pytest.approx(1.4826 * 1.0)


def test_threshold_is_chosen_on_validation_not_test(tmp_path):
    task = AnomalyTask(_options(_write_csv(tmp_path / "a.csv")))
    assert task.io.output_dim == 1 and task.io.input_dim == 1

    def oracle(batch):  # forecasts the previous value: spikes give large errors
        return batch.inputs[:, :, :1]

    metrics = task.evaluate(oracle, 32)
    labels = task.data.labels
    r_val, p_val = task.residuals(oracle, "validation", 32)
    expected = best_f1_threshold(labels[p_val], anomaly_scores(r_val, mad_spread(r_val)))["threshold"]
    assert metrics["threshold"] == pytest.approx(expected)
    assert metrics["val_roc_auc"] > 0.5 and metrics["test_roc_auc"] > 0.9
    for key in ("test_precision", "test_recall", "test_f1", "test_point_adjusted_f1"):
        assert key in metrics
    z, m = task.data.scaled, task.season
    naive = anomaly_scores(z[p_val] - z[p_val - m], mad_spread(z[p_val] - z[p_val - m]))
    assert metrics["val_roc_auc_naive"] == pytest.approx(roc_auc(labels[p_val], naive))
    assert "test_point_adjusted_f1_naive" in metrics and "threshold_naive" not in metrics
    # changing the test labels' neighbourhood values does not move the threshold: only validation counts
    a, b = task.data.bounds["test"]
    task.data.scaled[a + 30 : b] += 10.0
    assert task.evaluate(oracle, 32)["threshold"] == pytest.approx(expected)


def test_the_label_column_is_not_a_channel(tmp_path):
    options = _options(_write_csv(tmp_path / "a.csv"))
    del options["values"]
    task = AnomalyTask(options)
    assert task.data.columns == ["y"] and task.data.labels.sum() == 4


def test_anomalies_in_training_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="training split holds"):
        AnomalyTask(_options(_write_csv(tmp_path / "a.csv", spikes=(50, 200, 260))))


def test_validation_without_anomalies_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="validation split needs"):
        AnomalyTask(_options(_write_csv(tmp_path / "a.csv", spikes=(260,))))


def test_end_to_end_train_and_detect_cli(tmp_path, capsys):
    path = _write_csv(tmp_path / "a.csv")
    run = tmp_path / "run"
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "anomaly"} | _options(path),
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {"steps": 30, "batch_size": 8, "lr": 1e-2, "eval_every": 0, "threads": 1},
        }
    )
    metrics = train(config, run, progress=False)
    assert 0.0 <= metrics["val_roc_auc"] <= 1.0 and "test_point_adjusted_f1" in metrics
    info = json.loads((run / "series.json").read_text())
    assert info["threshold"] == pytest.approx(metrics["threshold"]) and len(info["spread"]) == 1
    parser = argparse.ArgumentParser(prog="seqlab")
    series_cli.add_parser(parser.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["detect", str(run), str(path), "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["score"] >= info["threshold"] for r in rows)
    assert all(set(r) == {"timestamp", "score", "y"} for r in rows)
