"""``seqlab suite``: a grid of real ``seqlab train`` runs, skipped when finished, resumed when cut short."""

from __future__ import annotations

import json
import shutil

import pytest

from seqlab.cli.main import main
from seqlab.errors import ConfigError
from seqlab.evaluation.plots import moving_average, plot_by_length
from seqlab.evaluation.suite import RunSpec, Suite, long_range_suite, run_suite, summary_table, train_command

TINY = [
    "train.steps=4",
    "train.checkpoint_every=2",
    "train.threads=1",
    "model.d_model=16",
    "task.test_max_len=44",
    "task.val_size=32",
]
TASKS, MODELS = ["parity", "even-pairs"], ["lstm", "transformer"]


def tiny_suite() -> Suite:
    preset = long_range_suite()  # its budget and lengths, made tiny by the later overrides
    return Suite(TASKS, MODELS, [0], preset.overrides + TINY, name="tiny")


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    lines: list[str] = []
    result = run_suite(tiny_suite(), out, jobs=2, cores=2, report=lines.append)
    assert result.counts == {"trained": 4, "resumed": 0, "skipped": 0, "failed": 0}
    assert sum(line.startswith("start ") for line in lines) == 4
    assert any(line.startswith("[4/4] ") and "ETA" in line for line in lines)
    return out


def read_results(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_results_hold_every_run_with_accuracy_by_length(suite_dir):
    records = read_results(suite_dir)
    assert [(r["task"], r["model"]) for r in records] == [(t, m) for t in TASKS for m in MODELS]
    for r in records:
        assert r["status"] == "ok" and r["error"] is None
        final = json.loads((suite_dir / r["run_dir"] / "final_metrics.json").read_text())
        assert r["metrics"] == final and r["value"] == final["test_acc"]
        assert final["step"] == 4
        # the preset's test lengths start at 41; the tiny override ends them at 44
        assert sorted(map(int, final["test_acc_by_length"])) == [41, 42, 43, 44]
        config = (suite_dir / r["run_dir"] / "config.yaml").read_text()
        assert "test_per_length: 2" in config and "threads: 1" in config


def test_table_has_a_cell_per_task_and_model(suite_dir):
    table = (suite_dir / "table.md").read_text()
    assert "| task | test lengths | chance | lstm | transformer |" in table
    records = {(r["task"], r["model"]): r["value"] for r in read_results(suite_dir)}
    for task in TASKS:
        cells = [f"{100 * records[task, m]:.1f}" for m in MODELS]
        assert f"| {task} | 41–44 | 50.0 | {' | '.join(cells)} |" in table


def test_per_length_plots_are_png_images(suite_dir):
    from matplotlib.image import imread

    for task in TASKS:
        path = suite_dir / f"per_length_{task}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = imread(path)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0.01  # not blank


def test_rerun_skips_finished_runs(suite_dir):
    finals = sorted(suite_dir.glob("runs/*/*/seed-0/final_metrics.json"))
    stamps = [p.stat().st_mtime_ns for p in finals]
    lines: list[str] = []
    result = run_suite(tiny_suite(), suite_dir, report=lines.append)
    assert result.counts == {"trained": 0, "resumed": 0, "skipped": 4, "failed": 0}
    assert not any(line.startswith("start ") for line in lines)
    assert [p.stat().st_mtime_ns for p in finals] == stamps
    assert len(read_results(suite_dir)) == 4


def test_an_interrupted_run_is_resumed_where_it_stopped(suite_dir, tmp_path):
    # a copy of the suite with one run cut back to the state of a kill between steps 2 and 4:
    # checkpoint step 2 saved, no final model, no final metrics
    out = tmp_path / "copy"
    shutil.copytree(suite_dir, out)
    run = out / "runs" / "parity" / "lstm" / "seed-0"
    before = json.loads((run / "final_metrics.json").read_text())
    for name in ("final_metrics.json", "checkpoint", "checkpoints/step-00000004"):
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    lines: list[str] = []
    result = run_suite(tiny_suite(), out, report=lines.append)
    assert result.counts == {"trained": 0, "resumed": 1, "skipped": 3, "failed": 0}
    assert "start parity/lstm/seed-0 (resume from step 2)" in lines
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e.get("event") == "resume"] == [2]
    after = json.loads((run / "final_metrics.json").read_text())
    assert after["step"] == 4
    for key in ("val_acc", "test_acc", "test_loss"):  # an exact resume: the same model as before
        assert after[key] == pytest.approx(before[key], abs=1e-6)
    record = next(r for r in read_results(out) if r["task"] == "parity" and r["model"] == "lstm")
    assert record["action"] == "resumed" and record["wall_s"] > record["run_wall_s"]


