"""Rebuild the prepared forecasting series in ``src/seqlab/data/builtin/`` (run by hand, once).

The data comes from the datasets bundled in statsmodels and pmdarima wheels (nothing is fetched
from the web). Those packages are needed only here, never by seqlab, so install them into a
scratch venv outside the project (``src`` goes on the path for ``seqlab.fileio`` and
``seqlab.errors`` only: the rest of seqlab needs torch, which the scratch venv lacks; the series
format, ``seqlab/data/series_csv.py``, is loaded by path, see ``common.load_series_csv``)::

    python3 -m venv /tmp/tsprep
    /tmp/tsprep/bin/pip install statsmodels==0.15.0 pmdarima==2.1.1
    PYTHONPATH=src /tmp/tsprep/bin/python scripts/data/prepare_series.py

Each file is written atomically; ``.csv.xz`` files are xz preset 9, byte-for-byte reproducible.
The script prints each file's size and SHA-256 (compare with ``builtin/SERIES_SOURCES.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from common import load_series_csv, report, write_builtin

series_csv = load_series_csv()  # seqlab's series format, loaded without torch


class Series(NamedTuple):
    """One prepared series: ``values`` (N, C), ``columns`` (C,), ``timestamps`` (N,) ISO strings."""

    values: np.ndarray
    columns: list[str]
    timestamps: list[str]
    labels: None = None  # forecasting series have no anomaly labels


def dates(start: str, n: int, freq: str) -> list[str]:
    """``n`` ISO timestamps from ``start`` at a pandas frequency (dates only unless intraday)."""
    import pandas as pd

    index = pd.date_range(start, periods=n, freq=freq)
    return list(index.strftime("%Y-%m-%dT%H:%M" if freq.endswith("min") else "%Y-%m-%d"))


def years(column) -> list[str]:
    return [f"{int(y):04d}-01-01" for y in column]


def statsmodels_series() -> dict[str, Series]:
    import statsmodels.api as sm

    sun = sm.datasets.sunspots.load_pandas().data
    co2 = sm.datasets.co2.load_pandas().data
    nile = sm.datasets.nile.load_pandas().data
    macro = sm.datasets.macrodata.load_pandas().data
    columns = [c for c in macro.columns if c not in ("year", "quarter")]
    quarters = [f"{int(y):04d}-{3 * int(q) - 2:02d}-01" for y, q in zip(macro["year"], macro["quarter"])]
    return {
        "sunspots.csv": Series(sun["SUNACTIVITY"].to_numpy(), ["sunactivity"], years(sun["YEAR"])),
        "co2.csv.xz": Series(co2["co2"].to_numpy(), ["co2"], list(co2.index.strftime("%Y-%m-%d"))),
        "nile.csv": Series(nile["volume"].to_numpy(), ["volume"], years(nile["year"])),
        "macrodata.csv.xz": Series(macro[columns].to_numpy(), columns, quarters),
    }


def pmdarima_series() -> dict[str, Series]:
    from pmdarima import datasets

    loaders: dict[str, tuple[Callable[[], np.ndarray], str, str, str]] = {
        "sunspots_monthly.csv.xz": (datasets.load_sunspots, "sunspots", "1749-01-01", "MS"),
        "airpassengers.csv": (datasets.load_airpassengers, "passengers", "1949-01-01", "MS"),
        "taylor.csv.xz": (datasets.load_taylor, "demand", "2000-06-05 00:00", "30min"),
    }
    out = {}
    for name, (load, column, start, freq) in loaders.items():
        values = np.asarray(load(), dtype=np.float64)
        out[name] = Series(values, [column], dates(start, len(values), freq))
    return out


def main() -> None:
    series = {**statsmodels_series(), **pmdarima_series()}
    for name, ts in series.items():
        text = series_csv.series_to_csv(ts)
        print(
            report(
                write_builtin(name, text),
                text,
                f"{len(ts.timestamps):,} rows, missing {int(np.isnan(ts.values).sum())}",
            )
        )


if __name__ == "__main__":
    main()
