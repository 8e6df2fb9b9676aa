"""Users' numeric time series: CSV / TSV files, missing values, contiguous splits.

Shape legend: N time points · C value columns (channels).

Cells and timestamps are read as in :mod:`seqlab.data.series_csv` (shared with the built-in
series): a missing value is an empty cell or one of :data:`MISSING_TOKENS` (``NA``, ``N/A``,
``NaN``, ``null``, ``None``, ``?``; case-insensitive), ``inf`` is an error, and timestamps must
strictly increase. What happens to missing values is a policy (:data:`POLICIES`):

- ``error`` (the reader's default): one error naming the file, line and column of the first;
- ``keep``: leave them NaN (the model or task must cope);
- ``interpolate``: linear in the index between the known neighbours; before the first / after
  the last known value, the nearest known value;
- ``ffill``: carry the last known value forward; leading missing values take the first known
  value (a back-fill, so nothing stays NaN);
- ``zero``: 0.0;
- ``drop``: drop the time points (rows) with any missing value; the series is then no longer
  regularly sampled, and ``notes['dropped']`` says how many went.

**Fill after splitting.** ``interpolate`` and ``ffill`` look at later values (the next known
value; a leading gap's back-fill), so filling a whole series and then splitting it lets training
values depend on validation values. The leak-free path reads with ``missing="keep"`` and lets
:func:`split_series` fill each split on its own::

    series = read_series_csv("co2.csv", timestamp="date", missing="keep")
    splits = split_series(series, [0.8, 0.1, 0.1], missing="interpolate")

Example::

    >>> s = TimeSeries(np.array([1.0, np.nan, 3.0]), ["y"])
    >>> fill_missing(s, "interpolate").values[:, 0].tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqlab.data.files import Column, column_index, load_table
from seqlab.data.series_csv import MISSING_TOKENS, POLICIES, check_increasing, parse_number
from seqlab.data.types import Fractions, TimeSeries, cut_points, split_names
from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from seqlab.data.files import _Table

__all__ = ["MISSING_TOKENS", "POLICIES", "fill_missing", "read_series_csv", "split_series"]


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
        timestamp: the column holding the time (kept as strings), or None for none. Timestamps
            must strictly increase (an error names the line and both timestamps); they compare
            as datetimes, numbers or strings as :mod:`seqlab.data.series_csv` describes.
        values: the value columns, in order; default: every column but the timestamp.
        missing: the missing-value policy, one of :data:`POLICIES` (see the module doc). A
            filling policy (``interpolate``, ``ffill``) here fills the **whole** series, using
            values that come later in time: before a train / validation split, read with
            ``keep`` and pass the policy to :func:`split_series` instead.
        header: whether the first row names the columns (else columns are 0-based indices and
            are named ``"0"``, ``"1"``...).
        format: ``csv`` or ``tsv``, overriding the suffix.
        freq: the sampling frequency to record (``MS``, ``D``, ``30min``...), if known.

    Returns:
        A :class:`TimeSeries` with ``values`` (N, C) float64; ``notes`` hold the source file and
        the count of missing values found.

    Example::

        >>> s = read_series_csv("co2.csv", timestamp="date", missing="keep")  # doctest: +SKIP
        >>> s.columns, s.values.shape  # doctest: +SKIP
        (['co2'], (2284, 1))
    """
    _check_policy(missing)
    table = load_table(path, format, header=header, quoting=None)
    if table.header is None and table.width is None:
        raise ConfigError(f"{table.path}: a time series is read from a CSV or TSV file, not JSON")
    time_index = None if timestamp is None else column_index(table, timestamp)
    indices = _value_indices(table, time_index, values)
    names = [_name(table, i) for i in indices]
    array = np.empty((len(table.records), len(indices)), dtype=np.float64)
    for row, (line, record) in enumerate(table.records):
        for col, (index, name) in enumerate(zip(indices, names)):
            array[row, col] = parse_number(record[index], f"{table.path}:{line}: column {name!r}", missing)
    stamps = None if time_index is None else _timestamps(table, time_index)
    notes = {"source": str(table.path), "missing": int(np.isnan(array).sum())}
    series = TimeSeries(array, names, stamps, freq, notes=notes)
    return series if missing in ("keep", "error") else fill_missing(series, missing)


def _name(table: _Table, index: int) -> str:
    return table.header[index] if table.header else str(index)


def _value_indices(table: _Table, time_index: int | None, values: Sequence[Column] | None) -> list[int]:
    """Field indices of the value columns: the ones named, else every column but the timestamp."""
    if values is None:
        indices = [i for i in range(table.width) if i != time_index]
        if not indices:
            raise ConfigError(f"{table.path}: the file has no value columns besides the timestamp")
        return indices
    indices = [column_index(table, v) for v in values]
    if time_index in indices:
        raise ConfigError(
            f"{table.path}: column {_name(table, time_index)!r} is both the timestamp and a value column"
        )
    return indices


def _timestamps(table: _Table, index: int) -> list[str]:
    """The timestamp column, stripped; each must be non-empty and later than the one before."""
    stamps = [record[index].strip() for _, record in table.records]
    lines = [line for line, _ in table.records]
    for line, stamp in zip(lines, stamps):
        if not stamp:
            raise ConfigError(f"{table.path}:{line}: column {_name(table, index)!r}: empty timestamp")
    check_increasing(stamps, lines, str(table.path), _name(table, index))
    return stamps


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


def split_series(
    series: TimeSeries, fractions: Fractions = (0.8, 0.1, 0.1), *, missing: str = "keep"
) -> dict[str, TimeSeries]:
    """Contiguous splits in time order (train first), each with its missing values filled on its own.

    A forecaster never trains on its future: the splits are cut first and ``missing`` (one of
    :data:`POLICIES`; default ``keep``, NaNs left as they are) is applied to each split
    separately, so no filled training value is computed from a validation or test value. Sizes
    come from :func:`~seqlab.data.types.cut_points` (every split gets at least one point).

    Example::

        >>> s = TimeSeries([1.0, 2.0, np.nan, np.nan, 90.0, 100.0], ["y"])
        >>> parts = split_series(s, [0.5, 0.5], missing="interpolate")
        >>> parts["train"].values[:, 0].tolist(), parts["validation"].values[:, 0].tolist()
        ([1.0, 2.0, 2.0], [90.0, 90.0, 100.0])
    """
    _check_policy(missing)
    names, values = split_names(fractions)
    bounds = cut_points(len(series), values)
    parts = {name: series.slice(a, b) for name, (a, b) in zip(names, pairwise(bounds))}
    if missing == "keep":
        return parts
    return {name: fill_missing(part, missing) for name, part in parts.items()}
