"""Registered time series and labelled anomaly series: offline loading checked against the cards."""

from __future__ import annotations

import itertools
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import seqlab.data.datasets.anomaly as anomaly
import seqlab.data.datasets.base as base
import seqlab.data.datasets.series as series
import seqlab.data.series_csv as series_csv
from seqlab.data.datasets.base import BUILTIN_DIR, DATASETS, load_dataset, read_builtin
from seqlab.data.types import TimeSeries
from seqlab.errors import ConfigError

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "data"
SERIES = ["sunspots", "sunspots-monthly", "co2", "airpassengers", "nile", "taylor", "macrodata"]
ANOMALY = ["mitdb", "taylor-anomalies"]
ALL = SERIES + ANOMALY


def full(name: str) -> TimeSeries:
    return DATASETS.get(name)().read()[0]


@pytest.mark.parametrize("name", ALL)
def test_card_is_complete_and_splits_match_it(name):
    cls = DATASETS.get(name)
    card = cls.card
    assert card.name == name and card.kind == ("anomaly" if name in ANOMALY else "series")
    for text in (card.summary, card.source, card.licence, card.preparation):
        assert len(text) > 20
    assert any(note.startswith("Splits:") for note in card.notes)
    assert list(card.splits) == list(series.SPLIT_NAMES) and card.unit == "points"
    splits = load_dataset(name)
    assert {k: len(v) for k, v in splits.items()} == card.splits
    assert all(isinstance(v, TimeSeries) and v.columns == list(cls.columns) for v in splits.values())
    assert f"# {name}" in card.to_markdown() and cls().examples(2)


@pytest.mark.parametrize("name", ALL)
def test_splits_are_contiguous_cover_the_series_and_reload_identically(name):
    whole, first, second = full(name), load_dataset(name), load_dataset(name)
    parts = list(first.values())
    np.testing.assert_array_equal(np.concatenate([p.values for p in parts]), whole.values)  # NaN == NaN here
    if whole.timestamps is not None:
        assert [t for p in parts for t in p.timestamps] == whole.timestamps
        assert (
            parts[0].timestamps[-1]
            < parts[1].timestamps[0]
            < parts[1].timestamps[-1]
            < parts[2].timestamps[0]
        )
    for split in first:
        np.testing.assert_array_equal(first[split].values, second[split].values)
        assert first[split].timestamps == second[split].timestamps and first[split].freq == whole.freq
        if whole.labels is not None:
            np.testing.assert_array_equal(first[split].labels, second[split].labels)


KNOWN = [  # (dataset, index, timestamp, column, value) read off the source packages
    ("sunspots", 0, "1700-01-01", "sunactivity", 5.0),
    ("sunspots", 1, "1701-01-01", "sunactivity", 11.0),
    ("sunspots", -1, "2008-01-01", "sunactivity", 2.9),
    ("sunspots-monthly", 0, "1749-01-01", "sunspots", 58.0),
    ("sunspots-monthly", 1, "1749-02-01", "sunspots", 62.6),
    ("sunspots-monthly", -1, "1983-12-01", "sunspots", 33.4),
    ("co2", 0, "1958-03-29", "co2", 316.1),
    ("co2", 1, "1958-04-05", "co2", 317.3),
    ("airpassengers", 0, "1949-01-01", "passengers", 112.0),
    ("airpassengers", -1, "1960-12-01", "passengers", 432.0),
    ("nile", 0, "1871-01-01", "volume", 1120.0),
    ("nile", -1, "1970-01-01", "volume", 740.0),
    ("taylor", 0, "2000-06-05T00:00", "demand", 22262.0),
    ("taylor", 9, "2000-06-05T04:30", "demand", 21336.0),
    ("taylor", -1, "2000-08-27T23:30", "demand", 23132.0),
    ("macrodata", 0, "1959-01-01", "realgdp", 2710.349),
    ("macrodata", -1, "2009-07-01", "realgdp", 12990.341),
    ("macrodata", -1, "2009-07-01", "realint", -3.44),
]


