"""Users' data files: every reader, every bad-input error (file, line, column), missing values, splits."""

from __future__ import annotations

import itertools
import json
import logging
import re

import numpy as np
import pytest

import seqlab.data.datasets.series as series_datasets
from seqlab.data import corpus, files, types
from seqlab.data.corpus import read_text
from seqlab.data.files import read_parallel, read_table, read_text_corpus, split_items, split_text
from seqlab.data.series_files import fill_missing, read_series_csv, split_series
from seqlab.data.types import LabelledTexts, Text, TextPairs, TimeSeries, cut_points, split_indices
from seqlab.errors import ConfigError


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # one clear line
    return message


# ------------------------------------------------------------------------------------------ readers
def test_text_file_and_folder(tmp_path):
    assert read_text_corpus(write(tmp_path, "a.txt", "hello\nworld\n")) == Text("hello\nworld\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    write(folder, "b.txt", "second\n\n")
    write(folder, "a.txt", "first\n")
    write(folder, "notes.md", "ignored")
    assert read_text_corpus(folder).text == "first\n\nsecond"  # sorted, one blank line between
    (tmp_path / "none").mkdir()
    assert "no *.txt" in error_of(read_text_corpus, tmp_path / "none")
    assert "no such file" in error_of(read_text_corpus, tmp_path / "missing.txt")


def test_csv_labelled_texts_with_quoted_newlines(tmp_path):
    path = write(tmp_path, "r.csv", 'text,label\n"good, really",pos\n"bad\nawful",neg\nfine,pos\n')
    data = read_table(path, text="text", label="label")
    assert isinstance(data, LabelledTexts)
    assert data.texts == ["good, really", "bad\nawful", "fine"]
    assert data.label_names == ["neg", "pos"] and data.labels == [1, 0, 1]
    ordered = read_table(path, text="text", label="label", label_names=["pos", "neg"])
    assert ordered.labels == [0, 1, 0]


def test_numeric_labels_sort_as_numbers_and_bom_is_dropped(tmp_path):
    path = write(tmp_path, "n.csv", "\ufefftext,label\na,10\nb,2\nc,2\n")
    assert read_table(path, text="text", label="label").label_names == ["2", "10"]


def test_headerless_tsv_by_index_and_pairs(tmp_path):
    path = write(tmp_path, "p.tsv", 'he said "hi"\tdijo "hola"\ncat\tgato\n')
    pairs = read_table(path, source=0, target=1, header=False)
    assert isinstance(pairs, TextPairs)
    assert pairs.sources == ['he said "hi"', "cat"] and pairs.targets == ['dijo "hola"', "gato"]
    assert read_parallel(path) == pairs
    labelled = read_table(path, text=0, label=1, header=False)
    assert labelled.label_names == ['dijo "hola"', "gato"]


def test_jsonl_and_json_array(tmp_path):
    rows = [{"src": "a", "tgt": "A"}, {"src": "b", "tgt": "B", "extra": 1}]
    jsonl = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_table(jsonl, source="src", target="tgt") == TextPairs(["a", "b"], ["A", "B"])
    array = write(tmp_path, "d.json", json.dumps(rows, indent=2))
    assert read_table(array, source="src", target="tgt") == TextPairs(["a", "b"], ["A", "B"])
    labelled = write(tmp_path, "l.json", '{"t": "x", "y": 1}\n{"t": "z", "y": 0}\n')  # JSONL in .json
    assert read_table(labelled, text="t", label="y").labels == [1, 0]


def test_format_override_and_bad_calls(tmp_path):
    path = write(tmp_path, "data.txt", "a,b\nc,d\n")
    assert read_table(path, source="a", target="b", format="csv").sources == ["c"]
    assert "format=" in error_of(read_table, path, source="a", target="b")
    assert "give text= and label=" in error_of(read_table, path, text="a", format="csv")
    assert "header=False" in error_of(read_table, path, source="a", target="b", format="csv", header=False)
    assert "out of range" in error_of(read_table, path, source=0, target=5, format="csv")


# ---------------------------------------------------------------------------------- bad input: tables
def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\nhi,pos\n")
    message = error_of(read_table, path, text="text", label="labl")
    assert message.startswith(f"{path}:1:") and "'labl'" in message and "'text', 'label'" in message


def test_ragged_row_names_line_and_field_counts(tmp_path):
    path = write(tmp_path, "r.csv", 'text,label\n"multi\nline",pos\nhi,pos,extra\n')
    message = error_of(read_table, path, text="text", label="label")
    assert message.startswith(f"{path}:4:") and "expected 2 fields" in message and "found 3" in message
    path = write(tmp_path, "s.csv", 'text,label\nhi,pos\n"multi\nline",pos,extra\n')
    assert error_of(read_table, path, text="text", label="label").endswith(
        "found 3 in the record on lines 3-4"
    )
    tsv = write(tmp_path, "p.tsv", "a\tb\nc\n")
    assert error_of(read_parallel, tsv).startswith(f"{tsv}:2: expected 2 fields")
    assert error_of(read_parallel, write(tmp_path, "q.tsv", "a\tb\tc\n")).endswith("found 3")


def test_malformed_quoting_names_the_line(tmp_path):
    path = write(tmp_path, "q.csv", 'text,label\nok,pos\n"bad"x,neg\n')
    assert error_of(read_table, path, text="text", label="label").startswith(f"{path}:3: malformed")


def test_non_utf8_names_line_and_column(tmp_path):
    path = write(tmp_path, "l.csv", "text,label\nok,pos\ncaf\xe9,neg\n".encode("latin-1"))
    message = error_of(read_table, path, text="text", label="label")
    assert message.startswith(f"{path}:3:4: not valid UTF-8") and "0xe9" in message
    assert error_of(read_text_corpus, path).startswith(f"{path}:3:4:")


@pytest.mark.parametrize("content", ["", "  \n\n", "text,label\n"])
def test_empty_files(tmp_path, content):
    path = write(tmp_path, "e.csv", content)
    message = error_of(read_table, path, text="text", label="label")
    assert message.startswith(f"{path}:1:") and ("empty" in message or "no data rows" in message)
    assert "holds no records" in error_of(read_table, write(tmp_path, "e.json", "[]"), text="t", label="y")


def test_empty_label_and_unknown_label(tmp_path):
    path = write(tmp_path, "r.csv", "text,label\na,pos\nb, \n")
    message = error_of(read_table, path, text="text", label="label")
    assert message.startswith(f"{path}:3: column 'label': empty value")
    path = write(tmp_path, "h.tsv", "a\tpos\nb\tmeh\n")
    message = error_of(read_table, path, text=0, label=1, header=False, label_names=["neg", "pos"])
    assert message.startswith(f"{path}:2: column 1 (0-based): label 'meh'")


def test_jsonl_errors_name_line_and_key(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"t": "a", "y": "p"}\n\n{"t": "b", y: 1}\n')
    assert error_of(read_table, path, text="t", label="y").startswith(f"{path}:3:12: not valid JSON")
    path = write(tmp_path, "k.jsonl", '{"t": "a", "y": "p"}\n{"t": "b", "z": "q"}\n')
    message = error_of(read_table, path, text="t", label="y")
    assert message.startswith(f"{path}:2: no key 'y'") and "'t', 'z'" in message
    path = write(tmp_path, "k.json", '[\n  {"t": "a", "y": "p"},\n  {"t": "b"}\n]')
    assert error_of(read_table, path, text="t", label="y").startswith(f"{path}:3: no key 'y'")
    path = write(tmp_path, "n.jsonl", '["t", "y"]\n')
    assert "expected a JSON object" in error_of(read_table, path, text="t", label="y")


# -------------------------------------------------------------------------------------- time series
SERIES = "date,co2,temp\n2000-01,1.5,10\n2000-02,,11\n2000-03,3.5,NA\n2000-04,4.0,13\n"


def test_series_csv_columns_and_timestamps(tmp_path):
    path = write(tmp_path, "s.csv", SERIES)
    series = read_series_csv(path, timestamp="date", missing="keep", freq="MS")
    assert series.columns == ["co2", "temp"] and series.timestamps[0] == "2000-01" and series.freq == "MS"
    np.testing.assert_array_equal(np.isnan(series.values), [[0, 0], [1, 0], [0, 1], [0, 0]])
    assert series.notes["missing"] == 2
    only = read_series_csv(path, timestamp=0, values=["temp"], missing="interpolate")
    np.testing.assert_allclose(only.values[:, 0], [10, 11, 12, 13])
    bare = read_series_csv(write(tmp_path, "b.tsv", "1\t2\n3\t4\n"), header=False)
    assert bare.columns == ["0", "1"] and bare.timestamps is None
    np.testing.assert_array_equal(bare.values, [[1, 2], [3, 4]])


def test_series_missing_error_and_non_numeric(tmp_path):
    path = write(tmp_path, "s.csv", SERIES)
    assert error_of(read_series_csv, path, timestamp="date").startswith(
        f"{path}:3: column 'co2': missing value"
    )
    path = write(tmp_path, "x.csv", "date,co2\n2000-01,1.5\n2000-02,1,5\n")
    assert "expected 2 fields" in error_of(read_series_csv, path, timestamp="date")
    path = write(tmp_path, "y.csv", "date,co2\n2000-01,1.5\n2000-02,12 ppm\n")
    message = error_of(read_series_csv, path, timestamp="date")
    assert message == f"{path}:3: column 'co2': not a number: '12 ppm'"
    path = write(tmp_path, "z.csv", "date,co2\n2000-01,inf\n")
    assert "not a finite number" in error_of(read_series_csv, path, timestamp="date")
    assert "missing: expected one of" in error_of(read_series_csv, path, missing="mean")
    assert "'time' does not exist" in error_of(read_series_csv, path, timestamp="time")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("interpolate", [1.0, 2.0, 3.0]),
        ("ffill", [1.0, 1.0, 3.0]),
        ("zero", [1.0, 0.0, 3.0]),
        ("drop", [1.0, 3.0]),
    ],
)
def test_missing_policies_by_hand(policy, expected):
    series = TimeSeries(np.array([1.0, np.nan, 3.0]), ["y"], timestamps=["a", "b", "c"])
    filled = fill_missing(series, policy)
    assert filled.values[:, 0].tolist() == expected
    assert np.isnan(series.values[1, 0])  # the input is not changed
    if policy == "drop":
        assert filled.timestamps == ["a", "c"] and filled.notes["dropped"] == 1


