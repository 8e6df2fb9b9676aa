"""``seqlab evaluate``: re-evaluating a run reproduces the metrics it reported."""

from __future__ import annotations

import json

import pytest

from seqlab.cli.main import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "run"
    sets = [
        "train.steps=20",
        "train.eval_every=20",
        "task.test_max_len=50",
        "task.test_per_length=4",
        "task.val_size=64",
        "model.d_model=16",
        "train.threads=1",
    ]
    args = ["train", "--task", "even-pairs", "--model", "lstm", "--out", str(out), "--json", "--no-progress"]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    return out


def test_evaluate_reproduces_the_final_metrics(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    final = json.loads((run / "final_metrics.json").read_text())
    for key in ("val_acc", "test_acc", "test_acc_min"):
        assert again[key] == pytest.approx(final[key], abs=1e-9)
    assert json.loads((run / "evaluation.json").read_text()) == again


def test_evaluate_one_split_and_a_checkpoint(run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "test", "--checkpoint", "best", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics and all(k.startswith("test_") for k in metrics)
    assert json.loads((run / "evaluation-best" / "evaluation.json").read_text()) == metrics
    assert set(metrics["test_acc_by_length"]) == {str(n) for n in range(41, 51)}


def test_evaluate_bad_input(run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--checkpoint", "step-9"]) == 2
    assert "choose from: best" in capsys.readouterr().err


def test_evaluate_plots_accuracy_by_length(run, tmp_path, capsys):
    from matplotlib.image import imread

    from seqlab.cli.evaluate import plot_accuracy_by_length

    path = run / "accuracy_by_length.png"
    path.unlink(missing_ok=True)
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.shape[0] > 100 and pixels.std() > 0.01  # an image with something drawn
    # validation metrics carry no per-length curve (only the mean), so no plot is made from them
    assert plot_accuracy_by_length({"val_acc": 0.5}, None, tmp_path / "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()