@pytest.mark.parametrize(("name", "i", "stamp", "column", "value"), KNOWN)
def test_known_values(name, i, stamp, column, value):
    ts = full(name)
    assert ts.timestamps[i] == stamp
    assert ts.values[i, ts.columns.index(column)] == value


def test_co2_keeps_its_59_missing_weeks_as_nan():
    splits = load_dataset("co2")
    assert full("co2").stats()["missing"] == 59
    assert {k: v.stats()["missing"] for k, v in splits.items()} == {"train": 59, "validation": 0, "test": 0}
    assert any("59 weeks are missing" in note for note in DATASETS.get("co2").card.notes)


def test_frequencies_and_timestamp_steps():
    assert {n: DATASETS.get(n).freq for n in SERIES} == {
        "sunspots": "YS", "sunspots-monthly": "MS", "co2": "W-SAT", "airpassengers": "MS",
        "nile": "YS", "taylor": "30min", "macrodata": "QS",
    }  # fmt: skip
    from datetime import datetime

    stamps = [datetime.fromisoformat(t) for t in full("taylor").timestamps]
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(stamps)} == {1800.0}
    co2 = [datetime.fromisoformat(t) for t in full("co2").timestamps]
    assert {(b - a).days for a, b in itertools.pairwise(co2)} == {7} and co2[0].weekday() == 5  # Saturdays


@pytest.mark.parametrize("name", ANOMALY)
def test_anomaly_labels_match_the_card(name):
    cls = DATASETS.get(name)
    splits = load_dataset(name)
    counts = {k: int(v.labels.sum()) for k, v in splits.items()}
    assert counts == cls.anomalous_points and counts["train"] == 0 and counts["test"] > 0
    assert any(f"{sum(counts.values()):,} in all" in note for note in cls.card.notes)
    for part in splits.values():
        marked = np.zeros(len(part), np.int64)
        for seg in part.notes["anomalies"]:
            marked[seg["start"] : seg["stop"]] = 1
        np.testing.assert_array_equal(marked, part.labels)


def test_mitdb_values():
    ecg = full("mitdb")
    assert len(ecg) == 7500 and ecg.timestamps is None and ecg.values[0, 0] == -0.195
    assert [(s["start"], s["stop"]) for s in anomaly.segments(ecg.labels)] == [(6936, 7288)]


def test_taylor_anomalies_are_reproducible_and_only_touch_labelled_points():
    built, kinds = anomaly.build_taylor_anomalies()
    loaded, file_kinds = full("taylor-anomalies"), DATASETS.get("taylor-anomalies")().read()[1]
    np.testing.assert_array_equal(built.values, loaded.values)
    np.testing.assert_array_equal(built.labels, loaded.labels)
    assert kinds == file_kinds and built.timestamps == loaded.timestamps
    assert series.series_to_csv(built, kinds) == read_builtin("taylor_anomalies.csv.xz", "anomalies")
    clean = full("taylor").values[:, 0]
    normal = loaded.labels == 0
    np.testing.assert_array_equal(loaded.values[normal, 0], clean[normal])
    changed = loaded.values[:, 0] != clean
    assert changed.sum() >= 0.9 * (~normal).sum()  # a flat-line's first point keeps its value
    splits = load_dataset("taylor-anomalies")
    for split in ("validation", "test"):
        assert sorted({s["kind"] for s in splits[split].notes["anomalies"]}) == sorted(anomaly.ANOMALY_KINDS)
        assert len(splits[split].notes["anomalies"]) == 6


@pytest.mark.parametrize("name", ALL)
def test_library_writer_reproduces_the_committed_file(name):
    cls = DATASETS.get(name)
    ts, kinds = cls().read()
    assert series.series_to_csv(ts, kinds) == read_builtin(cls.filename, cls.script)


def test_committed_files_are_small():
    names = {DATASETS.get(n).filename for n in ALL}
    assert sum((BUILTIN_DIR / n).stat().st_size for n in names) < 100_000
    assert (BUILTIN_DIR / "SERIES_SOURCES.md").is_file()


# -- the CSV format and its errors -------------------------------------------------------------


