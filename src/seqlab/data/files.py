"""Users' own data files: text corpora, CSV / TSV / JSON Lines tables, parallel TSV, splits.

Every reader returns a container of :mod:`seqlab.data.types`, so a user's file and a bundled
dataset feed the same tasks. Bad input never gives a traceback: it gives one
:class:`~seqlab.errors.ConfigError` naming the file, the line (1-based, as an editor shows it)
and the column::

    reviews.csv:1: no column 'labl'; the header has 'text', 'label'
    reviews.csv:7: expected 2 fields (as in the header on line 1), found 3
    reviews.csv:9: column 'label': empty value (every example needs a label)
    notes.txt:3:14: not valid UTF-8 (byte 0xe9 cannot start a character here); re-save the file as UTF-8

Columns are named by header name, or by 0-based index (``header=False`` files have no names).
Tables are parsed with :mod:`csv` (``strict=True``) and :mod:`json`; a CSV record may span
lines (a quoted newline) and the line reported is the one the record starts on.

The splitters :func:`~seqlab.data.types.split_items` and :func:`~seqlab.data.types.split_text`
live in :mod:`seqlab.data.types` and are re-exported here.

Example::

    >>> data = read_table("reviews.csv", text="review", label="sentiment")  # doctest: +SKIP
    >>> parts = split_items(data, [0.8, 0.1, 0.1], seed=0)  # doctest: +SKIP
    >>> sorted(parts)  # doctest: +SKIP
    ['test', 'train', 'validation']
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.data.types import LabelledTexts, Text, TextPairs, split_items, split_text
from seqlab.errors import ConfigError

__all__ = ["read_parallel", "read_table", "read_text_corpus", "read_utf8", "split_items", "split_text"]

SUFFIXES = {"csv": (".csv",), "tsv": (".tsv", ".tab"), "jsonl": (".jsonl", ".ndjson"), "json": (".json",)}
FORMATS = {suffix: fmt for fmt, suffixes in SUFFIXES.items() for suffix in suffixes}
Column = str | int


# ---------------------------------------------------------------------------------------- text files
def read_utf8(path: str | Path) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); bad input -> ConfigError.

    Errors name the line and column (in characters) of the first byte that is not UTF-8, and an
    empty (or whitespace-only) file is an error too.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    text = decode_utf8(data, path).removeprefix("\ufeff")
    if not text.strip():
        raise ConfigError(f"{path}:1: the file is empty")
    return text


def decode_utf8(data: bytes, path: str | Path, first_line: int = 1) -> str:
    """Decode ``data`` (``path`` from line ``first_line`` on); errors name the bad byte's line:column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + first_line
        column = len(data[line_start : err.start].decode("utf-8", errors="replace")) + 1
        raise ConfigError(
            f"{path}:{line}:{column}: not valid UTF-8 (byte 0x{data[err.start]:02x}: {err.reason}); "
            "re-save the file as UTF-8"
        ) from None


def read_text_corpus(path: str | Path) -> Text:
    """A language-modelling text: one UTF-8 file, or a folder of ``*.txt`` files.

    A folder's files are read in sorted name order and joined with one blank line between
    documents (each document's trailing newlines are dropped first, so exactly ``"\\n\\n"``
    separates them). Subfolders are not searched.
    """
    path = Path(path)
    if not path.is_dir():
        return Text(read_utf8(path))
    files = sorted(p for p in path.glob("*.txt") if p.is_file())
    if not files:
        raise ConfigError(f"{path}: the folder has no *.txt files")
    return Text("\n\n".join(read_utf8(p).rstrip("\n") for p in files))


# ------------------------------------------------------------------------------------------- tables
@dataclass
class _Table:
    """Records of a table file with the line each starts on; ``header`` for delimited files."""

    path: Path
    records: list[tuple[int, Any]]  # (line, list of fields | dict)
    header: list[str] | None = None
    header_line: int = 1
    width: int | None = None  # fields per record (delimited files)


def table_format(path: Path, format: str | None) -> str:
    """``csv``, ``tsv``, ``jsonl`` or ``json``: the one given, else from the file's suffix."""
    choices = sorted(set(FORMATS.values()))
    if format is not None:
        if format not in choices:
            raise ConfigError(f"format: expected one of {choices}, got {format!r}")
        return format
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"{path}: unknown suffix {path.suffix!r}; pass format= one of {choices}")
    return FORMATS[path.suffix.lower()]


