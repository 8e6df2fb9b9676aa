"""The report document model: cell formatting, escaping, strict JSON, Markdown, self-containedness;
the environment record; `seqlab report` on directories that are not runs."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pytest

from seqlab.cli.main import main
from seqlab.reports import (
    Bullets,
    Code,
    Figure,
    Paragraph,
    Report,
    ReportError,
    Section,
    Table,
    environment,
    write_report,
)
from seqlab.reports.document import format_cell, inline_html, slug
from seqlab.reports.environment import cpu_model

# a valid 1x1 PNG (red pixel)
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def sample_report(tmp_path: Path) -> Report:
    (tmp_path / "plot.png").write_bytes(PNG_1X1)
    table = Table(
        "Results <b>",
        ["model", "params", "loss", "acc", "ok"],
        [
            ["lstm", 265474, 0.6794440681735675, 0.54375, True],
            ["gru <x>", 1000, math.nan, None, False],
            ["rnn", 12, math.inf, -math.inf, None],
        ],
        formats=[None, ",.0f", ".3f", ".1%", None],
    )
    return Report(
        "A <script>alert(1)</script> study",
        [
            Section("Summary", [Paragraph("Uses `a<b` and **bold** text <script>x</script>.")]),
            Section("Tables", [table, Bullets(["one `x`", "**two**"])]),
            Section("Plots", [Figure("plot.png", "A plot")]),
            Section("Config", [Code("a: 1\nb: '```'\n", title="config.yaml", language="yaml")]),
        ],
        subtitle="sub",
        data={"loss": math.nan, "nested": {"x": [1.0, math.inf]}, "path": tmp_path},
    )


def test_display_formats_numbers_none_nan_and_bools():
    table = Table("t", ["a", "b"], [[1.23456, 0.5], [None, math.nan], [True, 3]], formats=[".2f", ".1%"])
    assert table.display() == [["1.23", "50.0%"], ["—", "nan"], ["yes", "300.0%"]]
    # automatic: ints with thousands separators, floats to 4 significant digits
    assert format_cell(265474) == "265,474"
    assert format_cell(0.6794440681735675) == "0.6794"
    assert format_cell(12345.6) == "12,346"
    assert format_cell(5008.0) == "5,008"
    assert format_cell(999.94) == "999.9"
    assert format_cell(9999.9) == "10,000"
    assert format_cell(0.00001234) == "1.23e-05"
    assert format_cell(0.0) == "0"
    assert format_cell(-math.inf) == "-inf"
    assert format_cell(math.inf, ".3f") == "inf"
    assert format_cell("text", ".3f") == "text"


def test_table_rows_must_match_the_header():
    with pytest.raises(ReportError, match="row 1 has 1 cells, the header has 2"):
        Table("t", ["a", "b"], [[1, 2], [3]])
    with pytest.raises(ReportError, match="1 formats for 2 columns"):
        Table("t", ["a", "b"], [[1, 2]], formats=[".1f"])


def test_inline_markup_is_escaped_then_marked_up():
    assert inline_html("x <script>y</script> `a<b` **c&d**") == (
        "x &lt;script&gt;y&lt;/script&gt; <code>a&lt;b</code> <strong>c&amp;d</strong>"
    )
    assert slug("Final metrics (val)") == "final-metrics-val"
    assert slug("!!!") == "item"


def test_html_is_escaped_self_contained_and_findable(tmp_path):
    paths = write_report(sample_report(tmp_path), tmp_path)
    assert set(paths) == {"html", "md", "json"}
    text = paths["html"].read_text(encoding="utf-8")
    assert "<script" not in text  # every <script> in the input was text, so it is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for forbidden in ("http://", "https://", 'src="file', "src='file", "<link", "url("):
        assert forbidden not in text
    assert 'src="data:image/png;base64,' in text
    assert '<table class="report-table" id="table-results-b">' in text
    assert text.count('<figure class="report-figure">') == 1
    assert text.count('<section class="report-section"') == 4
    assert '<a href="#section-summary">Summary</a>' in text
    assert "Content-Security-Policy" in text
    # the cells as Table.display() shows them, numbers right-aligned
    assert '<td class="num">265,474</td>' in text and '<td class="num">nan</td>' in text
    assert '<td class="num">nan</td><td class="num">—</td><td>no</td>' in text  # — of a number column
    assert '<td class="num">-inf</td><td>—</td>' in text  # — of the yes/no column
    assert "<td>gru &lt;x&gt;</td>" in text


def test_json_is_strict_and_keeps_raw_and_display(tmp_path):
    report = sample_report(tmp_path)
    paths = write_report(report, tmp_path)
    text = paths["json"].read_text(encoding="utf-8")
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert doc["title"] == report.title and doc["subtitle"] == "sub"
    assert [s["title"] for s in doc["sections"]] == ["Summary", "Tables", "Plots", "Config"]
    table = doc["sections"][1]["blocks"][0]
    assert table["type"] == "table" and table["id"] == "table-results-b"
    assert table["rows"][1] == ["gru <x>", 1000, None, None, False]  # NaN -> null
    assert table["rows"][2][2:] == [None, None, None]
    assert table["display"][1] == ["gru <x>", "1,000", "nan", "—", "no"]
    assert table["display"][2][2:] == ["inf", "-inf", "—"]
    assert table["display"] == report.sections[1].blocks[0].display()
    assert doc["sections"][2]["blocks"][0] == {"type": "figure", "path": "plot.png", "caption": "A plot"}
    assert doc["sections"][3]["blocks"][0]["text"] == "a: 1\nb: '```'\n"
    assert doc["data"] == {"loss": None, "nested": {"x": [1.0, None]}, "path": str(tmp_path)}


def test_markdown_links_figures_and_fences_code(tmp_path):
    text = write_report(sample_report(tmp_path), tmp_path, stem="study")["md"].read_text(encoding="utf-8")
    assert (tmp_path / "study.md").is_file() and (tmp_path / "study.html").is_file()
    assert text.startswith("# A &lt;script&gt;alert(1)&lt;/script&gt; study\n")
    assert "![A plot](plot.png)" in text
    assert "| model | params | loss | acc | ok |" in text
    assert "|---|---:|---:|---:|---|" in text
    assert "| gru &lt;x&gt; | 1,000 | nan | — | no |" in text
    assert "Uses `a<b` and **bold** text &lt;script&gt;x&lt;/script&gt;." in text
    assert "````yaml\na: 1\nb: '```'\n````" in text  # the fence outgrows the backticks inside
    assert "- one `x`\n- **two**" in text


def test_missing_figure_is_a_clear_error_and_nothing_is_written(tmp_path):
    report = Report("r", [Section("Plots", [Figure("missing.png", "Loss curve")])])
    with pytest.raises(ReportError, match=r"figure 'Loss curve': no file .*missing\.png"):
        write_report(report, tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(ReportError, match="is not a PNG"):
        write_report(Report("r", [Section("P", [Figure("fake.png", "x")])]), tmp_path)


def test_duplicate_titles_get_unique_ids(tmp_path):
    tables = [
        Table("Same", ["a"], [[1]]),
        Table("Same", ["a"], [[2]]),
        Table("Other", ["a"], [[3]], id="mine"),
    ]
    report = Report("r", [Section("S", tables), Section("S", [])])
    doc = json.loads(write_report(report, tmp_path)["json"].read_text(encoding="utf-8"))
    assert [s["id"] for s in doc["sections"]] == ["section-s", "section-s-2"]
    assert [b["id"] for b in doc["sections"][0]["blocks"]] == ["table-same", "table-same-2", "mine"]


def test_environment_names_versions_and_machine():
    env = environment()
    import numpy
    import torch

    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["python"].count(".") == 2 and env["seqlab"]
    assert env["logical_cores"] >= 1 and env["torch_threads"] >= 1
    assert env["time_utc"].endswith("UTC")
    json.dumps(env, allow_nan=False)  # plain JSON values


def test_cpu_model_reads_cpuinfo(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\n")
    assert cpu_model(tmp_path / "cpuinfo") == "Example CPU @ 2.00GHz"
    (tmp_path / "arm").write_text("processor\t: 0\nModel\t: Raspberry Pi 4\n")
    assert cpu_model(tmp_path / "arm") == "Raspberry Pi 4"


def test_report_cli_names_what_a_directory_lacks(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no study.json" in err and "no config.yaml" in err
    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_report_cli_refuses_a_study_json_it_did_not_write(tmp_path, capsys):
    (tmp_path / "study.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a study written by seqlab compare (no preset, widths)" in capsys.readouterr().err
    (tmp_path / "study.json").write_text("{\n  oops")
    assert main(["report", str(tmp_path)]) == 2
    assert "study.json:2: invalid JSON" in capsys.readouterr().err