def test_changed_settings_are_refused_before_anything_runs(suite_dir):
    changed = tiny_suite()
    changed.overrides.append("model.d_model=24")
    stamp = (suite_dir / "results.jsonl").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"model\.d_model: 16 -> 24"):
        run_suite(changed, suite_dir)
    assert (suite_dir / "results.jsonl").stat().st_mtime_ns == stamp


def test_unknown_names_fail_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match="unknown task 'nope'; choose from: .*parity"):
        run_suite(Suite(["parity", "nope"], ["lstm"]), out)
    with pytest.raises(ConfigError, match="unknown model 'lstn'; choose from: .*lstm"):
        run_suite(Suite(["parity"], ["lstn"]), out)
    assert main(["suite", "--tasks", "parity", "--models", "lstn", "--out", str(out)]) == 2
    assert "unknown model 'lstn'" in capsys.readouterr().err
    assert main(["suite", "nope", "--out", str(out)]) == 2
    assert "unknown suite 'nope'; choose from: long-range" in capsys.readouterr().err
    # a bad --set key fails when the first run's config is resolved, before any training
    assert (
        main(["suite", "--tasks", "parity", "--models", "lstm", "--set", "model.nope=1", "--out", str(out)])
        == 2
    )
    assert "nope" in capsys.readouterr().err
    assert main(["suite", "--set", "lstn:model.d_model=8", "--out", str(out)]) == 2
    assert "'lstn' is neither a task nor a model" in capsys.readouterr().err
    assert not out.exists()


def test_scoped_overrides_seed_last_and_threads_first(tmp_path):
    suite = Suite(
        ["parity", "copy"], ["lstm"], [3], ["train.steps=5", "copy:task.max_len=40", "lstm:train.lr=0.01"]
    )
    parity, copy = suite.specs()
    assert parity.overrides == ("train.steps=5", "train.lr=0.01", "train.seed=3")
    assert copy.overrides == ("train.steps=5", "task.max_len=40", "train.lr=0.01", "train.seed=3")
    cmd = train_command(copy, tmp_path, "start", threads=2)
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets[0] == "train.threads=2" and sets[1:] == list(copy.overrides)  # a user's threads win
    resume = train_command(copy, tmp_path, "resume", 1)
    assert resume[resume.index("--resume") + 1] == str(tmp_path) and "--out" not in resume
    # what a run is: parsed values, the last of a key winning, threads (the runner's choice) left out
    spec = RunSpec("a", "b", 0, ("x.y=1", "train.threads=4", "x.y=2", "train.seed=0"))
    assert spec.settings() == {"x.y": 2, "train.seed": 0}


def test_long_range_preset_sets_lengths_only_where_a_task_has_them():
    suite = long_range_suite()
    assert len(suite.tasks) == 13 and suite.models == [
        "rnn",
        "lstm",
        "gru",
        "transformer",
        "slstm",
        "mlstm",
        "xlstm",
    ]
    specs = {s.task: s for s in suite.specs() if s.model == "lstm"}
    assert "task.test_max_len=500" in specs["duplicate-string"].overrides
    assert "task.max_len=40" in specs["copy"].overrides  # copy's own default trains on 1-20
    assert not any(o.startswith("task.") for o in specs["adding"].overrides)  # its own T = 50 / 100
    assert [o for o in specs["mqar"].overrides if o.startswith("task.")] == ["task.vocab_size=512"]