def test_csv_round_trip_with_nan_labels_and_kinds():
    ts = TimeSeries(
        np.array([[1.5, np.nan], [0.1, 2.0], [3e20, -4.0]]),
        ["a", "b"],
        ["2000", "2001", "2002"],
        "YS",
        [0, 1, 0],
    )
    text = series.series_to_csv(ts, ["", "spike", ""])
    assert text.splitlines()[:2] == ["timestamp,a,b,label,anomaly", "2000,1.5,,0,"]
    back, kinds = series.parse_series_csv(text, freq="YS")
    np.testing.assert_array_equal(back.values, ts.values)
    assert (
        back.timestamps == ts.timestamps and back.labels.tolist() == [0, 1, 0] and kinds == ["", "spike", ""]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.csv: empty file"),
        ("timestamp,y\n", "f.csv: a header but no data rows"),
        ("timestamp,label\n2000,1\n", "f.csv:1: no value column"),
        ("timestamp,y\n2000,1\n2001,2,3\n", "f.csv:3: expected 2 fields"),
        ("timestamp,y\n2000,1\n2001,abc\n", "f.csv:3: column 'y': not a number: 'abc'"),
        ("timestamp,y\n2000,1\n2001,inf\n", "f.csv:3: column 'y': not a finite number: 'inf'"),
        ("y,label\n1,0\n2,2\n", "f.csv:3: column 'label': expected 0 or 1, got '2'"),
        (
            "timestamp,y\n2001,1\n2000,2\n",
            "f.csv:3: column 'timestamp': timestamp '2000' does not come after '2001' on line 2",
        ),
        (
            "timestamp,y\n2000-01-01,1\n2000-01-01,2\n",
            "f.csv:3: .* '2000-01-01' does not come after '2000-01-01'",
        ),
    ],
)
def test_bad_csv_names_file_line_and_column(text, message):
    with pytest.raises(ConfigError, match=message):
        series.parse_series_csv(text, "f.csv")


