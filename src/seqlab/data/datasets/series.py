"""Registered real time series for forecasting: sunspots, CO₂, air passengers, Nile, electricity, macro.

Each series was taken once from a package's bundled data (statsmodels, pmdarima) by
``scripts/data/prepare_series.py`` and committed as a small CSV (``.csv.xz`` when large) in
``seqlab/data/builtin/``; provenance and licences are in ``builtin/SERIES_SOURCES.md``. Loading
needs only the standard library and numpy::

    >>> from seqlab.data.datasets import load_dataset
    >>> splits = load_dataset("sunspots")
    >>> splits["train"].timestamps[:2], splits["train"].values[:2, 0].tolist()
    (['1700-01-01', '1701-01-01'], [5.0, 11.0])

Splits are **contiguous time slices** in the order train → validation → test, never shuffled:
the model is always evaluated on the future of what it was trained on. The default rule
(:func:`contiguous_split_sizes`) gives train ``floor(0.70·N)`` points, validation
``floor(0.15·N)`` and test the rest; a dataset with a strong weekly cycle cuts on week
boundaries instead (its card says so).

File format: :mod:`seqlab.data.series_csv` (``parse_series_csv`` and ``series_to_csv``, re-exported
here), shared with users' series files: a header row, then one row per time step: ``timestamp``
(ISO 8601, optional, strictly increasing), one column per channel (an empty field is a missing
value, NaN), and for anomaly series ``label`` (0/1) and optionally ``anomaly`` (the kind of an
injected anomaly, empty on normal points).
"""

from __future__ import annotations

import math
from typing import ClassVar

from seqlab.data.datasets import base
from seqlab.data.datasets.base import DATASETS, DataCard, Dataset, read_builtin
from seqlab.data.series_csv import parse_series_csv, series_to_csv
from seqlab.data.types import SPLIT_NAMES, TimeSeries
from seqlab.errors import ConfigError

__all__ = [
    "SPLIT_NAMES",
    "BuiltinSeries",
    "contiguous_split",
    "contiguous_split_sizes",
    "parse_series_csv",
    "series_to_csv",
]


def contiguous_split_sizes(n: int, fractions: tuple[float, float] = (0.70, 0.15)) -> dict[str, int]:
    """Sizes of the train / validation / test slices of an ``n``-point series.

    Train gets ``floor(fractions[0]·n)`` points, validation ``floor(fractions[1]·n)``, test the rest.

    Example::

        >>> contiguous_split_sizes(309)
        {'train': 216, 'validation': 46, 'test': 47}
    """
    train, validation = math.floor(fractions[0] * n), math.floor(fractions[1] * n)
    if min(train, validation, n - train - validation) < 1:
        raise ConfigError(f"cannot cut {n} points into train/validation/test with fractions {fractions}")
    return {"train": train, "validation": validation, "test": n - train - validation}


def contiguous_split(series: TimeSeries, sizes: dict[str, int]) -> dict[str, TimeSeries]:
    """Cut ``series`` into consecutive slices of the given sizes (in the dict's order).

    The sizes must add up to ``len(series)``: every point lands in exactly one split.
    """
    if sum(sizes.values()) != len(series):
        raise ConfigError(f"split sizes {sizes} add up to {sum(sizes.values())}, not {len(series)} points")
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = series.slice(start, start + size)
        start += size
    return out


class BuiltinSeries(Dataset):
    """A series read from a prepared CSV in ``builtin/`` and cut into the card's contiguous splits.

    Subclasses set ``card``, ``filename``, ``columns`` (the value columns, in order) and ``freq``.
    """

    filename: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]
    freq: ClassVar[str | None]
    script: ClassVar[str] = "series"  # errors name scripts/data/prepare_<script>.py, which rebuilds the file

    def read(self) -> tuple[TimeSeries, list[str]]:
        """The whole series (and its anomaly kinds), checked against the card."""
        script = f"scripts/data/prepare_{self.script}.py"
        text = read_builtin(self.filename, self.card.name, script)
        series, kinds = parse_series_csv(text, str(base.BUILTIN_DIR / self.filename), self.freq)
        rebuild = f"rebuild it with {script}"
        if tuple(series.columns) != self.columns:
            raise ConfigError(
                f"{self.filename}: value columns {series.columns}, expected {list(self.columns)}; {rebuild}"
            )
        expected = sum(self.card.splits.values())
        if len(series) != expected:
            raise ConfigError(
                f"{self.filename}: {len(series)} points, but the {self.card.name!r} card says {expected}; "
                f"{rebuild}"
            )
        series.notes["dataset"] = self.card.name
        return series, kinds

    def load(self) -> dict[str, TimeSeries]:
        """``{"train", "validation", "test"}`` as contiguous slices of the sizes on the card."""
        series, _ = self.read()
        return contiguous_split(series, dict(self.card.splits))


