"""The minimal trainer: it learns, it writes a complete run directory, checkpoints are safe."""

from __future__ import annotations

import json

import pytest
import torch

from seqlab.errors import RunDirError
from seqlab.fileio import atomic_write, atomic_write_text
from seqlab.models import ModelConfig, SequenceModel
from seqlab.spec import IOSpec
from seqlab.training import ExperimentConfig, load_checkpoint, save_checkpoint, train
from seqlab.training.optim import param_groups
from seqlab.training.schedule import warmup_cosine


def _config(task="copy", steps=60, **train):
    return ExperimentConfig.from_dict(
        {
            "task": {
                "name": task,
                "max_len": 4,
                "test_min_len": 5,
                "test_max_len": 6,
                "test_per_length": 4,
                "val_size": 32,
            },
            "model": {"d_model": 24, "layer_types": ["lstm"]},
            "train": {
                "steps": steps,
                "batch_size": 16,
                "lr": 1e-2,
                "warmup_steps": 5,
                "eval_every": 30,
                "log_every": 10,
            }
            | train,
        }
    )


def test_training_learns_and_writes_the_run_directory(tmp_path):
    metrics = train(_config(steps=150), tmp_path, progress=False)
    assert metrics["val_acc"] > 0.5  # 8 symbols: chance is 0.125
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "checkpoint", "final_metrics.json"} <= names
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    assert any("eval" in r and r["step"] == 30 for r in records)
    assert json.loads((tmp_path / "final_metrics.json").read_text())["val_acc"] == metrics["val_acc"]
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no partial files left behind


def test_same_seed_same_result(tmp_path):
    a = train(_config(steps=20), tmp_path / "a", progress=False)
    b = train(_config(steps=20), tmp_path / "b", progress=False)
    assert a["val_loss"] == b["val_loss"]


def test_checkpoint_round_trip_with_tied_weights(tmp_path):
    io = IOSpec(output_dim=7, vocab_size=7)
    cfg = ModelConfig(d_model=8, layer_types=["gru"], tie_weights=True)
    model = SequenceModel(cfg, io)
    save_checkpoint(tmp_path, model, {"step": 3})
    other = SequenceModel(cfg, io)
    assert load_checkpoint(tmp_path, other) == {"step": 3}
    for (name, p), q in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert other.head.weight is other.embed.weight


def test_corrupt_or_mismatched_checkpoint_is_a_clear_error(tmp_path):
    io = IOSpec(output_dim=5, vocab_size=5)
    model = SequenceModel(ModelConfig(d_model=8), io)
    save_checkpoint(tmp_path, model, {})
    with pytest.raises(RunDirError, match="does not fit the model"):
        load_checkpoint(tmp_path, SequenceModel(ModelConfig(d_model=8, layer_types=["gru"]), io))
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(RunDirError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path, model)
    with pytest.raises(RunDirError, match="missing checkpoint file"):
        load_checkpoint(tmp_path / "nowhere", model)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "good")

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, failing)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_param_groups_cover_every_parameter_once():
    model = SequenceModel(
        ModelConfig(d_model=8, layer_types=["lstm"], tie_weights=True), IOSpec(output_dim=5, vocab_size=5)
    )
    decay, no_decay = param_groups(model, 0.1)
    ids = [id(p) for p in decay["params"] + no_decay["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert all(p.dim() == 2 for p in decay["params"])
    assert any(p is model.embed.weight for p in no_decay["params"])


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110, 0.1) == pytest.approx(0.1)


def test_a_time_budget_stops_training_and_anneals_the_rate_within_it(tmp_path):
    # 100,000 steps would take many minutes; a 0.3 s budget must stop the run long before, with
    # the cosine decay complete (lr = min_lr_ratio · lr) although the step count is far from done
    config = _config(steps=100_000, time_budget=0.3, eval_every=0, log_every=1)  # the last step logged
    metrics = train(config, tmp_path, progress=False)
    assert metrics["out_of_time"] and 0 < metrics["step"] < 100_000
    assert metrics["train_time_s"] >= 0.3
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    last_lr = [r["lr"] for r in records if "lr" in r][-1]
    # min_lr_ratio 0.1: annealed by the time budget (the last step starts just before the budget
    # ends, so its rate is within a few % of the floor; a loaded machine makes steps, and so that
    # gap, longer)
    assert last_lr == pytest.approx(1e-2 * 0.1, rel=0.25)


def test_decay_progress_follows_the_larger_of_step_and_time_fraction():
    from seqlab.training.schedule import decay_progress

    assert decay_progress(60, 10, 110) == pytest.approx(0.5)  # by steps
    assert decay_progress(60, 10, 110, time_fraction=0.8) == pytest.approx(0.8)  # time runs out first
    assert decay_progress(60, 10, 110, time_fraction=0.2) == pytest.approx(0.5)
    assert warmup_cosine(20, 10, 1000, 0.1, time_fraction=1.0) == pytest.approx(0.1)


def test_a_time_budgeted_run_resumes_with_a_larger_budget(tmp_path):
    from seqlab.errors import ConfigError
    from seqlab.training.rundir import check_resumable

    done = train(_config(steps=100_000, time_budget=0.2, eval_every=0), tmp_path, progress=False)
    assert done["out_of_time"]
    check_resumable(_config(steps=100_000, time_budget=0.6, eval_every=0), tmp_path)  # "how long": allowed
    with pytest.raises((ConfigError, RunDirError), match="lr"):  # what it optimises: refused
        check_resumable(_config(steps=100_000, time_budget=0.6, eval_every=0, lr=0.5), tmp_path)
