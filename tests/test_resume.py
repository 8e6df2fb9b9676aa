"""Runs that never lose work: kill -9 and --resume bit for bit, corrupt checkpoints, bad input.

Acceptance tests of the training engine's resumption (real ``seqlab train`` subprocesses on the
built-in corpus, tiny models): a run killed with SIGKILL at a random step and resumed ends with
the same parameters, bit for bit, as a run never interrupted; a corrupt checkpoint is reported
and skipped; bad input is a one-line error that leaves an existing run untouched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli.main import main
from seqlab.config import load_file as load_config
from seqlab.errors import RunDirError
from seqlab.models import build_model
from seqlab.tasks import build_task
from seqlab.training import ExperimentConfig
from seqlab.training.checkpoint import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STEPS, CHECKPOINT_EVERY, EVAL_EVERY = 40, 5, 20
TASK_SETS = ["--set", "task.seq_len=64", "--set", "task.eval_windows=4"]
MODEL_SETS = ["--set", "model.d_model=32", "--set", "model.dropout=0.1"]  # dropout: the RNG matters
# ~10 ms a step on one thread: slow enough to kill mid-run, fast enough for a test
TRAIN = {
    "train.batch_size": 32,
    "train.threads": 1,
    "train.steps": STEPS,
    "train.eval_every": EVAL_EVERY,
    "train.checkpoint_every": CHECKPOINT_EVERY,
    "train.log_every": 1,
    "train.keep_last": 3,
}
TRAIN_SETS = [arg for key, value in TRAIN.items() for arg in ("--set", f"{key}={value}")]
RUN = ["--task", "charlm", "--model", "lstm", *TASK_SETS, *MODEL_SETS, *TRAIN_SETS, "--no-progress"]
WEIGHTS = Path("checkpoint") / "model.safetensors"


def seqlab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m seqlab.cli.main ARGS`` in a subprocess, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab.cli.main", *args], capture_output=True, text=True, env=ENV, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path, name: Path = WEIGHTS) -> dict[str, torch.Tensor]:
    return load_file(run / name)


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key}: max |diff| {(a[key] - b[key]).abs().max():.3g}"


def assert_one_record_per_step(run: Path) -> None:
    """Every step 1..STEPS logged exactly once; evaluations at EVAL_EVERY and the end, once each."""
    recs = records(run)
    assert [r["step"] for r in recs if "loss" in r] == list(range(1, STEPS + 1))
    assert [r["step"] for r in recs if "eval" in r] == [EVAL_EVERY, STEPS]
    assert [r for r in recs if r.get("event") == "start"] == [recs[0]]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The reference: the same command, never interrupted (tests copy it before changing it)."""
    run = tmp_path_factory.mktemp("reference") / "run"
    seqlab("train", *RUN, "--out", str(run))
    return run


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# -- 1. kill -9 at a random step, resume, same bits ---------------------------------------------


