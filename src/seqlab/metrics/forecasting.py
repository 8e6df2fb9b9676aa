"""Forecasting metrics: MAE, RMSE, sMAPE, MASE, and the seasonal-naive forecast they compare with.

Arrays are (N,) for a univariate series or (N, C) for C channels (N time steps, which may be the
flattened steps of several forecast windows). Each metric is computed per channel and then
averaged over channels with equal weight (as ``sklearn``'s ``multioutput="uniform_average"``);
for MAE and sMAPE that equals the mean over all elements, for RMSE and MASE it does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlab.errors import ConfigError
from seqlab.metrics._inputs import check_same_length, float_array


def _series(x: Any, name: str) -> np.ndarray:
    """A finite float array of shape (N,) or (N, C) with N ≥ 1, returned as (N, C)."""
    a = float_array(x, name)
    if a.ndim not in (1, 2) or len(a) == 0:
        raise ConfigError(f"{name}: expected a non-empty array of shape (N,) or (N, C), got {tuple(a.shape)}")
    return a.reshape(len(a), -1)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Actual and forecast as (N, C) arrays of the same shape."""
    a, f = _series(y_true, "y_true"), _series(y_pred, "y_pred")
    check_same_length(a, f, "y_true", "y_pred")
    if a.shape != f.shape:
        raise ConfigError(f"y_true and y_pred must have the same shape, got {a.shape} and {f.shape}")
    return a, f


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error: MAE = (1/N) Σ_t |F_t − A_t|, averaged over channels.

    Example: A = [1, 2, 3], F = [2, 2, 5] → (1 + 0 + 2)/3 = 1.0.
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean(np.abs(f - a)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error per channel, RMSE_c = sqrt((1/N) Σ_t (F_tc − A_tc)²), mean over channels.

    Example: A = [1, 2, 3], F = [2, 2, 5] → sqrt((1 + 0 + 4)/3) = 1.2910.
    """
    a, f = _pair(y_true, y_pred)
    return float(np.mean(np.sqrt(np.mean((f - a) ** 2, axis=0))))


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric MAPE in percent, the M4-competition variant (range 0–200):

    sMAPE = 100/N · Σ_t 2|F_t − A_t| / (|A_t| + |F_t|),   a term with A_t = F_t = 0 counts as 0.

    Example: A = [1, 2, 0], F = [3, 2, 0] → 100/3 · (2·2/4 + 0 + 0) = 33.33.
    """
    a, f = _pair(y_true, y_pred)
    num, den = 2.0 * np.abs(f - a), np.abs(a) + np.abs(f)
    terms = np.zeros_like(num)
    np.divide(num, den, out=terms, where=den != 0)
    return float(100.0 * np.mean(terms))


def _check_season(season: int, n_train: int | None = None) -> None:
    if not isinstance(season, int | np.integer) or season < 1:
        raise ConfigError(f"season must be a positive integer, got {season!r}")
    if n_train is not None and n_train <= season:
        raise ConfigError(f"y_train needs more than season={season} points, got {n_train}")


def seasonal_naive(y_train: Any, horizon: int, season: int = 1) -> np.ndarray:
    """Seasonal-naive forecast: repeat the last observed season.

    F_{T+h} = A_{T+h−m·k},  k = ⌈h/m⌉,  for h = 1..H with season length m
    (m = 1 is the naive "last value" forecast).

    Example: y_train = [1, 2, 3, 4, 5, 6], season 4, horizon 6 → [3, 4, 5, 6, 3, 4].

    Returns:
        float array of shape (H,) or (H, C), following ``y_train``.
    """
    a = float_array(y_train, "y_train")
    if a.ndim not in (1, 2):
        raise ConfigError(f"y_train: expected shape (N,) or (N, C), got {tuple(a.shape)}")
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"horizon must be a positive integer, got {horizon!r}")
    _check_season(season)
    if len(a) < season:
        raise ConfigError(f"y_train needs at least season={season} points, got {len(a)}")
    last = a[len(a) - season :]
    reps = -(-horizon // season)  # ceil
    return np.concatenate([last] * reps, axis=0)[:horizon]


def mase(y_true: Any, y_pred: Any, y_train: Any, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006), per channel then mean over channels:

    MASE = MAE(A, F) / Q,   Q = 1/(T−m) · Σ_{t=m+1..T} |y_t − y_{t−m}|

    where y_1..y_T is the training series and m the season: Q is the in-sample MAE of the
    one-step seasonal-naive forecast. MASE < 1 beats that baseline (in-sample).

    Example: y_train = [1, 3, 2, 4, 3] (m = 1: Q = (2 + 1 + 2 + 1)/4 = 1.5), A = [5, 4], F = [4, 4]
    → MAE 0.5, MASE = 0.5/1.5 = 1/3.

    Raises:
        ConfigError: when Q = 0 for some channel (a constant or exactly periodic training series),
            or ``y_train`` has no more than ``season`` points.
    """
    a, f = _pair(y_true, y_pred)
    train = _series(y_train, "y_train")
    if train.shape[1] != a.shape[1]:
        raise ConfigError(f"y_train has {train.shape[1]} channels but y_true has {a.shape[1]}")
    _check_season(season, len(train))
    scale = np.mean(np.abs(train[season:] - train[:-season]), axis=0)  # (C,)
    if np.any(scale == 0):
        c = int(np.flatnonzero(scale == 0)[0])
        raise ConfigError(
            f"MASE is undefined: the seasonal-naive in-sample MAE of y_train (season={season}) "
            f"is 0 for channel {c}"
        )
    return float(np.mean(np.mean(np.abs(f - a), axis=0) / scale))
