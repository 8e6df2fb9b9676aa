"""Forecasting baselines on rolling origins: seasonal naive and (S)ARIMA via statsmodels.

Shape legend: N points · C channels · W forecast origins · H horizon.

Both produce forecasts (W, H, C) in original units from the same origins as the task
(:class:`~seqlab.tasks.forecast.ForecastTask`), using only the points before each origin.

- **Seasonal naive** (:func:`seqlab.metrics.forecasting.seasonal_naive`):
  F_{o+h} = y_{o+h−m·⌈(h+1)/m⌉} for h = 0..H−1 — the last observed season repeated.
- **ARIMA** (Box & Jenkins; statsmodels ``SARIMAX``): per channel, a tiny AIC search over
  (p, d, q) ∈ {(1,1,0), (0,1,1), (1,1,1), (2,1,0)} — with a seasonal (0, 1, 1)_m part when
  1 < m ≤ 52 and the training split holds at least 3·m points — fitted **once** on the training
  split. Rolling origins are then forecast **without refitting**: the fitted parameters filter
  the observed data up to each origin (``results.extend`` chains the Kalman filter forward
  from the previous origin, so each origin costs only the new points) and forecast H steps.
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

__all__ = ["ARIMA_ORDERS", "arima_forecasts", "fit_arima", "seasonal_naive_forecasts"]

log = logging.getLogger(__name__)

ARIMA_ORDERS = ((1, 1, 0), (0, 1, 1), (1, 1, 1), (2, 1, 0))
MAX_SEASON = 52  # seasonal state of statsmodels' SARIMAX grows with m; larger seasons are skipped


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


def fit_arima(y: np.ndarray, season: int) -> tuple[Any, dict[str, Any]]:
    """The lowest-AIC (S)ARIMA of :data:`ARIMA_ORDERS` fitted to one channel y (N,).

    Returns:
        (statsmodels results, {"order", "seasonal_order", "aic"}).
    """
    SARIMAX = _statsmodels()
    seasonal = (0, 1, 1, season) if 1 < season <= MAX_SEASON and len(y) >= 3 * season else (0, 0, 0, 0)
    best: tuple[Any, dict[str, Any]] | None = None
    for order in ARIMA_ORDERS:
        with warnings.catch_warnings():  # convergence chatter of the optimiser on short series
            warnings.simplefilter("ignore")
            model = SARIMAX(y, order=order, seasonal_order=seasonal)
            try:
                res = model.fit(disp=False)
            except (ValueError, np.linalg.LinAlgError) as err:
                log.info("ARIMA%s%s failed: %s", order, seasonal, err)
                continue
        if np.isfinite(res.aic) and (best is None or res.aic < best[1]["aic"]):
            best = res, {"order": order, "seasonal_order": seasonal, "aic": float(res.aic)}
    if best is None:
        raise ConfigError("no ARIMA model could be fitted to the training split")
    return best


def arima_forecasts(data: Any, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ARIMA forecasts (W, H, C) from sorted ``origins`` (≥ the end of training), fit on train only.

    ``data`` is a :class:`~seqlab.tasks.forecast.SeriesData`: ``values`` (N, C) and
    ``bounds["train"]``.
    """
    _, n_train = data.bounds["train"]
    if len(origins) and origins[0] < n_train:
        raise ConfigError("ARIMA origins must not lie inside the training split it is fitted on")
    out = np.empty((len(origins), horizon, data.values.shape[1]))
    for c in range(data.values.shape[1]):
        y = data.values[:, c]
        res, info = fit_arima(y[:n_train], season)
        log.info("ARIMA channel %d: %s", c, info)
        end = n_train
        for w, o in enumerate(origins):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if o > end:
                    res = res.extend(y[end:o])
                    end = o
                out[w, :, c] = res.forecast(horizon)
    return out
