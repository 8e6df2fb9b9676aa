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

from seqlab.metrics.classification import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
    token_accuracy,
    token_precision_recall_f1,
)

__all__ = [
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "precision_recall_f1",
    "token_accuracy",
    "token_precision_recall_f1",
]