def train_until_killed(args: list[str], run: Path, step: int) -> int:
    """Start ``seqlab ARGS``; SIGKILL it once ``metrics.jsonl`` shows ``step`` trained (by this
    process: after its "resume" record when resuming). Returns the last step logged at the kill."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqlab.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    resuming, last = "--resume" in args, 0
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                lines = (run / "metrics.jsonl").read_text().splitlines()
            except FileNotFoundError:
                lines = []
            ours = not resuming
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line being written
                    continue
                ours = ours or record.get("event") == "resume"
                if ours and "loss" in record:
                    last = record["step"]
            if last >= step:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        proc.wait(timeout=60)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"the run was meant to be killed at step {step} but ended with {proc.returncode}:\n{stderr}"
    )
    return last


def test_kill_9_at_random_steps_then_resume_is_bitwise_identical(finished, tmp_path):
    rng = random.Random(int(os.environ.get("SEQLAB_KILL_SEED", "20240607")))
    first = rng.randint(7, 18)
    second = rng.randint(first + 5, 28)  # > the first kill, and in the second process's own steps
    print(f"kill steps: {first}, then {second} (SEQLAB_KILL_SEED picks others)")
    run = tmp_path / "run"

    # 1. train, kill -9; resume, kill -9 again; resume to the end
    at = train_until_killed(["train", *RUN, "--out", str(run)], run, first)
    again = train_until_killed(["train", "--resume", str(run), "--no-progress"], run, second)
    print(f"killed after step {at}, then after step {again}")
    assert not (run / "final_metrics.json").exists()
    seqlab("train", "--resume", str(run), "--no-progress")

    # 2. the same parameters as the run that never stopped, bit for bit (dropout, data, Adam, lr)
    assert_bitwise_equal(weights(run), weights(finished))
    assert json.loads((run / "final_metrics.json").read_text())["step"] == STEPS

    # 3. metrics.jsonl reads as if the run had never stopped: each step once, the same losses
    assert_one_record_per_step(run)
    losses = {r["step"]: r["loss"] for r in records(run) if "loss" in r}
    assert losses == {r["step"]: r["loss"] for r in records(finished) if "loss" in r}
    resumes = [r for r in records(run) if r.get("event") == "resume"]
    assert len(resumes) == 2
    for record, killed in zip(resumes, [at, again], strict=True):
        step = record["step"]
        assert step % CHECKPOINT_EVERY == 0 and 0 < step <= killed
        assert Path(record["checkpoint"]).name == f"step-{step:08d}"

    # 4. no half-written checkpoint directory is left behind
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".step-")]


# -- 2. a truncated checkpoint is reported and skipped --------------------------------------------


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def test_truncated_checkpoints_are_skipped_with_a_warning(finished, tmp_path):
    run = copy_run(finished, tmp_path)
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name.startswith("step-")) == [
        "step-00000030",
        "step-00000035",
        "step-00000040",
    ]
    newest, older = ckpts / "step-00000040" / "trainer.safetensors", ckpts / "step-00000035" / WEIGHTS.name
    truncate(newest)
    truncate(older)

    # 1. loading a truncated checkpoint is a clear error naming the file
    config = ExperimentConfig.from_dict(load_config(run / "config.yaml"))
    model = build_model(config.model, build_task("charlm", config.task.options).io)
    for path in (newest, older):
        with pytest.raises(RunDirError, match="corrupt checkpoint") as err:
            load_checkpoint(path.parent, model)
        assert str(path) in str(err.value)

    # 2. --resume warns about each corrupt file and continues from the newest good checkpoint
    proc = seqlab("train", "--resume", str(run), "--no-progress")
    warnings = [line for line in proc.stderr.splitlines() if "corrupt checkpoint" in line]
    assert len(warnings) == 2, proc.stderr
    assert str(newest) in warnings[0] and str(older) in warnings[1]
    assert all(line.startswith("WARNING") for line in warnings)
    (resume,) = [r for r in records(run) if r.get("event") == "resume"]
    assert resume["step"] == 30 and Path(resume["checkpoint"]).name == "step-00000030"

    # 3. nothing is lost: the replayed steps give the same parameters, and good checkpoints again
    assert_bitwise_equal(weights(run), weights(finished))
    assert_one_record_per_step(run)
    for step in (35, 40):
        load_checkpoint(ckpts / f"step-{step:08d}", model)


# -- 3. bad input: clear errors, and nothing lost --------------------------------------------------


def run_cli(capsys, *args: str) -> tuple[int, str]:
    """The CLI in this process (fast: torch is already imported); returns (exit code, stderr)."""
    code = main(list(args))
    return code, capsys.readouterr().err


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "args,differing",
    [
        (["--set", "model.d_model=64"], "model.d_model"),
        (["--task", "charlm", "--model", "gru", *TASK_SETS, *MODEL_SETS], "model.layer_types"),
        (["--set", "task.seq_len=16"], "task.seq_len"),
    ],
)
def test_resume_with_another_model_or_task_is_refused(finished, tmp_path, capsys, args, differing):
    run = copy_run(finished, tmp_path)
    before = snapshot(run)
    code, err = run_cli(capsys, "train", "--resume", str(run), *args, "--no-progress")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: cannot resume {run}")
    assert f"in {differing};" in err
    assert snapshot(run) == before


def test_resume_with_only_another_model_preset_names_the_model_keys(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    code, err = run_cli(capsys, "train", "--resume", str(run), "--model", "gru", "--no-progress")
    assert code == 2
    assert "model.layer_types" in err, err


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.optimizer=adamax", "train.optimizer: expected one of 'adamw', 'adam', 'sgd', 'rmsprop'"),
        (
            "train.schedule=cosin",
            "train.schedule: expected one of 'cosine', 'linear', 'noam', 'constant', 'plateau'",
        ),
        ("train.lr=-0.001", "train.lr: expected a positive number, got -0.001"),
        ("train.lr=0", "train.lr: expected a positive number"),
    ],
)
@pytest.mark.parametrize("resume", [False, True])
def test_bad_train_settings_list_the_choices(finished, tmp_path, capsys, override, message, resume):
    run = copy_run(finished, tmp_path)
    before = snapshot(run)
    where = ["--resume", str(run)] if resume else [*RUN, "--out", str(run), "--overwrite"]
    code, err = run_cli(capsys, "train", *where, "--set", override)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: {message}"), err
    assert snapshot(run) == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["--set", "train.bogus=1"], "unknown key 'train.bogus'; allowed keys: steps,"),
        pytest.param(
            ["--set", "train.device=cuda"],
            "train.device: 'cuda' requested but CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only machine"),
        ),
        (
            ["--set", "train.tbptt=8", "--model", "transformer"],
            "train.tbptt: the model's state grows with the context",
        ),
        (["--set", "train.batch_size=0"], "train.batch_size: expected a positive number"),
    ],
)
def test_overwrite_with_a_config_that_fails_setup_keeps_the_old_run(
    finished, tmp_path, capsys, args, message
):
    run = copy_run(finished, tmp_path)
    before = snapshot(run)
    code, err = run_cli(capsys, "train", *RUN, "--out", str(run), "--overwrite", *args)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: {message}"), err
    assert (run / WEIGHTS).read_bytes() == before[str(WEIGHTS)]
    assert snapshot(run) == before  # every file, checkpoints and metrics included


@pytest.mark.parametrize(
    "override",
    [
        pytest.param(
            "train.mlflow=true",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("mlflow") is not None, reason="needs mlflow to be absent"
            ),
        ),
        "train.metric=val_bogus",
    ],
)
def test_overwrite_with_a_config_that_fails_later_setup_keeps_the_old_run(
    finished, tmp_path, capsys, override
):
    run = copy_run(finished, tmp_path)
    before = snapshot(run)
    code, err = run_cli(capsys, "train", *RUN, "--out", str(run), "--overwrite", "--set", override)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: train."), err
    assert (run / WEIGHTS).is_file() and (run / WEIGHTS).read_bytes() == before[str(WEIGHTS)]


# -- 4. resuming a finished run trains no further -------------------------------------------------


def test_resume_of_a_finished_run_returns_its_final_metrics(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    before = snapshot(run)
    final = json.loads((run / "final_metrics.json").read_text())
    code = main(["train", "--resume", str(run), "--no-progress", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == final  # the same evaluation
    assert json.loads((run / "final_metrics.json").read_text()) == final
    assert final["step"] == STEPS
    # no step trained: same weights, same checkpoints, no new step records
    for name, content in before.items():
        if name.endswith(".safetensors"):
            assert (run / name).read_bytes() == content, name
    assert [r["step"] for r in records(run) if "loss" in r] == list(range(1, STEPS + 1))
    assert [r["step"] for r in records(run) if r.get("event") == "resume"] == [STEPS]


def test_resume_of_a_finished_run_logs_no_second_final_evaluation(finished, tmp_path, capsys):
    run = copy_run(finished, tmp_path)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert [r["step"] for r in records(run) if "eval" in r] == [EVAL_EVERY, STEPS]