def test_missing_edges_and_all_missing():
    values = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [6.0, 4.0], [np.nan, np.nan]])
    series = TimeSeries(values, ["a", "b"])
    np.testing.assert_allclose(
        fill_missing(series, "interpolate").values, [[2, 1], [2, 2], [4, 3], [6, 4], [6, 4]]
    )
    np.testing.assert_allclose(fill_missing(series, "ffill").values, [[2, 1], [2, 1], [2, 1], [6, 4], [6, 4]])
    kept = fill_missing(series, "keep")
    assert np.isnan(kept.values).sum() == 6
    assert "value 0 is missing" in error_of(fill_missing, series, "error")
    empty = TimeSeries(np.array([np.nan, np.nan]), ["z"])
    assert "every value is missing" in error_of(fill_missing, empty, "interpolate")


# ------------------------------------------------------------------------------------------- splits
def test_split_items_deterministic_disjoint_and_complete():
    data = LabelledTexts([f"t{i}" for i in range(50)], [i % 3 for i in range(50)], ["a", "b", "c"])
    parts = split_items(data, [0.8, 0.1, 0.1], seed=3)
    again = split_items(data, [0.8, 0.1, 0.1], seed=3)
    assert {k: v.texts for k, v in parts.items()} == {k: v.texts for k, v in again.items()}
    assert [len(p) for p in parts.values()] == [40, 5, 5]
    seen = [t for p in parts.values() for t in p.texts]
    assert sorted(seen) == sorted(data.texts)  # disjoint and complete
    other = split_items(data, [0.8, 0.1, 0.1], seed=4)
    assert other["train"].texts != parts["train"].texts
    named = split_items(TextPairs(list("abcd"), list("ABCD")), {"fit": 0.5, "hold": 0.5}, seed=0)
    assert sorted(named) == ["fit", "hold"] and all(len(p) == 2 for p in named.values())
    assert "sum to at most 1" in error_of(split_items, data, [0.9, 0.9])