def _delimited(path: Path, text: str, delimiter: str, quoting: bool) -> list[tuple[int, int, list[str]]]:
    """(first line, last line, fields) of each record (quoted newlines span lines); blank lines skipped."""
    mode = csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True, quoting=mode)
    records, previous = [], 0
    try:
        for fields in reader:
            if fields:
                records.append((previous + 1, reader.line_num, fields))
            previous = reader.line_num
    except csv.Error as err:  # name the line the bad record starts on, not where the reader stopped
        problem = "a quoted field is never closed" if "end of data" in str(err) else str(err)
        span = f" (the record runs to line {reader.line_num})" if reader.line_num > previous + 1 else ""
        raise ConfigError(
            f"{path}:{previous + 1}: malformed {delimiter!r}-separated text: {problem}{span}"
        ) from None
    return records


def load_table(
    path: str | Path, format: str | None, *, header: bool, quoting: bool | None, fields: int | None = None
) -> _Table:
    """Read a table file, checking every delimited record has as many fields as the first."""
    path = Path(path)
    fmt = table_format(path, format)
    text = read_utf8(path)
    if fmt in ("json", "jsonl"):
        records = _json_records(path, text, fmt)
        if not records:
            raise ConfigError(f"{path}:1: the file holds no records")
        return _Table(path, records)
    quoting = fmt == "csv" if quoting is None else quoting
    records = _delimited(path, text, "," if fmt == "csv" else "\t", quoting)
    head = None
    line0, _, first = records[0]
    if header:
        head, records = first, records[1:]
        if not records:
            raise ConfigError(f"{path}:{line0}: the file has a header but no data rows")
    width = fields or len(first)
    where = f"as in the header on line {line0}" if header else f"as on line {line0}"
    where = where if fields is None else "source<TAB>target"
    for line, last, row in records:
        if len(row) != width:
            span = f" in the record on lines {line}-{last}" if last > line else ""
            raise ConfigError(f"{path}:{line}: expected {width} fields ({where}), found {len(row)}{span}")
    return _Table(path, [(line, row) for line, _, row in records], head, line0, width)


