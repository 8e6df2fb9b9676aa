"""Forecasting baselines on rolling origins: seasonal naive and (S)ARIMA via statsmodels.

Shape legend: N points · C channels · W forecast origins · H horizon.

Both produce forecasts (W, H, C) in original units from the same origins as the task
(:class:`~seqlab.tasks.forecast.ForecastTask`), using only the points before each origin.

- **Seasonal naive** (:func:`seqlab.metrics.forecasting.seasonal_naive`):
  F_{o+h} = y_{o+h−m·⌈(h+1)/m⌉} for h = 0..H−1 — the last observed season repeated.
- **ARIMA** (Box & Jenkins; statsmodels ``SARIMAX``): per channel, a tiny auto-ARIMA fitted
  **once** on the training split: a seasonal (0, 1, 1)_m part when 1 < m ≤ 24 and the split
  holds at least 3·m points, or for longer seasons (weekly data, m = 52, where a seasonal state
  of 52+ dimensions makes each fit take minutes) K = 3 Fourier pairs sin/cos(2πkt/m) as
  regressors (Hyndman's dynamic harmonic regression); d ∈ {0, 1} by the KPSS test (as
  auto.arima does); then the lowest AIC over (p, q) ∈ {(1,0), (0,1), (1,1), (2,0), (2,1)}, with
  a constant when nothing is differenced. Rolling origins are then forecast **without
  refitting**: the fitted parameters filter the observed data up to each origin
  (``results.extend`` chains the Kalman filter forward from the previous origin, so each origin
  costs only the new points) and forecast H steps.
  statsmodels is imported lazily; without it :func:`arima_forecasts` raises a
  :class:`~seqlab.errors.ConfigError` that says how to install it.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from seqlab.errors import ConfigError
from seqlab.metrics.forecasting import seasonal_naive

__all__ = [
    "ARIMA_ORDERS",
    "arima_forecasts",
    "choose_d",
    "fit_arima",
    "fourier_terms",
    "seasonal_naive_forecasts",
]

log = logging.getLogger(__name__)

ARIMA_ORDERS = ((1, 0), (0, 1), (1, 1), (2, 0), (2, 1))  # (p, q) candidates
MAX_SEASON = 24  # SARIMAX's state grows with m (m = 52 fits take minutes): longer seasons use Fourier terms
FOURIER_PAIRS = 3  # K sine/cosine pairs for long seasons


def seasonal_naive_forecasts(
    values: np.ndarray, origins: np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """Seasonal-naive forecasts (W, H, C) from each origin o, reading only ``values[:o]`` (N, C)."""
    return np.stack([seasonal_naive(values[:o], horizon, season) for o in origins])


def _statsmodels() -> Any:
    try:
        from statsmodels.tsa.statespace.sarimax import SARIMAX
    except ImportError:
        raise ConfigError(
            "the ARIMA baseline needs statsmodels: pip install statsmodels (with pandas and patsy), "
            "or set task.arima=false"
        ) from None
    return SARIMAX


def choose_d(y: np.ndarray, season: int) -> int:
    """Differences d ∈ {0, 1}: 1 when the KPSS test rejects level-stationarity at 5 % (after the
    seasonal difference y_t − y_{t−m} when the model has a seasonal part), else 0."""
    from statsmodels.tsa.stattools import kpss

    z = y[season:] - y[:-season] if season > 1 else y
    with warnings.catch_warnings():  # KPSS warns when the statistic is outside its p-value table
        warnings.simplefilter("ignore")
        p_value = kpss(z, regression="c", nlags="auto")[1]
    return int(p_value < 0.05)


def fourier_terms(t: np.ndarray, season: int, pairs: int) -> np.ndarray:
    """Regressors (N, 2K): sin(2πkt/m), cos(2πkt/m) for k = 1..K at time indices t (N,)."""
    k = np.arange(1, pairs + 1)[None, :]
    angle = 2 * np.pi * t[:, None] * k / season  # (N, K)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def fit_arima(y: np.ndarray, season: int) -> tuple[Any, dict[str, Any]]:
    """The lowest-AIC (S)ARIMA(p, d, q) with (p, q) from :data:`ARIMA_ORDERS`, d from
    :func:`choose_d`, fitted to one channel y (N,) (a constant term when d = 0 and no seasonal part).
    A season m > :data:`MAX_SEASON` is modelled by K = :data:`FOURIER_PAIRS` Fourier regressors
    (:func:`fourier_terms`, dynamic harmonic regression with ARIMA errors) instead of a seasonal part.

    Returns:
        (statsmodels results, {"order", "seasonal_order", "fourier_pairs", "aic"}).
    """
    SARIMAX = _statsmodels()
    long_season = season > MAX_SEASON and len(y) >= 2 * season
    seasonal = (0, 1, 1, season) if 1 < season <= MAX_SEASON and len(y) >= 3 * season else (0, 0, 0, 0)
    exog = fourier_terms(np.arange(len(y)), season, FOURIER_PAIRS) if long_season else None
    d = choose_d(y, seasonal[3] or 1)
    trend = "c" if d == 0 and seasonal[1] == 0 else None
    best: tuple[Any, dict[str, Any]] | None = None
    for p, q in ARIMA_ORDERS:
        with warnings.catch_warnings():  # convergence chatter of the optimiser on short series
            warnings.simplefilter("ignore")
            try:
                model = SARIMAX(y, exog=exog, order=(p, d, q), seasonal_order=seasonal, trend=trend)
                res = model.fit(disp=False)
            except (ValueError, np.linalg.LinAlgError) as err:
                log.info("ARIMA(%d,%d,%d)%s failed: %s", p, d, q, seasonal, err)
                continue
        if np.isfinite(res.aic) and (best is None or res.aic < best[1]["aic"]):
            pairs = FOURIER_PAIRS if long_season else 0
            info = {
                "order": (p, d, q),
                "seasonal_order": seasonal,
                "fourier_pairs": pairs,
                "aic": float(res.aic),
            }
            best = res, info
    if best is None:
        raise ConfigError("no ARIMA model could be fitted to the training split")
    return best


def arima_forecasts(data: Any, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ARIMA forecasts (W, H, C) from sorted ``origins`` (≥ the end of training), fit on train only.

    ``data`` is a :class:`~seqlab.tasks.forecast.SeriesData`: ``values`` (N, C) and
    ``bounds["train"]``. BLAS runs on one thread: these fits are small, and on a busy 2-core
    machine extra BLAS threads only spin (five fits: 15 s instead of 0.2 s).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(1):
        return _arima_forecasts(data, origins, horizon, season)


def _arima_forecasts(data: Any, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    _, n_train = data.bounds["train"]
    if len(origins) and origins[0] < n_train:
        raise ConfigError("ARIMA origins must not lie inside the training split it is fitted on")
    N, C = data.values.shape
    out = np.empty((len(origins), horizon, C))
    for c in range(C):
        y = data.values[:, c]
        res, info = fit_arima(y[:n_train], season)
        log.info("ARIMA channel %d: %s", c, info)
        K = info["fourier_pairs"]
        X = fourier_terms(np.arange(N + horizon), season, K) if K else None  # (N + H, 2K)
        end = n_train
        for w, o in enumerate(origins):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if o > end:
                    res = res.extend(y[end:o], exog=None if X is None else X[end:o])
                    end = o
                out[w, :, c] = res.forecast(horizon, exog=None if X is None else X[o : o + horizon])
    return out
