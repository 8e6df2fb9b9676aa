"""Anomaly detection by forecast error: a next-step forecaster trained on anomaly-free data.

Shape legend: B batch · T time (= context L) · C channels · N points scored.

The model is a one-step forecaster (:class:`~seqlab.tasks.forecast.ForecastTask` with H = 1)
trained on the training split, which must be anomaly-free (the bundled ``taylor-anomalies`` and
``mitdb`` are). Every point j of validation and test is scored by how badly it was forecast from
the L points before it:

    r_jc = (y_jc − ŷ_jc) / σ_c (scaled units),   score_j = (1/C) Σ_c (r_jc / s_c)²

where s_c = 1.4826 · median_j |r_jc − median r_c| is a robust (MAD) spread of the validation
residuals, so channels weigh alike and a few anomalies do not inflate it. The threshold τ is
chosen on **validation** (:func:`~seqlab.metrics.anomaly.best_f1_threshold`: the τ maximising
point-wise F1 of ``score ≥ τ``) and applied unchanged to test.

Metrics: ``val_roc_auc`` (``primary_metric``, threshold-free), ``val_f1`` at the chosen τ
(optimistic: τ was fit there), ``threshold``; on test (:func:`~seqlab.metrics.anomaly.detection_report`)
``test_precision``, ``test_recall``, ``test_f1``, ``test_roc_auc`` and, clearly labelled, the
optimistic point-adjusted variant ``test_point_adjusted_precision`` / ``_recall`` / ``_f1``
(Xu et al. 2018). Once :meth:`~seqlab.tasks.forecast.ForecastTask.save` has named the run
directory, each evaluation rewrites ``series.json`` with the current threshold and MAD spread,
so the last evaluation (the final model) wins.

The same detector run on the seasonal-naive residuals y_j − y_{j−m} (m = ``season``: 48 for
half-hourly data) is reported as the baseline, under the same keys with ``_naive`` appended
(``val_roc_auc_naive``, ``test_f1_naive``, ``test_point_adjusted_f1_naive``...).

Example (C = 1): residuals r = [0.1, −0.2, 3.0] with s = 0.5 → scores [0.04, 0.16, 36.0].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from seqlab.errors import ConfigError
from seqlab.metrics.anomaly import best_f1_threshold, detection_report, roc_auc
from seqlab.tasks.base import TASKS, Predict
from seqlab.tasks.forecast import (
    ForecastConfig,
    ForecastTask,
    SeriesData,
    load_splits,
    predict_scaled,
)

__all__ = ["AnomalyConfig", "AnomalyTask", "anomaly_scores", "detection_metrics", "mad_spread"]

MAD_TO_SIGMA = 1.4826  # σ = 1.4826·MAD for normal data


@dataclass
class AnomalyConfig(ForecastConfig):
    """:class:`~seqlab.tasks.forecast.ForecastConfig` (``horizon`` is ignored: always 1) plus the
    ``label`` column (0/1) of a user's CSV; the default dataset is ``taylor-anomalies``, the
    default ``normalise`` is ``global`` (every step of a window trains the forecaster)."""

    label: str | int = "label"
    context: int = 96
    normalise: Literal["global", "last"] = "global"  # every step trains (the normal data do not trend)
    split: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])


def mad_spread(residuals: np.ndarray) -> np.ndarray:
    """Per-channel robust spread s_c = 1.4826·median|r − median(r)| of residuals (N, C); 1 if 0."""
    med = np.median(residuals, axis=0)
    s = MAD_TO_SIGMA * np.median(np.abs(residuals - med), axis=0)
    return np.where(s > 0, s, 1.0)


def anomaly_scores(residuals: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """score_j = mean_c (r_jc / s_c)² for residuals (N, C): (N,)."""
    return np.mean((residuals / spread) ** 2, axis=1)


def detection_metrics(
    labels: np.ndarray, r_val: np.ndarray, p_val: np.ndarray, r_test: np.ndarray, p_test: np.ndarray
) -> tuple[dict[str, Any], float, np.ndarray]:
    """Scores from residuals (N, C) of validation / test points ``p_*`` (indices into ``labels``),
    the threshold fitted on validation, and the metrics; returns (metrics, threshold, spread)."""
    spread = mad_spread(r_val)
    s_val, s_test = anomaly_scores(r_val, spread), anomaly_scores(r_test, spread)
    best = best_f1_threshold(labels[p_val], s_val)  # chosen on validation only
    report = detection_report(labels[p_test], s_test, best["threshold"])
    out: dict[str, Any] = {
        "val_roc_auc": roc_auc(labels[p_val], s_val),
        "val_f1": best["f1"],
        "val_precision": best["precision"],
        "val_recall": best["recall"],
        "threshold": best["threshold"],
    }
    out |= {f"test_{k}": v for k, v in report.items() if k != "threshold"}
    return out, best["threshold"], spread


@TASKS.register("anomaly")
class AnomalyTask(ForecastTask):
    """Forecast-error anomaly detection; threshold on validation, precision/recall/F1 and AUC on test."""

    Config = AnomalyConfig
    primary_metric = "val_roc_auc"
    train_defaults = {"steps": 1000, "batch_size": 32, "lr": 3e-3, "eval_every": 250}
    default_dataset = "taylor-anomalies"

    def __init__(self, config: Any = None, seed: int = 0) -> None:
        self._naive: dict[str, Any] | None = None
        self.threshold: float | None = None
        self.spread: np.ndarray | None = None
        super().__init__(config, seed)
        d = self.data
        if d.labels is None:
            raise ConfigError(
                "task 'anomaly' needs labelled data: a labelled dataset or a CSV with a label column"
            )
        a, b = d.bounds["train"]
        if d.labels[a:b].any():
            raise ConfigError(
                f"the training split holds {int(d.labels[a:b].sum())} anomalous points; "
                "the forecaster must learn normal behaviour (move the split)"
            )
        va, vb = d.bounds["validation"]
        if not 0 < d.labels[va:vb].sum() < vb - va:
            raise ConfigError(
                "the validation split needs both normal and anomalous points to choose a threshold"
            )

    @property
    def output_horizon(self) -> int:
        return 1

    def _load(self) -> SeriesData:
        return SeriesData(load_splits(self.config, self.default_dataset, labels=self.config.label))

    def residuals(self, predict: Predict, split: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Scaled one-step residuals (N, C) of the points of ``split`` (those with L points before them)
        and their indices (N,) in the whole series."""
        a, b = self.data.bounds[split]
        points = np.arange(max(a, self.config.context), b)
        c = self.config
        pred = predict_scaled(predict, self.data.scaled, points, c.context, self.relative, batch_size)[:, 0]
        return self.data.scaled[points] - pred, points

    def evaluate(self, predict: Predict, batch_size: int) -> dict[str, Any]:
        r_val, p_val = self.residuals(predict, "validation", batch_size)
        r_test, p_test = self.residuals(predict, "test", batch_size)
        out, self.threshold, self.spread = detection_metrics(self.data.labels, r_val, p_val, r_test, p_test)
        out["val_mse"], out["test_mse"] = float(np.mean(r_val**2)), float(np.mean(r_test**2))
        if self._naive is None:  # the same detector on seasonal-naive residuals y_j − y_{j−m}
            m, z = self.season, self.data.scaled
            self._naive = detection_metrics(
                self.data.labels, z[p_val] - z[p_val - m], p_val, z[p_test] - z[p_test - m], p_test
            )[0]
        out |= {f"{k}_naive": v for k, v in self._naive.items() if k.startswith(("val_", "test_"))}
        if self.run_dir is not None:
            self.save(self.run_dir)
        return out

    def inference_info(self) -> dict[str, Any]:
        info = super().inference_info()
        info["threshold"] = self.threshold
        info["spread"] = None if self.spread is None else self.spread.tolist()
        return info