def test_summary_table_best_and_mean_of_seeds():
    def rec(task, model, seed, value, error=None):
        status = "failed" if error else "ok"
        return {
            "task": task,
            "model": model,
            "seed": seed,
            "status": status,
            "value": value,
            "metrics": {},
            "error": error,
        }

    records = [
        rec("parity", "lstm", 0, 0.98),
        rec("parity", "lstm", 1, 0.62),  # best 98.0, mean (98 + 62) / 2 = 80.0
        rec("parity", "rnn", 0, None, "exit status 2: error: boom"),
        rec("parity", "rnn", 1, None, "exit status 2: error: boom"),
        rec("copy", "lstm", 0, 0.5),
        rec("copy", "lstm", 1, None, "exit status 1: killed"),
        rec("copy", "rnn", 0, 0.25),
        rec("copy", "rnn", 1, 0.75),
    ]
    table = summary_table(records, ["parity", "copy"], ["rnn", "lstm"], "test_acc", {"parity": 0.5}, "t")
    assert "best / mean over seeds 0, 1" in table
    assert "| parity |  | 50.0 | — | 98.0 / 80.0 |" in table
    assert "| copy |  |  | 75.0 / 50.0 | 50.0 / 50.0* |" in table
    assert "- copy/lstm/seed-1: exit status 1: killed" in table


def test_moving_average_and_plot(tmp_path):
    assert moving_average([0, 0, 3, 0, 0], 3) == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert moving_average([1, 2], 1) == [1.0, 2.0]
    path = plot_by_length({"a": {41: 1.0, 43: 0.5, 42: 0.75}}, tmp_path / "p" / "x.png", "t", chance=0.5)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_run_held_by_another_process_is_refused(suite_dir):
    import fcntl

    run = suite_dir / "runs" / "parity" / "lstm" / "seed-0"
    (run / "final_metrics.json").rename(run / "final_metrics.json.aside")  # unfinished: would resume
    try:
        with open(run / ".suite.lock", "a") as held:  # as a trainer left by a killed suite holds it
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(ConfigError, match="parity/lstm/seed-0 are being trained by another process"):
                run_suite(tiny_suite(), suite_dir)
    finally:
        (run / "final_metrics.json.aside").rename(run / "final_metrics.json")


def _lock_free(path) -> bool:
    import fcntl

    with open(path, "a") as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


