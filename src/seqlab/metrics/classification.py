"""Classification and tagging metrics: accuracy, precision / recall / F1, confusion matrix.

Inputs are sequences, numpy arrays or torch tensors of integer labels in ``[0, num_classes)``.
Every count comes from the confusion matrix ``M`` (rows = true class, columns = predicted):

    TP_c = M[c, c]      FP_c = Σ_r M[r, c] − TP_c      FN_c = Σ_k M[c, k] − TP_c

Division by zero gives 0.0, as scikit-learn's ``zero_division=0`` (a class never predicted has
precision 0; a class never present has recall 0). Results agree with ``sklearn.metrics`` called
with ``labels=range(num_classes)`` (tested).

Entity-level (span) F1 for BIO tags is in :mod:`seqlab.metrics.tagging`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import ConfigError
from seqlab.metrics._inputs import label_pair, to_numpy

AVERAGES = ("macro", "micro", "weighted", "none")


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the true label.

    accuracy = (1/N) Σ_i [y_true_i = y_pred_i]

    Example: ``accuracy([0, 1, 2, 2], [0, 2, 2, 2])`` = 3/4 = 0.75.
    """
    t, p = label_pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count matrix ``M[i, j]`` = number of examples with true class ``i`` predicted as ``j``.

    Example: ``confusion_matrix([0, 1, 1], [0, 0, 1], 2)`` = ``[[1, 0], [1, 1]]``.

    Returns:
        int64 array of shape (C, C), rows = true, columns = predicted.
    """
    t, p = label_pair(y_true, y_pred, num_classes)
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Element-wise ``num / den`` with 0 where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _per_class(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix."""
    tp = np.diag(m).astype(np.float64)
    predicted = m.sum(axis=0)
    support = m.sum(axis=1)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)  # = 2PR/(P+R), 0 when TP = 0
    return precision, recall, f1, support


def precision_recall_f1(y_true: Any, y_pred: Any, num_classes: int, average: str = "macro") -> dict:
    """Precision, recall and F1 over ``num_classes`` classes.

    Per class c:  P_c = TP_c/(TP_c+FP_c),  R_c = TP_c/(TP_c+FN_c),  F1_c = 2·TP_c/(2·TP_c+FP_c+FN_c).
    Averages:
        macro     unweighted mean of P_c, R_c, F1_c over all ``num_classes`` classes
                  (absent classes count as 0, as sklearn with ``labels=range(C)``);
        micro     from the summed counts: P = R = F1 = ΣTP/N = accuracy for single-label data;
        weighted  mean weighted by support n_c/N;
        none      the per-class values as lists of length C.

    Example: y_true = [0, 0, 1, 2], y_pred = [0, 1, 1, 1], C = 3 gives per class
    P = [1, 1/3, 0], R = [1/2, 1, 0], F1 = [2/3, 1/2, 0]; macro F1 = (2/3 + 1/2)/3 = 0.3889.

    Returns:
        ``{"precision", "recall", "f1"}``: floats, or lists of C floats for ``average="none"``.
    """
    if average not in AVERAGES:
        raise ConfigError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
    m = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1, support = _per_class(m)
    if average == "none":
        return {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}
    if average == "micro":
        tp, n = float(np.trace(m)), float(m.sum())
        micro = tp / n  # ΣFP = ΣFN = N − ΣTP in single-label data
        return {"precision": micro, "recall": micro, "f1": micro}
    weights = support / support.sum() if average == "weighted" else np.full(num_classes, 1.0 / num_classes)
    return {
        "precision": float(weights @ precision),
        "recall": float(weights @ recall),
        "f1": float(weights @ f1),
    }


def classification_report(y_true: Any, y_pred: Any, label_names: list[str]) -> dict:
    """A JSON-serialisable summary: accuracy, macro P/R/F1, per-class P/R/F1/support, confusion.

    ``num_classes = len(label_names)``; label id ``i`` is named ``label_names[i]``.

    Example: ``classification_report([0, 1, 1], [0, 0, 1], ["neg", "pos"])`` gives accuracy 2/3,
    per_class["neg"] = {precision 0.5, recall 1.0, f1 0.6667, support 1}, confusion [[1, 0], [1, 1]].

    Returns:
        ``{"accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "num_examples",
        "labels", "per_class": {name: {"precision", "recall", "f1", "support"}}, "confusion_matrix"}``
        with plain Python floats / ints / lists only.
    """
    names = [str(n) for n in label_names]
    if not names:
        raise ConfigError("label_names is empty; give one name per class id")
    if len(set(names)) != len(names):
        raise ConfigError(f"label_names must be unique, got {names}")
    m = confusion_matrix(y_true, y_pred, len(names))
    precision, recall, f1, support = _per_class(m)
    n = int(m.sum())
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "accuracy": float(np.trace(m)) / n,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float(support @ f1) / n,
        "num_examples": n,
        "labels": names,
        "per_class": per_class,
        "confusion_matrix": m.tolist(),
    }


def _masked(y_true: Any, y_pred: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``y_true`` / ``y_pred`` (B, T) at the positions where ``mask`` is true."""
    t, p, k = to_numpy(y_true, "y_true"), to_numpy(y_pred, "y_pred"), to_numpy(mask, "mask")
    if not (t.shape == p.shape == k.shape):
        raise ConfigError(
            f"y_true, y_pred and mask must have the same shape, got {t.shape}, {p.shape} and {k.shape}"
        )
    if k.dtype != bool:
        if k.size and not np.all((k == 0) | (k == 1)):
            raise ConfigError("mask must be boolean (True = real token) or 0/1")
        k = k.astype(bool)
    if not k.any():
        raise ConfigError("mask selects no positions; token metrics need at least one real token")
    return t[k], p[k]


def token_accuracy(y_true: Any, y_pred: Any, mask: Any) -> float:
    """Tagging accuracy over the real (unmasked) positions of a padded batch.

    token_accuracy = Σ_{b,t} mask_bt · [y_true_bt = y_pred_bt] / Σ_{b,t} mask_bt

    Padded positions (``mask`` false) are ignored whatever label they hold (e.g. -100).
    Example: y_true = [[1, 2, -100]], y_pred = [[1, 0, 5]], mask = [[1, 1, 0]] → 1/2.

    Shape:
        y_true, y_pred, mask: any equal shape, typically (B, T).
    """
    t, p = _masked(y_true, y_pred, mask)
    t, p = label_pair(t, p)
    return float(np.mean(t == p))


def token_precision_recall_f1(
    y_true: Any, y_pred: Any, mask: Any, num_classes: int, average: str = "macro"
) -> dict:
    """Token-level :func:`precision_recall_f1` over the real (unmasked) positions.

    The positions with ``mask`` true are flattened and scored as one classification problem:
    F1_c = 2·TP_c/(2·TP_c+FP_c+FN_c) counted over tokens. For entity (span) F1 on BIO tags use
    :func:`seqlab.metrics.tagging.entity_f1` instead.

    Example: y_true = [[0, 1, 1]], y_pred = [[0, 1, 0]], mask = [[1, 1, 1]], C = 2 → per class
    F1 = [2/3, 2/3], macro 0.6667.
    """
    t, p = _masked(y_true, y_pred, mask)
    return precision_recall_f1(t, p, num_classes, average)
