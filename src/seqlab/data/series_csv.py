"""The time-series CSV format: cells, timestamps and rows, read and written in one place.

Shape legend: N time points · C value columns (channels).

Both readers of numeric series use this module, so a cell means the same thing everywhere:
:func:`~seqlab.data.series_files.read_series_csv` (users' files) and :func:`parse_series_csv`
(the prepared files in ``seqlab/data/builtin/``); :func:`series_to_csv` writes the latter.

- **Numbers** (:func:`parse_number`): a finite float; a missing value is an empty cell or one of
  :data:`MISSING_TOKENS` (compared after stripping spaces, case-insensitively) and becomes NaN
  (or an error, under the ``error`` policy); ``inf`` and text are errors.
- **Timestamps** (:func:`check_increasing`) must strictly increase down the file. They are
  compared as datetimes when every one parses with :meth:`datetime.datetime.fromisoformat`
  (so ``2000-01-01`` and ``2000-01-01T06:00`` mix), else as numbers when every one is a number
  (``1999``, ``2000.5``), else as strings (which orders only timestamps of one fixed format).
- **The built-in format**: a header row, then one row per time step: ``timestamp`` (optional),
  one column per channel (an empty field is NaN), and for anomaly series ``label`` (0/1) and
  optionally ``anomaly`` (the kind of an injected anomaly, empty on normal points).

The module imports only the standard library, numpy and :mod:`seqlab.errors`: importing
``seqlab.data.series_csv`` runs ``seqlab/data/__init__.py`` (which needs torch), so a script in
a scratch venv without torch loads this file by path (``scripts/data/common.py: load_series_csv``).
:func:`parse_series_csv` imports :class:`~seqlab.data.types.TimeSeries` when called, for the same
reason.

Example::

    >>> parse_number(" NA ", "f.csv:3: column 'y'", "keep")
    nan
    >>> format_number(316.1), format_number(2.0), format_number(float("nan"))
    ('316.1', '2', '')
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from seqlab.errors import ConfigError

if TYPE_CHECKING:
    from seqlab.data.types import TimeSeries

__all__ = [
    "MISSING_TOKENS",
    "POLICIES",
    "check_increasing",
    "format_number",
    "parse_number",
    "parse_series_csv",
    "series_to_csv",
]

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
POLICIES = ("error", "interpolate", "ffill", "drop", "zero", "keep")  # see seqlab.data.series_files
SPECIAL = ("timestamp", "label", "anomaly")  # the built-in format's columns that are not channels


def parse_number(cell: str, where: str, policy: str = "keep") -> float:
    """One cell as a float: NaN for a missing value, else a finite number or an error at ``where``.

    Under the ``error`` policy a missing value is an error too (naming the policies to choose).
    """
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        if policy == "error":
            raise ConfigError(
                f"{where}: missing value {cell!r}; choose a missing-value policy ({', '.join(POLICIES[1:])})"
            )
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{where}: not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: not a finite number: {cell!r}")
    return value


def format_number(value: float) -> str:
    """The shortest text that reads back to the same float64; NaN is an empty field."""
    if math.isnan(value):
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))


def _order_keys(stamps: Sequence[str]) -> tuple[str, list[Any]]:
    """How the timestamps compare (``datetimes``, ``numbers`` or ``strings``) and their sort keys."""
    try:
        keys = [datetime.fromisoformat(s) for s in stamps]
        if len({k.utcoffset() is None for k in keys}) <= 1:  # naive and aware datetimes do not compare
            return "datetimes", keys
    except ValueError:
        pass
    try:
        keys = [float(s) for s in stamps]
        if all(map(math.isfinite, keys)):
            return "numbers", keys
    except ValueError:
        pass
    return "strings", list(stamps)


def check_increasing(stamps: Sequence[str], lines: Sequence[int], path: str, column: str) -> None:
    """Raise a :class:`ConfigError` at the first timestamp that does not come after the one before.

    ``lines`` holds each timestamp's line in ``path``; the error names the file, the line, the
    column and both timestamps (and how they were compared: see the module doc).

    Example::

        >>> check_increasing(["2000-01-01", "2000-01-01T06:00", "2000-01-02"], [2, 3, 4], "f.csv", "t")
        >>> check_increasing(["9", "10", "10"], [2, 3, 4], "f.csv", "t")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        seqlab.errors.ConfigError: f.csv:4: column 't': timestamp '10' does not come after '10' on line 3 ...
    """
    kind, keys = _order_keys(stamps)
    for i in range(1, len(keys)):
        if not keys[i - 1] < keys[i]:
            raise ConfigError(
                f"{path}:{lines[i]}: column {column!r}: timestamp {stamps[i]!r} does not come after "
                f"{stamps[i - 1]!r} on line {lines[i - 1]} (compared as {kind}); "
                "timestamps must strictly increase"
            )


def _label(raw: str, where: str) -> int:
    if raw not in ("0", "1"):
        raise ConfigError(f"{where}: column 'label': expected 0 or 1, got {raw!r}")
    return int(raw)


def _parse_header(rows: list[list[str]], path: str) -> list[str]:
    if not rows or not rows[0]:
        raise ConfigError(f"{path}: empty file (expected a header row and data rows)")
    header = rows[0]
    if len(set(header)) != len(header):
        raise ConfigError(f"{path}:1: repeated column name in header {header}")
    if not [c for c in header if c not in SPECIAL]:
        raise ConfigError(f"{path}:1: no value column in header {header}")
    if len(rows) < 2:
        raise ConfigError(f"{path}: a header but no data rows")
    return header


def parse_series_csv(
    text: str, path: str = "<text>", freq: str | None = None
) -> tuple[TimeSeries, list[str]]:
    """Parse the built-in series format (see the module doc) into a :class:`TimeSeries`.

    Args:
        text: the file's text.
        path: the file name used in error messages.
        freq: the series' frequency (pandas-style name), stored on the result.

    Returns:
        ``(series, kinds)``: kinds is the ``anomaly`` column (``""`` on normal points), or ``[]``.

    Raises:
        ConfigError: naming the file, line and column of the first problem: an empty file, a row
            with the wrong number of fields, a cell that is not a number, a label other than 0/1,
            timestamps that do not strictly increase.
    """
    from seqlab.data.types import TimeSeries  # here, not at the top: see the module doc

    rows = list(csv.reader(text.splitlines()))
    header = _parse_header(rows, path)
    channels = [c for c in header if c not in SPECIAL]
    index = {name: i for i, name in enumerate(header)}
    values = np.empty((len(rows) - 1, len(channels)))
    stamps, labels, kinds = [], [], []
    for n, row in enumerate(rows[1:]):
        where = f"{path}:{n + 2}"
        if len(row) != len(header):
            raise ConfigError(f"{where}: expected {len(header)} fields {header}, got {len(row)}")
        values[n] = [parse_number(row[index[c]], f"{where}: column {c!r}") for c in channels]
        if "timestamp" in index:
            stamps.append(row[index["timestamp"]])
        if "label" in index:
            labels.append(_label(row[index["label"]], where))
        if "anomaly" in index:
            kinds.append(row[index["anomaly"]])
    if stamps:
        check_increasing(stamps, range(2, len(stamps) + 2), path, "timestamp")
    labels_array = np.array(labels) if "label" in index else None
    return TimeSeries(values, channels, stamps or None, freq, labels_array), kinds


def series_to_csv(series: Any, kinds: Sequence[str] | None = None) -> str:
    """The built-in format's text of ``series`` (the inverse of :func:`parse_series_csv`).

    ``series`` is a :class:`TimeSeries`, or any object with its ``values`` (N, C), ``columns``,
    ``timestamps`` (or None) and ``labels`` (or None). Numbers are written by
    :func:`format_number` (NaN -> empty field).

    Example::

        >>> from types import SimpleNamespace
        >>> s = SimpleNamespace(values=np.array([[1.0], [np.nan]]), columns=["y"],
        ...                     timestamps=["2000-01-01", "2000-02-01"], labels=None)
        >>> print(series_to_csv(s))
        timestamp,y
        2000-01-01,1
        2000-02-01,
        <BLANKLINE>
    """
    values = np.asarray(series.values, dtype=np.float64).reshape(len(series.values), -1)
    stamps, labels = series.timestamps, series.labels
    header = (["timestamp"] if stamps is not None else []) + list(series.columns)
    header += (["label"] if labels is not None else []) + (["anomaly"] if kinds else [])
    lines = [",".join(header)]
    for i, row_values in enumerate(values.tolist()):
        row = [stamps[i]] if stamps is not None else []
        row += [format_number(v) for v in row_values]
        row += [str(int(labels[i]))] if labels is not None else []
        row += [kinds[i]] if kinds else []
        lines.append(",".join(row))
    return "\n".join(lines) + "\n"
