"""Checks shared by the report tests: the tables of an HTML report against its JSON."""

from __future__ import annotations

import re
from html.parser import HTMLParser

NUMBER = re.compile(r"^-?[\d,]*\.?\d+(e[+-]\d+)?%?$")


class TableCells(HTMLParser):
    """The body cells of every ``table.report-table`` in a page, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.table: str | None = None
        self.in_body = self.in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "report-table" in (attrs.get("class") or ""):
            self.table = attrs["id"]
            self.tables[self.table] = []
        elif self.table and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.tables[self.table].append([])
        elif self.in_body and tag == "td":
            self.in_cell = True
            self.tables[self.table][-1].append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self.in_cell = False
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.in_cell:
            self.tables[self.table][-1][-1] += data


def json_tables(doc: dict) -> dict[str, dict]:
    return {b["id"]: b for s in doc["sections"] for b in s["blocks"] if b["type"] == "table"}


def assert_shown_number_matches(shown: str, raw) -> None:
    """A displayed number ("265,474", "0.6794", "1.2e-05", "50.0%") rounds the raw JSON value."""
    assert isinstance(raw, int | float) and not isinstance(raw, bool), (shown, raw)
    digits = shown.replace(",", "").rstrip("%")
    value = float(digits) / (100 if shown.endswith("%") else 1)
    decimals = len(digits.split("e")[0].partition(".")[2])
    scale = 10 ** float(digits.split("e")[1]) if "e" in digits else 1.0
    assert abs(value - raw) <= 0.5 * 10**-decimals * scale + 1e-12, (shown, raw)


def assert_html_tables_match_json(html: str, doc: dict) -> int:
    """Every cell of every HTML table is the JSON's display string, and every number shown rounds
    the JSON's raw value. Returns how many numbers were checked."""
    tables = json_tables(doc)
    parser = TableCells()
    parser.feed(html)
    assert set(parser.tables) == set(tables)
    numbers = 0
    for table_id, cells in parser.tables.items():
        assert cells == tables[table_id]["display"], table_id
        for shown_row, raw_row in zip(cells, tables[table_id]["rows"], strict=True):
            for shown, raw in zip(shown_row, raw_row, strict=True):
                if NUMBER.match(shown) and not isinstance(raw, str):
                    assert_shown_number_matches(shown, raw)
                    numbers += 1
    return numbers
