"""End-to-end CLI runs (real subprocesses) on the built-in data with small budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def seqlab(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "seqlab", *args], capture_output=True, text=True, env=ENV, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize(
    "kind,names",
    [
        ("mixers", ["gru", "lstm", "rnn"]),
        ("tasks", ["adding", "charlm", "copy", "parity"]),
        ("models", ["gru", "lstm", "rnn"]),
    ],
)
def test_list(kind, names):
    out = seqlab("list", kind).stdout
    assert [line.split()[0] for line in out.splitlines() if line.split()[0] in names] == names


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["train", "--task", "parityy"],
            "error: unknown task 'parityy'; choose from: adding, ",
        ),
        (["train", "--task", "parity", "--model", "lstmm"], "error: unknown model 'lstmm'; choose from:"),
        (
            ["train", "--task", "parity", "--set", "model.d_modle=3"],
            "error: unknown key 'model.d_modle'; allowed keys: d_model,",
        ),
        (
            ["train", "--task", "parity", "--set", "train.steps=many"],
            "error: train.steps: expected int, got str 'many'",
        ),
        (
            ["train", "--task", "parity", "--set", "model.d_model=-4"],
            "error: model.d_model: expected a positive number",
        ),
        (["train"], "error: no task given: pass --task NAME"),
        (["generate", "nowhere"], "error: nowhere is not a run directory"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, message):
    proc = seqlab(*args, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback():
    proc = seqlab("train", "--task", "nope", "--debug", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_everywhere():
    for args in [[], ["list"], ["train"], ["generate"]]:
        assert "usage: seqlab" in seqlab(*args, "--help").stdout


def test_train_json_then_generate_on_builtin_corpus(tmp_path):
    run = tmp_path / "lm"
    proc = seqlab(
        "train",
        "--task",
        "charlm",
        "--model",
        "gru",
        "--out",
        str(run),
        "--json",
        "--no-progress",
        "--set",
        "train.steps=40",
        "--set",
        "model.d_model=32",
        "--set",
        "task.eval_windows=4",
        "--set",
        "task.seq_len=32",
    )
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["val_bpc"] < 5.0  # log2(63) = 5.98 bits for a uniform guess over the vocabulary
    greedy = [
        seqlab(
            "generate", str(run), "--prompt", "KING:", "--max-new-tokens", "30", "--temperature", "0"
        ).stdout
        for _ in range(2)
    ]
    assert greedy[0] == greedy[1] and greedy[0].startswith("KING:") and len(greedy[0]) >= 35
    beam = seqlab("generate", str(run), "--prompt", "KING:", "--max-new-tokens", "30", "--beam", "1").stdout
    assert beam == greedy[0]  # beam width 1 is greedy decoding
    penalised = seqlab(
        "generate",
        str(run),
        "--prompt",
        "KING:",
        "--max-new-tokens",
        "30",
        "--temperature",
        "0",
        "--repetition-penalty",
        "1.5",
    ).stdout
    assert penalised.startswith("KING:")
    again = seqlab("train", "--task", "charlm", "--out", str(run), check=False)
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "task:\n  name: adding\n  length: 12\n  val_size: 64\nmodel:\n  d_model: 16\ntrain:\n  steps: 5\n"
    )
    run = tmp_path / "run"
    proc = seqlab(
        "train",
        "--config",
        str(cfg),
        "--set",
        "train.batch_size=8",
        "--out",
        str(run),
        "--json",
        "--no-progress",
    )
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"val_mse", "test_mse", "baseline_mse"} <= set(metrics)
    saved = (run / "config.yaml").read_text()
    assert "length: 12" in saved and "batch_size: 8" in saved and "d_model: 16" in saved


def test_parity_lstm_generalises_to_longer_strings(tmp_path):
    """Acceptance: the README command reaches >= 0.99 accuracy on every test length 41-256."""
    proc = seqlab(
        "train", "--task", "parity", "--model", "lstm", "--json", "--no-progress", "--out", str(tmp_path)
    )
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["test_acc"] >= 0.99
    assert sorted(map(int, metrics["test_acc_by_length"])) == list(range(41, 257))


def test_debug_before_the_subcommand_is_kept():
    from seqlab.cli.main import build_parser

    args = build_parser().parse_args(["--debug", "train", "--task", "parity"])
    assert args.debug and not args.verbose
    assert build_parser().parse_args(["train", "--verbose"]).verbose


@pytest.mark.parametrize(
    "content,message",
    [
        (
            b"task: parity\nmodel: {d_model: 8}\ntrain: {steps: 1, seed: 2024-01-01}\n",
            "train.seed: expected int",
        ),
        (b"task: [1, 2]\n", "no task given"),
        (b"task:\n  name: parity\n\xff\xfe\n", "not valid UTF-8"),
        (b"task: {name: [a]}\n", "unknown task ['a']"),
    ],
)
def test_malformed_config_files_are_one_line_errors(tmp_path, content, message):
    cfg = tmp_path / "exp.yaml"
    cfg.write_bytes(content)
    proc = seqlab("train", "--config", str(cfg), "--out", str(tmp_path / "run"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr


def test_out_must_be_a_directory_and_overwrite_replaces_the_run(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    proc = seqlab("train", "--task", "parity", "--out", str(afile), check=False)
    assert proc.returncode == 2 and "is not a directory" in proc.stderr
    run = tmp_path / "run"
    small = [
        "--set",
        "train.steps=3",
        "--set",
        "model.d_model=8",
        "--set",
        "task.test_max_len=42",
        "--no-progress",
    ]
    for _ in range(2):
        seqlab("train", "--task", "parity", "--out", str(run), "--overwrite", *small)
    starts = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"start"' in line]
    assert len(starts) == 1  # the second run replaced the first one's metrics, no mixing