def test_damaged_or_short_builtin_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "BUILTIN_DIR", tmp_path)
    (tmp_path / "nile.csv").write_text("timestamp,volume\n1871-01-01,1120\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match="1 points, but the 'nile' card says 100; rebuild it with scripts/data"
    ):
        load_dataset("nile")
    (tmp_path / "co2.csv.xz").write_bytes(b"not xz")
    with pytest.raises(ConfigError, match="co2.csv.xz is damaged"):
        load_dataset("co2")
    with pytest.raises(
        ConfigError,
        match="dataset 'taylor': missing file .*taylor.csv.xz; rebuild it with scripts/data/prepare_series",
    ):
        load_dataset("taylor")
    with pytest.raises(ConfigError, match="dataset 'taylor-anomalies': missing file .*prepare_anomalies.py"):
        load_dataset("taylor-anomalies")
    (tmp_path / "nile.csv").write_text("timestamp,flow\n1871-01-01,1120\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"value columns \['flow'\], expected \['volume'\]"):
        load_dataset("nile")
    lines = lzma.decompress((BUILTIN_DIR / "mitdb.csv.xz").read_bytes()).decode().splitlines()
    lines[9] = "abc,0"
    (tmp_path / "mitdb.csv.xz").write_bytes(lzma.compress("\n".join(lines).encode()))
    with pytest.raises(ConfigError, match="mitdb.csv.xz:10: column 'ecg': not a number: 'abc'"):
        load_dataset("mitdb")


def test_builtin_format_reads_cells_like_users_files():
    text = "timestamp,y\n2000-01-01,NA\n2000-01-01T12:00,nan\n2000-01-02,\n2000-01-03,2.5\n"
    parsed, _ = series.parse_series_csv(text, "f.csv")  # missing tokens -> NaN; a date and a time mix
    assert np.isnan(parsed.values[:3, 0]).all() and parsed.values[3, 0] == 2.5
    assert series.parse_series_csv is series_csv.parse_series_csv
    assert series.series_to_csv is series_csv.series_to_csv


def test_an_anomaly_count_that_differs_from_the_card_is_an_error(monkeypatch):
    monkeypatch.setattr(anomaly.MITDB, "anomalous_points", {"train": 0, "validation": 0, "test": 351})
    with pytest.raises(
        ConfigError,
        match="mitdb.csv.xz: 352 anomalous points in the test split, but the 'mitdb' card says 351",
    ):
        load_dataset("mitdb")


def test_prepare_series_script_runs_without_torch():
    """prepare_series.py runs in a scratch venv without torch: its writer must reproduce our files."""
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
sys.path[:0] = [{str(SCRIPTS)!r}]
import lzma, numpy as np, prepare_series as p
text = lzma.decompress(open({str(BUILTIN_DIR / "taylor.csv.xz")!r}, "rb").read()).decode()
rows = [line.split(",") for line in text.splitlines()[1:]]
ts = p.Series(np.array([float(r[1]) for r in rows]), ["demand"], [r[0] for r in rows])
assert p.series_csv.series_to_csv(ts) == text
assert not any(name.startswith("seqlab.data") for name in sys.modules), "seqlab.data was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_contiguous_split_sizes_rule():
    assert series.contiguous_split_sizes(309) == {"train": 216, "validation": 46, "test": 47}
    assert series.contiguous_split_sizes(7500) == {"train": 5250, "validation": 1125, "test": 1125}
    with pytest.raises(ConfigError, match="cannot cut 4 points"):
        series.contiguous_split_sizes(4)
    with pytest.raises(ConfigError, match="add up to 3, not 4 points"):
        series.contiguous_split(TimeSeries(np.zeros(4), ["y"]), {"train": 2, "test": 1})


# -- anomaly injection -------------------------------------------------------------------------


def wave(n: int = 1200) -> np.ndarray:
    return 10 * np.sin(np.arange(n) * 2 * np.pi / 48) + np.random.default_rng(1).normal(0, 0.3, n)


def test_injection_is_seeded_and_stays_in_its_regions():
    x, counts = wave(), {"spike": 3, "level-shift": 1, "noise-burst": 1, "flat-line": 1}
    a = anomaly.inject_anomalies(x, [(400, 800), (800, 1200)], counts, seed=3)
    b = anomaly.inject_anomalies(x, [(400, 800), (800, 1200)], counts, seed=3)
    c = anomaly.inject_anomalies(x, [(400, 800), (800, 1200)], counts, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[3] == b[3] and a[3] != c[3]
    y, labels, kinds, made = a
    assert labels[:400].sum() == 0 and np.array_equal(y[:400], x[:400]) and len(made) == 12
    for region in ((400, 800), (800, 1200)):
        inside = [m for m in made if region[0] <= m.start < region[1]]
        assert sorted(m.kind for m in inside) == sorted(k for k, n in counts.items() for _ in range(n))
        assert all(region[0] + 24 <= m.start and m.stop <= region[1] - 24 for m in inside)
    assert all(b.start - a.stop >= 24 for a, b in itertools.pairwise(made))
    assert labels.sum() == sum(m.stop - m.start for m in made) == sum(k != "" for k in kinds)
    scale = anomaly.robust_scale(x)
    for m in made:
        if m.kind == "flat-line":
            assert np.all(y[m.start : m.stop] == x[m.start])
        elif m.kind == "spike":
            assert m.stop - m.start == 1 and 6 * scale <= abs(y[m.start] - x[m.start]) <= 10 * scale
        elif m.kind == "level-shift":
            np.testing.assert_allclose(y[m.start : m.stop] - x[m.start : m.stop], m.size)


def test_injection_errors():
    with pytest.raises(ConfigError, match="unknown anomaly kinds \\['dip'\\]"):
        anomaly.inject_anomalies(wave(), [(0, 1200)], {"dip": 1}, seed=0)
    with pytest.raises(ConfigError, match="no room for another"):
        anomaly.inject_anomalies(wave(), [(0, 100)], {"level-shift": 3}, seed=0)
    with pytest.raises(ConfigError, match="zero spread"):
        anomaly.robust_scale(np.ones(50))
