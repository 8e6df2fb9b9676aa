"""Rebuild the labelled anomaly series in ``src/seqlab/data/builtin/`` (run by hand, once).

Runs in the project venv (numpy + seqlab; sktime is not installed, its wheel is only unzipped)::

    .venv/bin/pip download --no-deps sktime==1.2.0 -d /tmp/tsdl
    .venv/bin/python scripts/data/prepare_anomalies.py --sktime-wheel /tmp/tsdl/sktime-1.2.0-py3-none-any.whl

- ``mitdb.csv.xz``: sktime's ``datasets/data/mitdb/mitdb.csv`` (7,500 ECG points, real labels).
- ``taylor_anomalies.csv.xz``: the committed ``taylor.csv.xz`` with the seeded anomalies of
  ``seqlab.data.datasets.anomaly.TAYLOR_INJECTION`` (``build_taylor_anomalies``); needs no wheel.

Files are xz preset 9, written atomically, byte-for-byte reproducible; the script prints sizes,
SHA-256 and the anomalous points per split (the numbers on the data cards).
"""

from __future__ import annotations

import argparse
import csv
import io
import zipfile
from pathlib import Path

import numpy as np
from common import report, write_builtin

from seqlab.data.datasets.anomaly import build_taylor_anomalies, segments
from seqlab.data.datasets.series import Taylor, contiguous_split_sizes
from seqlab.data.series_csv import series_to_csv
from seqlab.data.types import TimeSeries

MITDB_MEMBER = "sktime/datasets/data/mitdb/mitdb.csv"


def write(name: str, text: str, what: str) -> None:
    print(report(write_builtin(name, text), text, what))


def mitdb(wheel: Path) -> TimeSeries:
    """The ECG excerpt and its labels, read from the sktime wheel without installing it."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(MITDB_MEMBER).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    values = np.array([float(r["data"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    return TimeSeries(values, ["ecg"], labels=labels)


def per_split(series: TimeSeries, sizes: dict[str, int]) -> str:
    counts, start = {}, 0
    for name, size in sizes.items():
        counts[name] = int(series.labels[start : start + size].sum())
        start += size
    return f"anomalous points per split {counts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sktime-wheel", type=Path, help="sktime-1.2.0-py3-none-any.whl (for mitdb)")
    args = parser.parse_args()
    if args.sktime_wheel:
        ecg = mitdb(args.sktime_wheel)
        write("mitdb.csv.xz", series_to_csv(ecg), per_split(ecg, contiguous_split_sizes(len(ecg))))
    taylor, kinds = build_taylor_anomalies()
    write(
        "taylor_anomalies.csv.xz", series_to_csv(taylor, kinds), per_split(taylor, dict(Taylor.card.splits))
    )
    for seg in segments(taylor.labels, kinds):
        print(f"  {seg['kind']:12s} [{seg['start']}, {seg['stop']}) {taylor.timestamps[seg['start']]}")


if __name__ == "__main__":
    main()