def _json_records(path: Path, text: str, fmt: str) -> list[tuple[int, Any]]:
    """Records of JSON Lines, or of a ``.json`` file holding an array of objects or JSON Lines.

    A file that is one JSON object over several lines (pretty-printed) is neither: it is an error
    that says so, not a syntax error on its second character.
    """
    if fmt == "json" and text.lstrip().startswith("["):
        return _json_array(path, text)
    try:
        return _jsonl(path, text)
    except ConfigError:
        try:
            single = isinstance(json.loads(text), dict)
        except json.JSONDecodeError:
            single = False
        if not single:
            raise
    lines = [n for n, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    expected = "an array of objects or JSON Lines" if fmt == "json" else "JSON Lines"
    raise ConfigError(
        f"{path}:{lines[0]}: expected {expected} (one object per line), "
        f"found a single JSON object over lines {lines[0]}-{lines[-1]}"
    )


def _jsonl(path: Path, text: str) -> list[tuple[int, Any]]:
    records = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            records.append((line, json.loads(raw)))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{line}:{err.colno}: not valid JSON ({err.msg})") from None
    return records


def _json_array(path: Path, text: str) -> list[tuple[int, Any]]:
    """The items of a top-level JSON array, each with the line it starts on."""
    try:
        json.loads(text)  # a clear error with line and column for any malformed file
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    decoder, records = json.JSONDecoder(), []
    pos, line, counted = text.index("[") + 1, 1, 0
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return records
        line, counted = line + text.count("\n", counted, pos), pos
        item, pos = decoder.raw_decode(text, pos)
        records.append((line, item))


def _column_label(table: _Table, column: Column) -> str:
    if table.header is not None and isinstance(column, int):
        return f"{table.header[column]!r}"
    return f"{column!r}" if isinstance(column, str) else f"{column} (0-based)"


def column_index(table: _Table, column: Column) -> int:
    """The field index of ``column`` (a header name, or a 0-based index) in a delimited table."""
    path, header = table.path, table.header
    if isinstance(column, bool) or not isinstance(column, str | int):
        raise ConfigError(f"{path}: a column is a name or a 0-based index, got {column!r}")
    if isinstance(column, str):
        if header is None:
            raise ConfigError(f"{path}: no header (header=False): name column {column!r} by index")
        if header.count(column) != 1:
            have = ", ".join(repr(h) for h in header)
            problem = "appears twice in the header" if column in header else "does not exist"
            raise ConfigError(
                f"{path}:{table.header_line}: column {column!r} {problem}; the header has {have}"
            )
        return header.index(column)
    if not 0 <= column < (table.width or 0):
        raise ConfigError(f"{path}: column index {column} is out of range: rows have {table.width} fields")
    return column


def column_getter(table: _Table, column: Column) -> Callable[[int, Any], str]:
    """A function (line, record) -> the cell of ``column`` as a string, with errors that name both."""
    if table.header is None and table.width is None:  # JSON records: look each key up
        if not isinstance(column, str):
            raise ConfigError(f"{table.path}: JSON records are read by key, got column {column!r}")
        return lambda line, record: _json_cell(table.path, line, record, column)
    index = column_index(table, column)
    return lambda line, record: record[index]


def _json_cell(path: Path, line: int, record: Any, key: str) -> str:
    if not isinstance(record, dict):
        raise ConfigError(
            f"{path}:{line}: expected a JSON object with key {key!r}, got {type(record).__name__}"
        )
    if key not in record:
        have = ", ".join(repr(k) for k in record) or "no keys"
        raise ConfigError(f"{path}:{line}: no key {key!r} in this record (it has {have})")
    value = record[key]
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ConfigError(
        f"{path}:{line}: key {key!r}: expected a string or a number, got {type(value).__name__}"
    )


def _label_ids(
    table: _Table, column: Column, cells: list[str], label_names: Sequence[str] | None
) -> tuple[list[int], list[str]]:
    """Map label strings to ids: sorted distinct values (numerically if all are integers) or a given order."""
    name = _column_label(table, column)
    values = [cell.strip() for cell in cells]
    for (line, _), value in zip(table.records, values):
        if not value:
            raise ConfigError(
                f"{table.path}:{line}: column {name}: empty value (every example needs a label)"
            )
    if label_names is None:
        distinct = set(values)
        label_names = sorted(distinct, key=int) if all(map(_is_int, distinct)) else sorted(distinct)
    index = {label: i for i, label in enumerate(label_names)}
    for (line, _), value in zip(table.records, values):
        if value not in index:
            raise ConfigError(
                f"{table.path}:{line}: column {name}: label {value!r} is not one of "
                f"label_names {list(label_names)}"
            )
    return [index[v] for v in values], list(label_names)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def read_table(
    path: str | Path,
    *,
    text: Column | None = None,
    label: Column | None = None,
    source: Column | None = None,
    target: Column | None = None,
    format: str | None = None,
    header: bool = True,
    label_names: Sequence[str] | None = None,
    quoting: bool | None = None,
) -> LabelledTexts | TextPairs:
    """Read a CSV / TSV / JSON Lines table into labelled texts (text + label) or pairs (source + target).

    Args:
        path: the file; its suffix (``.csv .tsv .tab .jsonl .ndjson .json``) gives the format.
        text, label: columns of a classification table -> :class:`LabelledTexts`.
        source, target: columns of a pairs table -> :class:`TextPairs`.
        format: ``csv``, ``tsv``, ``jsonl`` or ``json`` (a ``.json`` file is either a JSON array
            of objects or JSON Lines), overriding the suffix.
        header: delimited files only: whether the first record names the columns. Without one,
            columns are 0-based indices. JSON records are always read by key.
        label_names: the label order (label ``i`` = ``label_names[i]``); a value outside it is an
            error. Default: the sorted distinct values (numerically when all are integers).
        quoting: whether ``"`` quotes fields. Default: on for CSV, off for TSV (where text often
            holds unbalanced quotes).

    Example::

        >>> read_table("reviews.tsv", text=0, label=1, header=False).label_names  # doctest: +SKIP
        ['neg', 'pos']
    """
    if (
        (text is None) != (label is None)
        or (source is None) != (target is None)
        or (text is None) == (source is None)
    ):
        raise ConfigError("read_table: give text= and label= (labelled texts) or source= and target= (pairs)")
    table = load_table(path, format, header=header, quoting=quoting)
    if source is not None:
        get_source, get_target = column_getter(table, source), column_getter(table, target)
        return TextPairs([get_source(*r) for r in table.records], [get_target(*r) for r in table.records])
    get_text, get_label = column_getter(table, text), column_getter(table, label)
    texts = [get_text(*r) for r in table.records]
    labels, names = _label_ids(table, label, [get_label(*r) for r in table.records], label_names)
    return LabelledTexts(texts, labels, names)


def read_parallel(path: str | Path) -> TextPairs:
    """A parallel corpus: one ``source<TAB>target`` pair per line, no header, no quoting."""
    table = load_table(path, "tsv", header=False, quoting=False, fields=2)
    return TextPairs([row[0] for _, row in table.records], [row[1] for _, row in table.records])
