"""Pure metric functions: numpy in (lists, arrays or tensors accepted), Python floats / dicts out.

- :mod:`~seqlab.metrics.classification`: accuracy, precision / recall / F1, confusion matrix, report,
  token-level accuracy and F1 over masked positions.
- :mod:`~seqlab.metrics.tagging`: entity-level (span) F1 for BIO tags.
- :mod:`~seqlab.metrics.text`: BLEU, chrF (sacrebleu), ROUGE (rouge-score), edit distance, WER, PER, CER,
  exact match.
- :mod:`~seqlab.metrics.forecasting`: MAE, RMSE, sMAPE, MASE, the seasonal-naive forecast.
- :mod:`~seqlab.metrics.anomaly`: binary precision / recall / F1, ROC-AUC, best-F1 threshold, point adjust.

Bad input (length mismatch, labels out of range, NaN) raises :class:`~seqlab.errors.ConfigError`.
"""

from __future__ import annotations

from seqlab.metrics.anomaly import (
    best_f1_threshold,
    detection_report,
    point_adjust,
    point_adjusted_precision_recall_f1,
    precision_recall_f1_binary,
    roc_auc,
)
from seqlab.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
    token_accuracy,
    token_precision_recall_f1,
)
from seqlab.metrics.forecasting import mae, mase, rmse, seasonal_naive, smape
from seqlab.metrics.tagging import bio_entities, entity_f1
from seqlab.metrics.text import (
    bleu,
    character_error_rate,
    chrf,
    edit_distance,
    exact_match,
    phoneme_error_rate,
    rouge,
    word_error_rate,
)

__all__ = [
    "accuracy",
    "best_f1_threshold",
    "bio_entities",
    "bleu",
    "character_error_rate",
    "chrf",
    "classification_report",
    "confusion_matrix",
    "detection_report",
    "edit_distance",
    "entity_f1",
    "exact_match",
    "mae",
    "mase",
    "phoneme_error_rate",
    "point_adjust",
    "point_adjusted_precision_recall_f1",
    "precision_recall_f1",
    "precision_recall_f1_binary",
    "rmse",
    "roc_auc",
    "rouge",
    "seasonal_naive",
    "smape",
    "token_accuracy",
    "token_precision_recall_f1",
    "word_error_rate",
]