@pytest.mark.slow
def test_sigkill_of_the_suite_then_rerun_finishes_without_redoing_work(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    run = out / "runs" / "parity" / "lstm" / "seed-0"
    sets = [*TINY, "train.steps=600", "train.checkpoint_every=50"]
    cmd = [
        sys.executable,
        "-m",
        "seqlab",
        "suite",
        "--tasks",
        "parity",
        "--models",
        "lstm",
        "--out",
        str(out),
    ]
    suite = subprocess.Popen(cmd + [a for s in sets for a in ("--set", s)], start_new_session=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "step-00000100").is_dir():
        assert time.monotonic() < deadline and suite.poll() is None
        time.sleep(0.05)
    os.kill(suite.pid, signal.SIGKILL)  # the suite dies; its trainer goes on, holding the lock
    suite.wait()
    again = Suite(["parity"], ["lstm"], [0], long_range_suite().overrides + sets)
    with pytest.raises(ConfigError, match="being trained by another process"):
        run_suite(again, out)
    os.killpg(suite.pid, signal.SIGKILL)  # now the trainer too; wait until its lock is released
    while not _lock_free(run / ".suite.lock"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lines: list[str] = []
    result = run_suite(again, out, report=lines.append)
    assert result.counts == {"trained": 0, "resumed": 1, "skipped": 0, "failed": 0}
    resumed_from = int(lines[0].rsplit(" ", 1)[1].rstrip(")"))
    assert resumed_from >= 100
    assert json.loads((run / "final_metrics.json").read_text())["step"] == 600


def _finished_run(out, spec):
    """A fake finished run of ``spec`` under ``out`` (config, final metrics, the suite's record)."""
    run = out / spec.path
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("task: {}\n")
    (run / "final_metrics.json").write_text(json.dumps({"test_acc": 0.5, "step": 2}))
    info = {"task": spec.task, "model": spec.model, "seed": spec.seed, "overrides": list(spec.overrides)}
    (run / "suite-run.json").write_text(json.dumps(info | {"wall_s": 1.0}))
    return run


def _failing_trainer(monkeypatch, output: str):
    """Every trainer the suite starts prints ``output`` and exits with status 1 (as a crash would)."""
    import sys

    import seqlab.evaluation.suite as suite_module

    code = f"import sys; print({output!r}); sys.exit(1)"
    monkeypatch.setattr(suite_module, "train_command", lambda *args: [sys.executable, "-c", code])


def test_a_failed_resume_leaves_no_stale_final_metrics_to_skip_on(tmp_path, monkeypatch):
    # a finished 2-step run; the suite asks for 4 steps -> resume; the resume dies -> the next
    # re-run must resume again, not skip the run with the 2-step run's metrics
    old = Suite(["parity"], ["lstm"], [0], ["train.steps=2"])
    run = _finished_run(tmp_path, old.specs()[0])
    longer = Suite(["parity"], ["lstm"], [0], ["train.steps=4"])
    _failing_trainer(monkeypatch, "killed")
    result = run_suite(longer, tmp_path, cores=1, report=lambda line: None)
    assert result.counts == {"trained": 0, "resumed": 1, "skipped": 0, "failed": 1}
    assert not (run / "final_metrics.json").exists()
    again = run_suite(longer, tmp_path, cores=1, report=lambda line: None)
    assert again.counts["skipped"] == 0 and again.counts["failed"] == 1
    assert read_results(tmp_path)[0]["value"] is None


def test_a_failure_reports_its_own_error_not_an_earlier_runs(tmp_path, monkeypatch):
    spec = Suite(["parity"], ["lstm"], [0], ["train.steps=2"]).specs()[0]
    run = _finished_run(tmp_path, spec)
    (run / "final_metrics.json").unlink()  # interrupted: resumed
    (run / "train.log").write_text("error: an old failure, since fixed\n")
    _failing_trainer(monkeypatch, "Killed")
    run_suite(Suite(["parity"], ["lstm"], [0], ["train.steps=2"]), tmp_path, cores=1, report=print)
    assert read_results(tmp_path)[0]["error"] == "exit status 1: Killed"


def test_the_report_builds_each_task_once(tmp_path, monkeypatch):
    import seqlab.evaluation.suite as suite_module
    from seqlab.evaluation.suite import write_report
    from seqlab.tasks import build_task

    built: list[str] = []

    def run_task(run_dir):
        built.append(str(run_dir))
        return build_task("parity", {})

    monkeypatch.setattr(suite_module, "_run_task", run_task)
    suite = Suite(["parity"], ["lstm", "gru"], [0, 1])
    records = [
        {"task": "parity", "model": m, "seed": s, "run_dir": f"runs/parity/{m}/seed-{s}", "status": "ok",
         "value": 0.5, "metrics": {"test_acc": 0.5}, "error": None}
        for m in suite.models for s in suite.seeds
    ]  # fmt: skip
    write_report(tmp_path, records, suite)
    assert len(built) == 1
    assert "| parity |  | 50.0 | 50.0 / 50.0 | 50.0 / 50.0 |" in (tmp_path / "table.md").read_text()