def test_split_text_by_position():
    text = "".join(f"line {i}\n" for i in range(10))  # 70 characters
    parts = split_text(text, [0.8, 0.1, 0.1])
    assert "".join(p.text for p in parts.values()) == text
    assert [len(p) for p in parts.values()] == [56, 7, 7] and parts["validation"].text == "line 8\n"
    raw = split_text(Text("abcdefghij"), [0.5, 0.5], at_lines=False)
    assert raw["train"].text == "abcde" and raw["validation"].text == "fghij"
    assert "too few lines" in error_of(split_text, "one long line", [0.5, 0.5])


def test_split_series_is_contiguous():
    series = TimeSeries(np.arange(20.0), ["y"], timestamps=[str(i) for i in range(20)])
    parts = split_series(series, [0.7, 0.15, 0.15])
    assert [len(p) for p in parts.values()] == [14, 3, 3]
    np.testing.assert_array_equal(np.concatenate([p.values for p in parts.values()]), series.values)
    assert parts["test"].timestamps == ["17", "18", "19"]
    assert re.search(
        r"cannot split 2 items into 3", error_of(split_series, series.slice(0, 2), [0.5, 0.25, 0.25])
    )


@pytest.mark.parametrize(
    ("n", "fractions", "sizes"),
    [
        (3, [0.98, 0.01, 0.01], [1, 1, 1]),
        (10, [0.9, 0.09, 0.01], [8, 1, 1]),
        (10, [0.8, 0.1, 0.1], [8, 1, 1]),
        (5, [0.01, 0.99], [1, 4]),
        (7, [0.5, 0.5], [4, 3]),
    ],
)
def test_skewed_fractions_never_give_an_empty_split(n, fractions, sizes):
    parts = split_indices(n, fractions, seed=0)
    assert [len(p) for p in parts] == sizes
    assert sorted(i for p in parts for i in p.tolist()) == list(range(n))
    bounds = cut_points(n, fractions)  # the one rule behind shuffled and contiguous splits
    assert [b - a for a, b in itertools.pairwise(bounds)] == sizes
    series = TimeSeries(np.arange(float(n)), ["y"])
    assert [len(p) for p in split_series(series, fractions).values()] == sizes


