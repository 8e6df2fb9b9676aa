"""`seqlab compare`: matched widths, data files, bad input, a whole tiny study and its report,
a re-run that skips, and a study killed with SIGKILL that a re-run finishes with the same results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from browser import check_html_in_browser, require_browser
from report_checks import assert_html_tables_match_json
from seqlab.cli.main import main
from seqlab.errors import ConfigError
from seqlab.evaluation.measure import MeasureSettings
from seqlab.evaluation.study import (
    DEFAULT_MODELS,
    block_params,
    data_kind,
    match_width,
    preset,
    run_study,
    select,
    width_overrides,
    with_data,
)

TINY_MEASURE = MeasureSettings(
    lengths=(16, 64), batch_tokens=128, contexts=(8, 32), decode_tokens=2, grad_length=16, repeats=1
)
SMALL = ["parity:task.test_max_len=48", "charlm:task.eval_windows=8", "train.batch_size=8"]


# -- widths at the parameter budget -----------------------------------------------------------------


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_every_default_model_is_scaled_to_the_budget(model):
    width = match_width(model, 50_000)
    assert abs(width.block_params - 50_000) / 50_000 < 0.15, width
    assert width.d_model % 8 == 0
    # the next width up or down is no closer (the bisection found the nearest)
    for d in (width.d_model - 8, width.d_model + 8):
        if d > 0:
            other = block_params(model, width_overrides(model, d))
            assert abs(other - 50_000) >= abs(width.block_params - 50_000)


def test_ffn_widths_scale_with_the_model_width():
    # the transformer preset: d 128, FFN 512 -> at d 64 the FFN is 256 (the same 4x)
    assert width_overrides("transformer", 64) == ("model.d_model=64", "model.d_ff=256")
    assert width_overrides("lstm", 40) == ("model.d_model=40",)
    assert width_overrides("lstm-transformer", 32) == (
        "model.d_model=32",
        "model.ffn_by_type.attention.d_ff=128",
    )


# -- --data and names ---------------------------------------------------------------------------------


def test_data_files_pick_their_task(tmp_path):
    text = tmp_path / "poems.txt"
    text.write_text("so much depends upon a red wheel barrow\n" * 20)
    assert data_kind(text) == ("text", (f"task.text={text}",))
    labelled = tmp_path / "reviews.csv"
    labelled.write_text("Text,Label\ngood film,pos\nbad film,neg\n")
    kind, sets = data_kind(labelled)
    assert kind == "table" and "task.text_column=Text" in sets and "task.label_column=Label" in sets
    series = tmp_path / "load.csv"
    series.write_text("date,load,temp\n2020-01-01,1.5,3\n2020-01-02,,4\n")
    assert data_kind(series) == ("series", (f"task.csv={series}", "task.timestamp=date"))
    study = with_data(preset("quick"), series)
    forecast = next(t for t in study.tasks if t.task == "forecast")
    assert forecast.overrides == (f"task.csv={series}", "task.timestamp=date")  # the built-in dataset is gone


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "date,value\n2020,1\n2021,lots\n", "column 'value' holds 'lots' on line 3"),
        ("ragged.csv", "a,b\n1,2\n3\n", "ragged.csv:3: expected 2 fields"),
        ("empty.csv", "", "empty.csv:1: the file is empty"),
        ("data.json", "[]", "expected a .txt text file or a .csv / .tsv table"),
    ],
)
def test_a_data_file_of_the_wrong_shape_is_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        with_data(preset("quick"), path)


def test_data_for_a_task_left_out_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("value\n1\n2\n")
    with pytest.raises(ConfigError, match="forecast task, which --tasks left out"):
        with_data(select(preset("quick"), None, ["parity"]), path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "lstm", "lstmm"], "unknown or unsuitable model 'lstmm'; .*gru, ln-lstm, lstm,"),
        (["--models", "seq2seq"], "unknown or unsuitable model 'seq2seq'"),
        (["--tasks", "parity", "sentiment"], "unknown study task 'sentiment'; choose from: parity, charlm"),
        (["--preset", "huge"], "unknown study preset 'huge'; choose from: quick, standard, full"),
        (["--steps", "0"], "--steps: expected a positive number"),
        (["--set", "model.nope=1", "--models", "lstm", "--tasks", "parity"], "nope"),
    ],
)
def test_bad_input_fails_before_any_work(tmp_path, capsys, argv, message):
    import re

    out = tmp_path / "study"
    assert main(["compare", "--out", str(out), *argv]) != 0
    assert re.search(message, capsys.readouterr().err)
    assert not (out / "runs").exists() and not (out / "measure").exists()


def test_a_bad_data_file_fails_before_any_work(tmp_path, capsys):
    path = tmp_path / "series.csv"
    path.write_text("value\n1\nx\n")
    out = tmp_path / "study"
    assert main(["compare", "--out", str(out), "--data", str(path)]) != 0
    assert "column 'value' holds 'x' on line 3" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name", ["quick", "standard", "full"])
def test_every_preset_resolves_and_loads_its_data(name):
    from seqlab.evaluation.study import check_study, matched_widths, study_suite

    study = select(preset(name), ["lstm", "transformer"], None)
    widths = matched_widths(study.models, study.target_params)
    check_study(study, study_suite(study, widths))  # every run's config, every task's data


def test_a_users_series_replaces_the_forecasting_data(tmp_path):
    import datetime
    import math

    from seqlab.evaluation.study import check_study, matched_widths, study_suite

    path = tmp_path / "load.csv"
    day = datetime.date(2020, 1, 1)
    rows = [f"{day + datetime.timedelta(days=i)},{10 + math.sin(i / 5):.4f}" for i in range(400)]
    path.write_text("date,load\n" + "\n".join(rows) + "\n")
    study = with_data(select(preset("quick"), ["lstm"], ["forecast"]), path)
    check_study(study, study_suite(study, matched_widths(study.models, study.target_params)))
    short = tmp_path / "short.csv"
    short.write_text("load\n1\n2\n3\n")
    study = with_data(select(preset("quick"), ["lstm"], ["forecast"]), short)
    with pytest.raises(ConfigError, match="short.csv"):
        check_study(study, study_suite(study, matched_widths(study.models, study.target_params)))


# -- a whole (tiny) study ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    study = select(preset("quick"), ["lstm", "transformer"], ["parity", "charlm", "forecast"])
    study = replace(study, budget="steps", steps=12, measure=TINY_MEASURE, overrides=SMALL)
    out = tmp_path_factory.mktemp("compare") / "study"
    run_study(study, out, jobs=2)
    return out


def test_the_study_writes_every_part_of_its_report(study_dir):
    doc = json.loads((study_dir / "report.json").read_text(), parse_constant=pytest.fail)
    table = next(b for s in doc["sections"] for b in s["blocks"] if b.get("id") == "comparative-table")
    assert [row[0] for row in table["rows"]] == ["lstm", "transformer"]
    for row in table["rows"]:  # every cell measured: no gaps
        assert all(cell is not None for cell in row), row
    header = table["header"]
    tps = header.index("train tokens/s (T=64)")
    assert all(row[tps] > 0 for row in table["rows"])
    state = header.index("state (floats, 32 tokens)")
    lstm, transformer = table["rows"]
    assert lstm[state] == lstm[2]  # a recurrence's state does not grow ...
    assert transformer[state] == 32 * transformer[2]  # ... a KV cache holds every token
    # the summary names the models and their numbers
    summary = next(s for s in doc["sections"] if s["title"] == "Which to use")["blocks"][0]["items"]
    assert any("char-LM" in line and "`lstm`" in line for line in summary)
    # figures: loss curves per task, accuracy by length, throughput, memory, latency, gradient flow,
    # attention (the transformer's char-LM run) and forecasts
    figures = {Path(b["path"]).name for s in doc["sections"] for b in s["blocks"] if b["type"] == "figure"}
    assert figures == {
        "loss_parity.png", "loss_charlm.png", "loss_forecast.png", "accuracy_by_length_parity.png",
        "throughput.png", "memory.png", "latency.png", "gradient_flow.png", "attention.png", "forecasts.png",
    }  # fmt: skip
    samples = next(s for s in doc["sections"] if s["title"] == "Samples")
    assert [b["title"] for b in samples["blocks"] if b["type"] == "code"] == ["lstm", "transformer"]
    assert doc["data"]["analysis"]["samples"]["lstm"]["text"].startswith("ROMEO:")
    # every number shown in the HTML is in the JSON
    assert assert_html_tables_match_json((study_dir / "report.html").read_text(), doc) > 50
    md = (study_dir / "report.md").read_text()
    assert "| lstm |" in md and "](report/throughput.png)" in md


def test_a_rerun_skips_everything_and_seqlab_report_rewrites_the_page(study_dir, capsys):
    before = (study_dir / "results.jsonl").read_text()
    stamp = (study_dir / "measure" / "lstm.json").stat().st_mtime
    study = select(preset("quick"), ["lstm", "transformer"], ["parity", "charlm", "forecast"])
    study = replace(study, budget="steps", steps=12, measure=TINY_MEASURE, overrides=SMALL)
    result = run_study(study, study_dir, jobs=2)
    assert result["suite"].counts == {"trained": 0, "resumed": 0, "skipped": 6, "failed": 0}
    assert (study_dir / "measure" / "lstm.json").stat().st_mtime == stamp
    records = [json.loads(line) for line in (study_dir / "results.jsonl").read_text().splitlines()]
    assert [r["metrics"] for r in records] == [json.loads(line)["metrics"] for line in before.splitlines()]
    (study_dir / "report.html").unlink()
    assert main(["report", str(study_dir)]) == 0
    assert (study_dir / "report.html").is_file() and "report.html" in capsys.readouterr().out


def test_another_study_in_the_same_directory_is_refused(study_dir):
    study = select(preset("quick"), ["lstm", "gru"], ["parity"])
    with pytest.raises(ConfigError, match="holds another study"):
        run_study(replace(study, measure=TINY_MEASURE), study_dir)


def test_the_study_report_in_headless_chromium(study_dir, tmp_path):
    require_browser()
    seen = check_html_in_browser(study_dir / "report.html", tmp_path / "study.png")
    assert seen["title"] == "seqlab comparison study"
    assert seen["images"] == 10 and seen["tables"] >= 8
    assert "comparative-table" in seen["cells"] and "lstm" in seen["cells"]["comparative-table"]


def test_progress_of_a_run_comes_from_its_metrics_log(tmp_path):
    from seqlab.evaluation.suite import run_progress

    assert run_progress(tmp_path) == "starting"  # no log yet
    lines = ['{"event": "start", "step": 0}', '{"step": 25, "loss": 2.5, "time_s": 1.4}']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 50, "lo')  # cut mid-write
    assert run_progress(tmp_path) == "step 25, 1 s"


# -- interrupted and re-run ----------------------------------------------------------------------------


# `seqlab compare` itself, with the quick preset's measurements shrunk to TINY_MEASURE
DRIVER = f"""
import sys
from dataclasses import asdict, replace
from seqlab.evaluation import study
from seqlab.evaluation.measure import MeasureSettings
quick = study.PRESETS["quick"]
study.PRESETS["quick"] = lambda: replace(quick(), measure=MeasureSettings(**{asdict(TINY_MEASURE)!r}))
from seqlab.cli.main import main
sys.exit(main(["compare", *sys.argv[1:]]))
"""


def _compare(out: Path) -> list[str]:
    sets = [a for s in SMALL for a in ("--set", s)]
    return [
        sys.executable, "-c", DRIVER, "--out", str(out), "--models", "lstm",
        "--tasks", "parity", "forecast", "--steps", "40", "--jobs", "1", *sets,
        "--set", "forecast:train.steps=400",  # long enough to be killed in the middle
    ]  # fmt: skip


def test_a_study_killed_mid_run_finishes_on_a_rerun_with_the_same_results(tmp_path):
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    # 1. a study SIGKILLed while its second run trains (the first has finished)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_compare(cut), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    second = cut / "runs" / "forecast" / "lstm" / "seed-0"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        log = second / "metrics.jsonl"
        if log.is_file() and log.read_text().count("\n") >= 2:  # the start line and a logged step
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (second / "final_metrics.json").exists()
    # 2. the re-run skips the finished run and the measurements, and finishes the other
    rerun = subprocess.run(_compare(cut), capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "parity/lstm/seed-0: finished earlier, skipped" in rerun.stderr
    assert "1 skipped" in rerun.stderr and "measured earlier, skipped" in rerun.stderr
    assert "forecast/lstm/seed-0 (resume" in rerun.stderr
    # 3. with the numbers of the same run trained without a break (deterministic: a steps budget)
    ref = tmp_path / "ref"
    assert main(["train", "--config", str(second / "config.yaml"), "--out", str(ref), "--no-progress"]) == 0
    resumed, whole = (json.loads((d / "final_metrics.json").read_text()) for d in (second, ref))
    assert resumed.pop("train_time_s") > 0 and whole.pop("train_time_s") > 0  # wall-clock, not a result
    assert resumed == whole
