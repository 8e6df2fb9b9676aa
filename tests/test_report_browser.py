"""`seqlab report RUN_DIR` on a real (tiny) training run: the HTML, Markdown and JSON agree, every
number shown is in the JSON, and headless Chromium renders every table and plot.

The browser test skips without Chromium or Playwright, unless ``SEQLAB_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where it fails instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from browser import check_html_in_browser, require_browser
from report_checks import assert_html_tables_match_json, json_tables
from seqlab.cli.main import main

TRAIN = [
    "train", "--task", "parity", "--model", "lstm", "--no-progress",
    "--set", "train.steps=40", "--set", "train.log_every=5", "--set", "train.eval_every=20",
    "--set", "train.threads=1", "--set", "train.tensorboard=false",
    "--set", "model.d_model=32", "--set", "task.test_max_len=60",
]  # fmt: skip
SECTIONS = ["Summary", "Final metrics", "Training curves", "Configuration", "Environment"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real parity run of 40 steps (a few seconds), trained through the CLI."""
    run = tmp_path_factory.mktemp("report") / "parity-lstm"
    assert main([*TRAIN, "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def report(run_dir) -> dict[str, Path]:
    assert main(["report", str(run_dir)]) == 0
    out = run_dir / "report"
    return {kind: out / f"report.{kind}" for kind in ("html", "md", "json")}


def test_run_report_files_agree_and_every_number_is_in_the_json(run_dir, report, capsys):
    # 1. the CLI printed what it wrote, and wrote it into RUN_DIR/report
    out = run_dir / "report"
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_by_length.png", "report.html", "report.json", "report.md", "training_curves.png",
    ]  # fmt: skip
    for png in ("training_curves.png", "accuracy_by_length.png"):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
    # 2. strict JSON with the run's own numbers
    doc = json.loads(report["json"].read_text(encoding="utf-8"), parse_constant=pytest.fail)
    assert [s["title"] for s in doc["sections"]] == SECTIONS
    final = json.loads((run_dir / "final_metrics.json").read_text(encoding="utf-8"))
    assert doc["data"]["final_metrics"] == final and doc["data"]["finished"] is True
    assert doc["data"]["curves"]["train"]["step"] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert doc["data"]["curves"]["validation"]["step"] == [20, 40]
    tables = json_tables(doc)
    metrics_table = next(t for t in tables.values() if t["caption"] == "Final metrics")
    scalars = {k: v for k, v in final.items() if isinstance(v, int | float)}
    assert {row[0]: row[1] for row in metrics_table["rows"]} == scalars
    config = next(b for s in doc["sections"] for b in s["blocks"] if b["type"] == "code")
    assert config["text"] == (run_dir / "config.yaml").read_text(encoding="utf-8")
    # 3. every cell of every HTML table is the JSON's display string; every number is its raw value
    numbers = assert_html_tables_match_json(report["html"].read_text(encoding="utf-8"), doc)
    assert len(tables) == 3
    assert numbers >= 20
    # 4. the Markdown shows the same cells and links the plots beside it
    md = report["md"].read_text(encoding="utf-8")
    assert "![" in md and "](training_curves.png)" in md and "](accuracy_by_length.png)" in md
    for row in metrics_table["display"]:
        assert f"| {row[0]} | {row[1]} |" in md


def test_report_of_an_unfinished_run_into_another_directory(run_dir, tmp_path, capsys):
    # the run as it was at step 20: its first lines of metrics, no final metrics yet
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(run_dir / "config.yaml", partial / "config.yaml")
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    upto = next(i for i, line in enumerate(lines) if '"eval"' in line)
    (partial / "metrics.jsonl").write_text("\n".join(lines[: upto + 1]) + '\n{"step": 2', encoding="utf-8")
    out = tmp_path / "elsewhere"
    assert main(["report", str(partial), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed and str(out / "training_curves.png") in printed
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert doc["data"]["finished"] is False and doc["data"]["final_metrics"]["step"] == 20
    assert "not finished" in (out / "report.md").read_text(encoding="utf-8")
    assert not (partial / "report").exists()


def test_report_in_headless_chromium(report, tmp_path):
    require_browser()
    screenshot = tmp_path / "report.png"
    seen = check_html_in_browser(report["html"], screenshot)
    assert seen["title"].startswith("Run report: parity-lstm")
    assert seen["tables"] == 3 and seen["images"] == 2 and seen["sections"] == len(SECTIONS)
    tables = json_tables(json.loads(report["json"].read_text(encoding="utf-8")))
    assert seen["rows"] == sum(len(t["rows"]) for t in tables.values())
    for table_id, cells in seen["cells"].items():  # as rendered, not just as written
        assert [c for row in tables[table_id]["display"] for c in row] == cells
    with Image.open(screenshot) as image:
        assert image.format == "PNG" and image.width == 1200 and image.height > 1500
