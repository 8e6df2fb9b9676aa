"""Data-parallel training: 2 CPU processes under torchrun take the steps 1 process takes.

``train.batch_size`` is the global batch: each rank trains on its share of the same global batch
and the micro-batch losses are weighted by scored positions over all ranks, so the parameters
after N steps match single-process training up to float reassociation in the all-reduce (gloo
on loopback, ``OMP_NUM_THREADS=1``). Rank 0 alone writes the run directory; every rank resumes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ATOL = 1e-6
FINAL = "checkpoint/model.safetensors"  # the weights a run ends with
# what a sandbox without loopback networking says when the gloo group cannot form
NO_NETWORK = (
    "Network is unreachable",
    "Cannot assign requested address",
    "Connection refused",
    "Temporary failure in name resolution",
    "Operation not permitted",
)

# parity: bit strings of lengths 1..12, padded; one scored position per row. A global batch of 9
# splits 5 + 4, so weighting each rank's mean by its scored positions matters (a plain mean of
# the rank means is off by ~6e-4 after 8 steps); grad_accum=2 takes DDP's no_sync path too.
PARITY = [
    "train", "--task", "parity", "--model", "gru",
    "--set", "model.d_model=16", "--set", "task.max_len=12", "--set", "task.val_size=16",
    "--set", "task.test_min_len=13", "--set", "task.test_max_len=16", "--set", "task.test_per_length=4",
    "--set", "train.steps=8", "--set", "train.batch_size=9", "--set", "train.grad_accum=2",
    "--set", "train.eval_every=0", "--set", "train.log_every=1", "--set", "train.threads=1",
    "--no-progress",
]  # fmt: skip
# charlm, stepped to 6 then resumed to 8: the schedule must not depend on train.steps (constant,
# no warmup). SGD: Adam divides by √v, which blows float reassociation on an entry whose gradient
# is near 0 up to ~1e-6 (seen: one LSTM weight 1.3e-6 off); SGD keeps the comparison tight.
CHARLM = [
    "train", "--task", "charlm", "--model", "lstm",
    "--set", "model.d_model=32", "--set", "task.seq_len=32", "--set", "task.eval_windows=4",
    "--set", "train.batch_size=8", "--set", "train.optimizer=sgd", "--set", "train.lr=0.1",
    "--set", "train.schedule=constant", "--set", "train.warmup_steps=0",
    "--set", "train.checkpoint_every=3", "--set", "train.keep_last=3", "--set", "train.eval_every=0",
    "--set", "train.log_every=1", "--set", "train.threads=1", "--no-progress",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], nproc: int) -> subprocess.Popen:
    """``seqlab ARGS`` in 1 process, or in ``nproc`` under torchrun (gloo on loopback)."""
    prefix = [sys.executable]
    if nproc > 1:
        prefix += ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc)]
        prefix += ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    return subprocess.Popen(
        [*prefix, "-m", "seqlab.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )


def finish(proc: subprocess.Popen, distributed: bool) -> str:
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0 and distributed:
        for line in out.splitlines():
            if any(marker in line for marker in NO_NETWORK):
                pytest.skip(f"torchrun could not start 2 gloo processes on 127.0.0.1: {line.strip()}")
    assert proc.returncode == 0, out
    return out


def run_both(args: list[str], single: Path, distributed: Path) -> None:
    """The same command in 1 process and in 2 under torchrun, side by side."""
    one = launch([*args, "--out", str(single)], 1)
    two = launch([*args, "--out", str(distributed)], 2)
    finish(two, distributed=True)
    finish(one, distributed=False)


def torchrun(args: list[str]) -> str:
    return finish(launch(args, 2), distributed=True)


def assert_same_parameters(a: Path, b: Path) -> None:
    """Every tensor of two safetensors files, within ATOL (no relative slack)."""
    x, y = load_file(a), load_file(b)
    assert x.keys() == y.keys()
    for key in x:
        torch.testing.assert_close(x[key], y[key], atol=ATOL, rtol=0, msg=lambda m, key=key: f"{key}: {m}")


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)), "duplicated lines: more than one rank wrote metrics.jsonl"
    return [json.loads(line) for line in lines]


def assert_written_by_one_process(run: Path, steps: int, evals: list[int], runs: int = 1) -> None:
    """One metrics.jsonl with each step once, one TensorBoard event file per launch (rank 0's)."""
    recs = records(run)
    assert [r["step"] for r in recs if "loss" in r] == list(range(1, steps + 1))
    assert [r["event"] for r in recs if "event" in r] == ["start"] + ["resume"] * (runs - 1)
    assert [r["step"] for r in recs if "eval" in r] == evals  # a resumed run drops the final one it repeats
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == runs
    assert not list(run.rglob("*.tmp")) and not list((run / "checkpoints").glob(".step-*"))


def test_two_processes_equal_one_on_padded_variable_length_batches(tmp_path):
    single, distributed = tmp_path / "single", tmp_path / "distributed"
    run_both(PARITY, single, distributed)
    assert_same_parameters(distributed / FINAL, single / FINAL)
    assert_written_by_one_process(distributed, steps=8, evals=[8])
    # the logged loss is the global, position-weighted one
    losses = [[r["loss"] for r in records(run) if "loss" in r] for run in (single, distributed)]
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)


def test_two_processes_equal_one_on_charlm_and_resume_under_torchrun(tmp_path):
    single, distributed = tmp_path / "single", tmp_path / "distributed"
    one = launch([*CHARLM, "--set", "train.steps=8", "--out", str(single)], 1)
    two = launch([*CHARLM, "--set", "train.steps=6", "--out", str(distributed)], 2)
    finish(two, distributed=True)
    finish(one, distributed=False)

    # 1. after 6 steps: 2 processes == 1 process (its checkpoint of step 6)
    step6 = "checkpoints/step-00000006/model.safetensors"
    assert_same_parameters(distributed / FINAL, single / step6)
    assert_same_parameters(distributed / step6, single / step6)
    assert_written_by_one_process(distributed, steps=6, evals=[6])

    # 2. resume the 2-process run under torchrun to step 8 == 8 uninterrupted single-process steps
    torchrun(["train", "--resume", str(distributed), "--set", "train.steps=8", "--no-progress"])
    assert_same_parameters(distributed / FINAL, single / FINAL)
    # the 6-step run's final evaluation is dropped: the resumed run ends with its own at step 8
    assert_written_by_one_process(distributed, steps=8, evals=[8], runs=2)
    (resume,) = [r for r in records(distributed) if r.get("event") == "resume"]
    assert resume["step"] == 6 and Path(resume["checkpoint"]).name == "step-00000006"
    assert json.loads((distributed / "final_metrics.json").read_text())["step"] == 8


def test_a_time_budget_ends_every_rank_at_the_same_step(tmp_path):
    # each rank times its own steps; unsynchronised, one rank would stop while the other waits in
    # the gradient all-reduce of one more step (a hang), and their schedules would drift apart
    args = [*PARITY, "--set", "train.steps=100000", "--set", "train.time_budget=1.0", "--out", str(tmp_path)]
    torchrun(args)
    final = json.loads((tmp_path / "final_metrics.json").read_text())
    assert final["out_of_time"] and 0 < final["step"] < 100000
    assert [r["step"] for r in records(tmp_path) if "loss" in r][-1] == final["step"]