def test_split_names_are_defined_once():
    assert files.split_items is types.split_items and files.split_text is types.split_text
    assert series_datasets.SPLIT_NAMES is types.SPLIT_NAMES == ("train", "validation", "test")


def test_split_items_drops_repeated_inputs(caplog):
    data = LabelledTexts(["a", "b", "a", "c", "b", "d"], [0, 1, 1, 0, 1, 0], ["x", "y"])
    with caplog.at_level(logging.WARNING, logger="seqlab.data.types"):
        parts = split_items(data, [0.5, 0.5], seed=0)
    texts = [t for p in parts.values() for t in p.texts]
    assert sorted(texts) == ["a", "b", "c", "d"]  # the first "a" (label 0) is the one kept
    labels = {t: y for p in parts.values() for t, y in zip(p.texts, p.labels)}
    assert labels["a"] == 0 and labels["b"] == 1
    assert "dropped 2 examples repeating an earlier input" in caplog.text
    assert sum(map(len, split_items(data, [0.5, 0.5], seed=0, dedupe=False).values())) == 6
    pairs = TextPairs(["hi", "hi", "yo"], ["hola", "buenas", "ey"])  # keyed on the source
    kept = split_items(pairs, [0.5, 0.5], seed=0)
    assert sorted(s for p in kept.values() for s in p.sources) == ["hi", "yo"]
    assert "buenas" not in [t for p in kept.values() for t in p.targets]


# ----------------------------------------------------------------------------- missing values and leaks
LEAKY = "t,y\n" + "".join(
    f"{i},{v}\n" for i, v in enumerate(["1", "2", "3", "4", "5", "6", "", "", "90", "100"])
)