def _card(name: str, n: int, **fields) -> DataCard:
    """A series card with the default 70/15/15 contiguous split of ``n`` points."""
    rule = "contiguous time slices in order: train floor(0.70·N), validation floor(0.15·N), test the rest"
    notes = (f"Splits: {rule}.", *fields.pop("notes", ()))
    return DataCard(
        name=name, kind="series", splits=contiguous_split_sizes(n), unit="points", notes=notes, **fields
    )


def _no_data_licence(what: str, taken_from: str) -> str:
    """The licence line of a pmdarima series: no licence covers the numbers themselves."""
    return (
        f"no licence is stated upstream for the numbers themselves: published measurements ({what}), "
        f"redistributed in the MIT-licensed pmdarima (MIT covers pmdarima, not these numbers), which took "
        f"them from {taken_from}"
    )


_PREP = "scripts/data/prepare_series.py (run once with statsmodels/pmdarima in a scratch venv)"
_STATSMODELS_PD = "public domain (statsmodels' dataset module: COPYRIGHT"


@DATASETS.register("sunspots")
class Sunspots(BuiltinSeries):
    filename, columns, freq = "sunspots.csv", ("sunactivity",), "YS"
    card = _card(
        "sunspots",
        309,
        summary="Yearly mean sunspot numbers 1700-2008 (309 points), the classic AR modelling series.",
        source="statsmodels 0.15.0, sm.datasets.sunspots.load_pandas().data (NOAA NGDC)",
        licence=f'{_STATSMODELS_PD} "This data is public domain.")',
        preparation=f"YEAR -> ISO date YYYY-01-01, SUNACTIVITY -> sunactivity; {_PREP}.",
        notes=("Roughly 11-year solar cycle; values 0.0-190.2.",),
    )


@DATASETS.register("sunspots-monthly")
class SunspotsMonthly(BuiltinSeries):
    filename, columns, freq = "sunspots_monthly.csv.xz", ("sunspots",), "MS"
    card = _card(
        "sunspots-monthly",
        2820,
        summary="Monthly mean relative sunspot numbers Jan 1749 - Dec 1983 (2,820 points).",
        source="pmdarima 2.1.1, pmdarima.datasets.load_sunspots() (R datasets::sunspots; Zurich, then Tokyo)",
        licence=_no_data_licence(
            "the Zurich and Tokyo observatories' counts",
            "R's datasets::sunspots (R: GPL-2 | GPL-3)",
        ),
        preparation=f"Timestamps made from the documented start (Jan 1749), monthly; {_PREP}.",
        citation="Andrews, D. F. and Herzberg, A. M. (1985) Data: A Collection of Problems. Springer.",
    )


@DATASETS.register("co2")
class CO2(BuiltinSeries):
    filename, columns, freq = "co2.csv.xz", ("co2",), "W-SAT"
    card = _card(
        "co2",
        2284,
        summary="Weekly atmospheric CO2 at Mauna Loa (ppm), 29 Mar 1958 - 29 Dec 2001 (2,284 weeks).",
        source="statsmodels 0.15.0, sm.datasets.co2.load_pandas().data (Scripps flask samples via CDIAC)",
        licence=f'{_STATSMODELS_PD} "This is public domain.")',
        preparation=f"Index (Saturdays) -> ISO dates; missing weeks kept as empty fields; {_PREP}.",
        citation="Keeling, C. D. and Whorf, T. P., Scripps Institution of Oceanography (SIO).",
        notes=(
            "59 weeks are missing and stay NaN in the file and in the loaded series "
            "(all in the training split, May 1958 - Aug 1985; the longest gap is 18 weeks in 1964): "
            "choose a missing-value policy before training.",
            "Trend plus a yearly cycle of about 52 weeks.",
        ),
    )


