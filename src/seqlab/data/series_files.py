"""Users' numeric time series: CSV / TSV files, missing values, contiguous splits.

Shape legend: N time points · C value columns (channels).

A missing value is an empty cell or one of :data:`MISSING_TOKENS` (compared after stripping
spaces, case-insensitively): ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, ``?``. What happens to
missing values is a policy (:data:`POLICIES`):

- ``error`` (the reader's default): one error naming the file, line and column of the first;
- ``keep``: leave them NaN (the model or task must cope);
- ``interpolate``: linear in the index between the known neighbours; before the first / after
  the last known value, the nearest known value;
- ``ffill``: carry the last known value forward; leading missing values take the first known
  value (a back-fill, so nothing stays NaN);
- ``zero``: 0.0;
- ``drop``: drop the time points (rows) with any missing value; the series is then no longer
  regularly sampled, and ``notes['dropped']`` says how many went.

Example::

    >>> s = TimeSeries(np.array([1.0, np.nan, 3.0]), ["y"])
    >>> fill_missing(s, "interpolate").values[:, 0].tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqlab.data.files import Column, Fractions, column_index, cut_points, load_table, split_names
from seqlab.data.types import TimeSeries
from seqlab.errors import ConfigError

__all__ = ["MISSING_TOKENS", "POLICIES", "fill_missing", "read_series_csv", "split_series"]

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
POLICIES = ("error", "interpolate", "ffill", "drop", "zero", "keep")


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"missing: expected one of {list(POLICIES)}, got {policy!r}")


def read_series_csv(
    path: str | Path,
    *,
    timestamp: Column | None = None,
    values: Sequence[Column] | None = None,
    missing: str = "error",
    header: bool = True,
    format: str | None = None,
    freq: str | None = None,
) -> TimeSeries:
    """Read a numeric CSV / TSV time series: one row per time point, one column per channel.

    Args:
        path: the file (``.csv`` or ``.tsv``, or say which with ``format``).
        timestamp: the column holding the time (kept as strings), or None for none.
        values: the value columns, in order; default: every column but the timestamp.
        missing: the missing-value policy, one of :data:`POLICIES` (see the module doc).
        header: whether the first row names the columns (else columns are 0-based indices and
            are named ``"0"``, ``"1"``...).
        format: ``csv`` or ``tsv``, overriding the suffix.
        freq: the sampling frequency to record (``MS``, ``D``, ``30min``...), if known.

    Returns:
        A :class:`TimeSeries` with ``values`` (N, C) float64; ``notes`` hold the source file and
        the count of missing values found.

    Example::

        >>> s = read_series_csv("co2.csv", timestamp="date", missing="interpolate")  # doctest: +SKIP
        >>> s.columns, s.values.shape  # doctest: +SKIP
        (['co2'], (2284, 1))
    """
    _check_policy(missing)
    table = load_table(path, format, header=header, quoting=None)
    if table.header is None and table.width is None:
        raise ConfigError(f"{table.path}: a time series is read from a CSV or TSV file, not JSON")
    time_index = None if timestamp is None else column_index(table, timestamp)
    if values is None:
        indices = [i for i in range(table.width) if i != time_index]
        if not indices:
            raise ConfigError(f"{table.path}: the file has no value columns besides the timestamp")
    else:
        indices = [column_index(table, v) for v in values]
        if time_index in indices:
            raise ConfigError(f"{table.path}: column {timestamp!r} is both the timestamp and a value column")
    names = [table.header[i] if table.header else str(i) for i in indices]
    array = np.empty((len(table.records), len(indices)), dtype=np.float64)
    for row, (line, record) in enumerate(table.records):
        for col, (index, name) in enumerate(zip(indices, names)):
            array[row, col] = _number(record[index], f"{table.path}:{line}: column {name!r}", missing)
    stamps = None
    if time_index is not None:
        stamps = [record[time_index].strip() for _, record in table.records]
        for (line, _), stamp in zip(table.records, stamps):
            if not stamp:
                name = table.header[time_index] if table.header else str(time_index)
                raise ConfigError(f"{table.path}:{line}: column {name!r}: empty timestamp")
    notes = {"source": str(table.path), "missing": int(np.isnan(array).sum())}
    series = TimeSeries(array, names, stamps, freq, notes=notes)
    return series if missing in ("keep", "error") else fill_missing(series, missing)


def _number(cell: str, where: str, policy: str) -> float:
    """One cell as a float: NaN for a missing token, else a finite number or an error at ``where``."""
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        if policy == "error":
            raise ConfigError(
                f"{where}: missing value {cell!r}; choose a missing-value policy ({', '.join(POLICIES[1:])})"
            )
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: not a number: {cell!r}") from None
    if not np.isfinite(value):
        raise ConfigError(f"{where}: not a finite number: {cell!r}")
    return value


def fill_missing(series: TimeSeries, policy: str) -> TimeSeries:
    """A copy of ``series`` with its NaNs handled by ``policy`` (one of :data:`POLICIES`).

    ``error`` raises if any value is missing (naming the first: point index, column, timestamp);
    ``keep`` returns an unchanged copy. ``interpolate`` and ``ffill`` need at least one known
    value per column.

    Example::

        >>> s = TimeSeries(np.array([np.nan, 2.0, np.nan, np.nan, 5.0, np.nan]), ["y"])
        >>> fill_missing(s, "ffill").values[:, 0].tolist()
        [2.0, 2.0, 2.0, 2.0, 5.0, 5.0]
    """
    _check_policy(policy)
    values, nan = series.values.copy(), np.isnan(series.values)
    keep = np.arange(len(values))
    if policy == "error" and nan.any():
        row, col = map(int, np.argwhere(nan)[0])
        when = f" ({series.timestamps[row]})" if series.timestamps is not None else ""
        raise ConfigError(f"column {series.columns[col]!r}: value {row}{when} is missing")
    if policy == "zero":
        values[nan] = 0.0
    elif policy == "drop":
        keep = np.flatnonzero(~nan.any(axis=1))
        values = values[keep]
    elif policy in ("interpolate", "ffill"):
        for col in range(values.shape[1]):
            values[:, col] = _fill_column(values[:, col], policy, series.columns[col])
    notes = {**series.notes, "missing_policy": policy, "filled": int(nan.sum()) if policy != "keep" else 0}
    if policy == "drop":
        notes["dropped"] = len(series) - len(keep)
    return TimeSeries(
        values,
        list(series.columns),
        None if series.timestamps is None else [series.timestamps[i] for i in keep],
        series.freq,
        None if series.labels is None else series.labels[keep],
        notes,
    )


def _fill_column(column: np.ndarray, policy: str, name: str) -> np.ndarray:
    """Interpolate or forward-fill one (N,) column; the edges take the nearest known value."""
    known = np.flatnonzero(~np.isnan(column))
    if len(known) == len(column):
        return column
    if not len(known):
        raise ConfigError(f"column {name!r}: every value is missing; nothing to {policy} from")
    index = np.arange(len(column))
    if policy == "interpolate":  # np.interp holds the end values constant beyond the known range
        return np.interp(index, known, column[known])
    last = np.maximum.accumulate(np.where(np.isnan(column), 0, index))  # last known position so far
    last[: known[0]] = known[0]  # leading gap: back-fill from the first known value
    return column[last]


def split_series(series: TimeSeries, fractions: Fractions = (0.8, 0.1, 0.1)) -> dict[str, TimeSeries]:
    """Contiguous splits in time order (train first): a forecaster never trains on its future.

    Example::

        >>> s = TimeSeries(np.arange(10.0), ["y"])
        >>> {k: len(v) for k, v in split_series(s, [0.7, 0.3]).items()}
        {'train': 7, 'validation': 3}
    """
    names, values = split_names(fractions)
    bounds = cut_points(len(series), values)
    return {name: series.slice(a, b) for name, a, b in zip(names, bounds, bounds[1:])}
