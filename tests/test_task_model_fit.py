"""A model that cannot serve a task is refused before training, naming the models that fit."""

from __future__ import annotations

import pytest

from seqlab.cli.main import main

REAL = "tasks with real-valued inputs (forecast, anomaly, adding) train --model rnn"


@pytest.mark.parametrize(
    "task, model, fits",
    [
        ("forecast", "bert", REAL),
        ("forecast", "seq2seq", REAL),
        ("parity", "rnn-seq2seq", "token tasks train --model rnn, lstm"),
        ("reverse", "lstm", "sequence-to-sequence tasks train --model seq2seq"),
    ],
)
def test_incompatible_pairs_name_what_fits(tmp_path, capsys, task, model, fits):
    run = tmp_path / "run"
    assert main(["train", "--task", task, "--model", model, "--out", str(run)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model arch" in errors[0] and fits in errors[0]
    assert not run.exists()
