"""Input checks shared by the metric functions: arrays, tensors and lists in, numpy out.

Every metric accepts Python sequences, numpy arrays or torch tensors (on any device); the helpers
here turn them into numpy arrays and raise :class:`~seqlab.errors.ConfigError` with one line that
says what was expected when they are unusable. No torch import: tensors are recognised by duck
typing (``detach`` / ``cpu``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import ConfigError


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a numpy array (a torch tensor is detached and moved to the CPU first)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged lists
        raise ConfigError(f"{name}: expected an array-like of numbers, got {type(x).__name__} ({e})") from e


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise when the first dimensions of ``a`` and ``b`` differ."""
    if len(a) != len(b):
        raise ConfigError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}")


def int_labels(x: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """Return ``x`` as a 1-D int64 array of class ids, checked to lie in ``[0, num_classes)``.

    Floats are accepted only when every value is a whole number (``1.0``, not ``1.5``).
    """
    a = to_numpy(x, name)
    if a.ndim != 1:
        raise ConfigError(f"{name}: expected a 1-D sequence of integer labels, got shape {tuple(a.shape)}")
    whole = a.dtype == bool or np.issubdtype(a.dtype, np.integer) or a.size == 0
    if not whole and np.issubdtype(a.dtype, np.floating):
        whole = bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))
    if not whole:
        raise ConfigError(f"{name}: expected integer labels, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if num_classes is not None and a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ConfigError(f"{name}: label {bad} is out of range [0, {num_classes})")
    return a


def label_pair(y_true: Any, y_pred: Any, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a (true, predicted) pair of label sequences: same non-zero length, in range."""
    if num_classes is not None and (not isinstance(num_classes, int | np.integer) or num_classes < 1):
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    t = int_labels(y_true, "y_true", num_classes)
    p = int_labels(y_pred, "y_pred", num_classes)
    check_same_length(t, p, "y_true", "y_pred")
    if len(t) == 0:
        raise ConfigError("y_true and y_pred are empty; a metric needs at least one example")
    return t, p


def binary_labels(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a 1-D bool array; values must be 0/1 (or False/True)."""
    a = int_labels(x, name)
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ConfigError(f"{name}: expected binary labels 0/1, got values in [{a.min()}, {a.max()}]")
    return a.astype(bool)


def float_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array with only finite values."""
    a = to_numpy(x, name)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ConfigError(f"{name}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name}: contains NaN or infinity")
    return a