@DATASETS.register("airpassengers")
class AirPassengers(BuiltinSeries):
    filename, columns, freq = "airpassengers.csv", ("passengers",), "MS"
    card = _card(
        "airpassengers",
        144,
        summary="Monthly international airline passengers (thousands), Jan 1949 - Dec 1960 (144 points).",
        source="pmdarima 2.1.1, pmdarima.datasets.load_airpassengers() (Box & Jenkins Series G)",
        licence=_no_data_licence(
            "the table of Box & Jenkins 1976", "R's datasets::AirPassengers (R: GPL-2 | GPL-3)"
        ),
        preparation=f"Timestamps made from the documented start (Jan 1949), monthly; {_PREP}.",
        citation="Box, G. E. P., Jenkins, G. M. and Reinsel, G. C. (1976) Time Series Analysis. Holden-Day.",
        notes=("Multiplicative seasonality: model log(passengers) or use a scale-free metric (MASE).",),
    )


@DATASETS.register("nile")
class Nile(BuiltinSeries):
    filename, columns, freq = "nile.csv", ("volume",), "YS"
    card = _card(
        "nile",
        100,
        summary="Yearly flow of the Nile at Aswan 1871-1970 (10^8 m^3), with a change point near 1898.",
        source="statsmodels 0.15.0, sm.datasets.nile.load_pandas().data",
        licence=f'{_STATSMODELS_PD} "This is public domain.")',
        preparation=f"year -> ISO date YYYY-01-01; {_PREP}.",
        citation="Cobb, G. W. (1978) The problem of the Nile. Biometrika 65(2), 243-251.",
    )


@DATASETS.register("taylor")
class Taylor(BuiltinSeries):
    filename, columns, freq = "taylor.csv.xz", ("demand",), "30min"
    card = DataCard(
        name="taylor",
        kind="series",
        summary="Half-hourly electricity demand (MW), England and Wales, 5 Jun - 27 Aug 2000 (12 weeks).",
        source="pmdarima 2.1.1, pmdarima.datasets.load_taylor() (R forecast::taylor, from J. W. Taylor)",
        licence=_no_data_licence(
            "half-hourly demand 'kindly provided by James W Taylor'", "R's forecast::taylor (forecast: GPL-3)"
        ),
        preparation=(
            f"Timestamps made from the documented start (Monday 2000-06-05 00:00), every 30 minutes; {_PREP}."
        ),
        splits={"train": 2688, "validation": 672, "test": 672},
        unit="points",
        citation=(
            "Taylor, J. W. (2003) Short-term electricity demand forecasting using double seasonal "
            "exponential smoothing. J. Operational Research Society 54, 799-805."
        ),
        notes=(
            "Splits: contiguous whole weeks in order: train weeks 1-8, validation weeks 9-10, test 11-12.",
            "Two seasonal periods: daily (48 points) and weekly (336 points).",
        ),
    )


_MACRO = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop")


@DATASETS.register("macrodata")
class MacroData(BuiltinSeries):
    filename, columns, freq = "macrodata.csv.xz", (*_MACRO, "infl", "realint"), "QS"
    card = _card(
        "macrodata",
        203,
        summary="US macroeconomic quarterly series 1959Q1-2009Q3: 12 channels (GDP, consumption, CPI...).",
        source="statsmodels 0.15.0, sm.datasets.macrodata.load_pandas().data (FRED, BLS)",
        licence=f'{_STATSMODELS_PD} "This is public domain.")',
        preparation=f"year, quarter -> ISO date of the quarter's first day; 12 value columns kept; {_PREP}.",
        notes=(
            "Multivariate: channels differ in scale by 10^5 (realgdp vs tbilrate): normalise per channel.",
            "infl and realint are 0.0 in 1959Q1 (first differences).",
        ),
    )