def test_split_series_fills_each_split_on_its_own(tmp_path):
    path = write(tmp_path, "leak.csv", LEAKY)
    filled_first = split_series(read_series_csv(path, timestamp="t", missing="interpolate"), [0.8, 0.2])
    assert filled_first["train"].values[-2:, 0].tolist() == [34.0, 62.0]  # the documented leak
    series = read_series_csv(path, timestamp="t", missing="keep")
    parts = split_series(series, [0.8, 0.2], missing="interpolate")
    assert parts["train"].values[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 6, 6]  # no validation value used
    assert parts["validation"].values[:, 0].tolist() == [90, 100]
    ffill = split_series(series, [0.6, 0.4], missing="ffill")  # validation starts in the gap
    assert ffill["train"].values[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert ffill["validation"].values[:, 0].tolist() == [90, 90, 90, 100]  # back-filled within itself
    assert np.isnan(split_series(series, [0.8, 0.2])["train"].values).sum() == 2  # default: keep
    assert "value 6 (6) is missing" in error_of(split_series, series, [0.8, 0.2], missing="error")
    assert "later" in read_series_csv.__doc__ and "split_series" in read_series_csv.__doc__


# ----------------------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(
    ("stamps", "bad_line", "kind"),
    [
        (["2000-01-02", "2000-01-01"], 3, "datetimes"),  # backwards
        (["2000-01-01", "2000-01-01T06:00", "2000-01-01T06:00"], 4, "datetimes"),  # repeated
        (["9", "10", "8.5"], 4, "numbers"),  # "10" < "9" as strings, but numbers compare as numbers
        (["2000-02", "2000-01"], 3, "strings"),
    ],
)
def test_series_timestamps_must_strictly_increase(tmp_path, stamps, bad_line, kind):
    path = write(tmp_path, "t.csv", "when,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(stamps)))
    message = error_of(read_series_csv, path, timestamp="when")
    assert message.startswith(f"{path}:{bad_line}: column 'when': timestamp {stamps[bad_line - 2]!r}")
    assert (
        f"does not come after {stamps[bad_line - 3]!r} on line {bad_line - 1} (compared as {kind})" in message
    )


def test_series_timestamps_that_increase_in_their_own_terms(tmp_path):
    ok = {"n.csv": ["9", "10", "11"], "d.csv": ["2000-01-01", "2000-01-01T06:00", "2000-01-02"]}
    for name, stamps in ok.items():
        path = write(tmp_path, name, "when,y\n" + "".join(f"{t},1\n" for t in stamps))
        assert read_series_csv(path, timestamp="when").timestamps == stamps


# ------------------------------------------------------------------------------- JSON and CSV corners
def test_a_single_pretty_printed_json_object_is_named_as_such(tmp_path):
    path = write(tmp_path, "obj.json", '{\n  "t": "a",\n  "y": 1\n}\n')
    message = error_of(read_table, path, text="t", label="y")
    assert message == (
        f"{path}:1: expected an array of objects or JSON Lines (one object per line), "
        "found a single JSON object over lines 1-4"
    )
    jsonl = write(tmp_path, "obj.jsonl", '{\n  "t": "a",\n  "y": 1\n}\n')
    assert "expected JSON Lines (one object per line)" in error_of(read_table, jsonl, text="t", label="y")
    one = write(tmp_path, "one.json", '{"t": "a", "y": 1}\n')  # one line: JSON Lines of one record
    assert read_table(one, text="t", label="y").texts == ["a"]
    broken = write(tmp_path, "bad.json", '{"t": "a"}\n{"t": }\n')
    assert error_of(read_table, broken, text="t", label="y").startswith(f"{broken}:2:7: not valid JSON")


def test_unterminated_quote_is_reported_where_the_record_starts(tmp_path):
    path = write(tmp_path, "q.csv", 'text,label\n"never closed,pos\nmore,neg\n')
    message = error_of(read_table, path, text="text", label="label")
    assert message.startswith(f"{path}:2: malformed ','-separated text: a quoted field is never closed")
    assert "(the record runs to line 3)" in message


# ------------------------------------------------------------------------------------ LM text (corpus)
def test_read_text_delegates_to_the_corpus_reader(tmp_path):
    assert read_text(None) == read_text(corpus.BUILTIN) and read_text(None).startswith("FIRST WITCH:")
    assert read_text(write(tmp_path, "bom.txt", "\ufeffhello\n")) == "hello\n"  # BOM dropped
    folder = tmp_path / "docs"
    folder.mkdir()
    write(folder, "1.txt", "one\n")
    write(folder, "2.txt", "two\n")
    assert read_text(folder) == "one\n\ntwo"
    bad = write(tmp_path, "bad.txt", b"ok\nab\xffc\n")
    assert error_of(read_text, bad).startswith(f"{bad}:2:3: not valid UTF-8")
    assert error_of(read_text, write(tmp_path, "x.txt", "x")) == (
        f"{tmp_path / 'x.txt'}: expected at least 2 characters of text, got 1"
    )
    assert "no such file" in error_of(read_text, tmp_path / "nope.txt")
    assert "the file is empty" in error_of(read_text, write(tmp_path, "e.txt", ""))


def test_split_items_treats_case_and_spacing_variants_as_one_text():
    from seqlab.data.types import LabelledTexts, split_items

    data = LabelledTexts(
        ["Great film!", "great  film!", "dull", "fine", "bad"], [1, 0, 0, 1, 0], ["neg", "pos"]
    )
    parts = split_items(data, [0.5, 0.5], seed=0)
    texts = [t for part in parts.values() for t in part.texts]
    assert sorted(texts) == ["Great film!", "bad", "dull", "fine"]  # the first occurrence is kept
