"""Anomaly-detection metrics over time steps: precision / recall / F1, ROC-AUC, thresholds, point adjust.

``labels`` and ``predicted`` are 0/1 per time step (1 = anomaly, the positive class); ``scores``
are anomaly scores, higher = more anomalous (e.g. forecast or reconstruction error). A detector
flags step t when ``score_t ≥ threshold``; choose the threshold on validation data with
:func:`best_f1_threshold` and apply it unchanged to the test split.

The point-adjust protocol (:func:`point_adjust`) is optimistic and is reported under keys
prefixed ``point_adjusted_`` only, never in place of the plain point-wise numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import ConfigError
from seqlab.metrics._inputs import binary_labels, check_same_length, float_array


def _binary_pair(labels: Any, predicted: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = binary_labels(labels, "labels"), binary_labels(predicted, "predicted")
    check_same_length(t, p, "labels", "predicted")
    if len(t) == 0:
        raise ConfigError("labels and predicted are empty; a metric needs at least one time step")
    return t, p


def _scored(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    t, s = binary_labels(labels, "labels"), float_array(scores, "scores")
    if s.ndim != 1:
        raise ConfigError(f"scores: expected a 1-D array, got shape {tuple(s.shape)}")
    check_same_length(t, s, "labels", "scores")
    return t, s


def precision_recall_f1_binary(labels: Any, predicted: Any) -> dict:
    """Point-wise precision, recall and F1 of the anomaly class (label 1).

    P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2·TP/(2·TP+FP+FN); 0 when a denominator is 0
    (sklearn's ``zero_division=0``).

    Example: labels = [0, 1, 1, 0, 1], predicted = [0, 1, 0, 1, 1] → TP 2, FP 1, FN 1,
    P = R = F1 = 2/3.

    Returns:
        ``{"precision", "recall", "f1", "tp", "fp", "fn"}``.
    """
    t, p = _binary_pair(labels, predicted)
    tp, fp, fn = int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` in ascending order, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # 1. first index of each run of equal values, and the run it starts
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]  # exclusive
    # 2. ranks start+1 .. end share the mean (start + 1 + end) / 2
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve by the Mann–Whitney rank statistic, ties averaged.

    AUC = (R₊ − n₊(n₊+1)/2) / (n₊ · n₋) = P(score of a random anomaly > score of a random normal
    step) + ½ P(tie), where R₊ is the sum of the (average) ranks of the anomalous steps.

    Example: labels = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8] → ranks [1, 3, 2, 4],
    R₊ = 6, AUC = (6 − 3)/(2·2) = 0.75.

    Raises:
        ConfigError: when ``labels`` holds only one class (AUC is undefined).
    """
    t, s = _scored(labels, scores)
    n_pos = int(t.sum())
    n_neg = len(t) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"ROC-AUC needs both classes in labels, got {n_pos} anomalous and {n_neg} normal")
    r_pos = float(_average_ranks(s)[t].sum())
    return (r_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def best_f1_threshold(labels: Any, scores: Any) -> dict:
    """The threshold τ maximising point-wise F1 of ``score ≥ τ`` — fit it on validation data.

    Every distinct score is a candidate; F1(τ) = 2·TP(τ)/(TP(τ) + n₊ + FP(τ)) with counts from a
    descending sort. Ties in F1 go to the largest τ (fewest alarms).

    Example: labels = [0, 1, 1, 0], scores = [0.1, 0.9, 0.6, 0.7] → τ = 0.6 flags steps 1, 2, 3:
    TP 2, FP 1, F1 = 4/5 (τ = 0.9 gives 2/3, τ = 0.7 gives 1/2).

    Returns:
        ``{"threshold", "f1", "precision", "recall"}``.
    """
    t, s = _scored(labels, scores)
    n_pos = int(t.sum())
    if n_pos == 0:
        raise ConfigError("best_f1_threshold needs at least one anomalous step in labels")
    # 1. sort by score, descending; counts after including every step with score >= s[i]
    order = np.argsort(-s, kind="mergesort")
    s_sorted, t_sorted = s[order], t[order]
    tp, flagged = np.cumsum(t_sorted), np.arange(1, len(s) + 1)
    # 2. keep the last position of each run of equal scores (a threshold flags all ties together)
    last = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    f1 = 2.0 * tp[last] / (flagged[last] + n_pos)
    best = last[int(np.argmax(f1))]  # argmax takes the first = largest threshold on ties
    return {
        "threshold": float(s_sorted[best]),
        "f1": float(2.0 * tp[best] / (flagged[best] + n_pos)),
        "precision": float(tp[best] / flagged[best]),
        "recall": float(tp[best] / n_pos),
    }


def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` ranges of consecutive 1s in a bool array."""
    edges = np.diff(np.r_[0, labels.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def point_adjust(labels: Any, predicted: Any) -> np.ndarray:
    """Point-adjusted predictions (Xu et al. 2018): a detected anomaly segment counts as wholly detected.

    For every maximal run [s, e) of label 1: if predicted_t = 1 for any t in [s, e), set
    predicted_t = 1 for all t in [s, e). Predictions outside anomaly segments are unchanged.

    OPTIMISTIC: one lucky alarm in a long segment earns recall for the whole segment, so even
    random scores can reach high point-adjusted F1 (Kim et al. 2022, "Towards a Rigorous
    Evaluation of Time-series Anomaly Detection"). Report it next to, never instead of, the
    point-wise F1, and label it "point-adjusted".

    Example: labels    = [0, 1, 1, 1, 0, 1, 1, 0]
             predicted = [1, 0, 1, 0, 0, 0, 0, 0]
             adjusted  = [1, 1, 1, 1, 0, 0, 0, 0]   (segment 1–3 hit once; segment 5–6 missed)

    Returns:
        bool array of the same length.
    """
    t, p = _binary_pair(labels, predicted)
    adjusted = p.copy()
    for start, end in _segments(t):
        if p[start:end].any():
            adjusted[start:end] = True
    return adjusted


def point_adjusted_precision_recall_f1(labels: Any, predicted: Any) -> dict:
    """:func:`precision_recall_f1_binary` after :func:`point_adjust` — optimistic, see there.

    Example (the :func:`point_adjust` one): TP 3, FP 1, FN 2 → P = 3/4, R = 3/5, F1 = 2/3.

    Returns:
        ``{"point_adjusted_precision", "point_adjusted_recall", "point_adjusted_f1"}``.
    """
    out = precision_recall_f1_binary(labels, point_adjust(labels, predicted))
    return {f"point_adjusted_{k}": out[k] for k in ("precision", "recall", "f1")}


def detection_report(labels: Any, scores: Any, threshold: float) -> dict:
    """Everything a detector is reported with, at a threshold chosen beforehand (on validation).

    Flags ``score ≥ threshold``; returns point-wise precision / recall / F1 and counts, ROC-AUC
    (``None`` when ``labels`` holds one class only), and the optimistic point-adjusted P / R / F1
    under their own ``point_adjusted_*`` keys.

    Example: labels = [0, 1, 1, 0], scores = [0.1, 0.9, 0.6, 0.7], threshold 0.8 →
    precision 1, recall 1/2, f1 2/3, roc_auc 0.75, point_adjusted_f1 1.0.
    """
    t, s = _scored(labels, scores)
    predicted = s >= threshold
    out: dict[str, Any] = {"threshold": float(threshold), **precision_recall_f1_binary(t, predicted)}
    out["roc_auc"] = roc_auc(t, s) if 0 < t.sum() < len(t) else None
    out.update(point_adjusted_precision_recall_f1(t, predicted))
    return out
