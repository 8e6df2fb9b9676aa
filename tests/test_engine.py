"""The training engine end to end: TBPTT state carry and what it can learn, the non-finite guard,
gradient accumulation, precision, early stopping, best/keep_last checkpoints, logging."""

from __future__ import annotations

import io
import itertools
import json

import pytest
import torch
from safetensors.torch import load_file

from seqlab.errors import ConfigError
from seqlab.training import ExperimentConfig, NonFiniteError, Trainer, train
from seqlab.training.checkpoint import load_checkpoint
from seqlab.training.loggers import Progress


def _charlm(steps=12, **train_options):
    return ExperimentConfig.from_dict(
        {
            "task": {"name": "charlm", "seq_len": 16, "eval_windows": 4},
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {
                "steps": steps,
                "batch_size": 4,
                "lr": 1e-2,
                "warmup_steps": 2,
                "eval_every": 0,
                "log_every": 1,
                "tensorboard": False,
            }
            | train_options,
        }
    )


def _records(run_dir, key=None):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if key is None or key in r]


# -- TBPTT -----------------------------------------------------------------------------------


class _Recorder(torch.nn.Module):
    """Wraps the model to record the state each call starts from and ends in."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, inputs, state=None, **kw):
        outputs, final = self.model(inputs, state, **kw)
        self.calls.append((state, final))
        return outputs, final


def _leaves(state):
    return [x for x in torch.utils._pytree.tree_leaves(state) if isinstance(x, torch.Tensor)]


def test_tbptt_carries_the_final_state_of_chunk_i_into_chunk_i_plus_1_detached(tmp_path):
    trainer = Trainer(_charlm(steps=4, tbptt=8), tmp_path, progress=False)
    trainer.forward_net = recorder = _Recorder(trainer.model)
    trainer.start(resume=False)
    trainer.fit()
    calls = recorder.calls
    assert len(calls) == 4 and calls[0][0] is None  # the first chunk starts fresh
    for (_, end), (start, _) in itertools.pairwise(calls):
        assert all(torch.equal(a, b) for a, b in zip(_leaves(end), _leaves(start)))  # same values
        assert any(x.grad_fn is not None for x in _leaves(end))  # the chunk's own graph...
        assert all(
            x.grad_fn is None and not x.requires_grad for x in _leaves(start)
        )  # ...cut at the boundary


def test_tbptt_refuses_tasks_without_a_stream_and_growing_attention_state(tmp_path):
    config = _charlm(tbptt=8)
    config.model.layer_types = ["attention"]
    with pytest.raises(ConfigError, match="grows with the context"):
        Trainer(config, tmp_path, progress=False)
    parity = ExperimentConfig.from_dict({"task": "parity", "train": {"tbptt": 8}})
    with pytest.raises(ConfigError, match="task 'parity' has no training stream"):
        Trainer(parity, tmp_path, progress=False)


def _echo(delay, k1, k2=0, steps=400):
    return ExperimentConfig.from_dict(
        {
            "task": {"name": "echo", "delay": delay, "stream_len": 40000, "eval_len": 1000},
            "model": {"d_model": 32, "layer_types": ["lstm", "lstm"]},
            "train": {
                "steps": steps,
                "batch_size": 16,
                "lr": 1e-2,
                "warmup_steps": 20,
                "tbptt": k1,
                "tbptt_backprop": k2,
                "eval_every": 0,
                "log_every": 1000,
                "tensorboard": False,
            },
        }
    )


def test_tbptt_learns_dependencies_within_the_chunk_and_not_beyond(tmp_path):
    """Echo (output the symbol `delay` steps back, 4 symbols: chance 0.25), LSTM, TBPTT k=20.

    Measured (seed 0): delay 5 → 1.00 after 400 updates; delay 30 → 0.26 after 600: no target's
    source lies in its own 20-step chunk, so no gradient ever spans the delay, even though the
    carried state could hold the symbol. With k1 = 8 and gradients reaching k2 = 24 steps back,
    delay 12 reaches 0.48 after 600 updates where plain k = 8 stays at chance (0.23).
    """
    near = train(_echo(5, 20), tmp_path / "near", progress=False)["val_acc"]
    far = train(_echo(30, 20, steps=600), tmp_path / "far", progress=False)["val_acc"]
    assert near > 0.9, near
    assert far < 0.32, far
    short = train(_echo(12, 8, steps=600), tmp_path / "short", progress=False)["val_acc"]
    longer = train(_echo(12, 8, 24, steps=600), tmp_path / "longer", progress=False)["val_acc"]
    assert short < 0.32 < 0.4 < longer, (short, longer)


# -- non-finite guard --------------------------------------------------------------------------


def _nan_from(step, module_of):
    """A callback that makes a module output NaN from update ``step`` on (a transient fault)."""

    def callback(trainer):
        if trainer.step + 1 == step:
            module_of(trainer.model).register_forward_hook(
                lambda m, i, out: (out[0] * float("nan"), out[1]) if isinstance(out, tuple) else out
            )

    return callback


def test_nonfinite_stop_reports_step_and_layer_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _charlm(steps=12, checkpoint_every=3)
    config.model.layer_types = ["gru", "lstm"]
    with pytest.raises(NonFiniteError) as err:
        train(config, tmp_path, progress=False, callbacks=[_nan_from(5, lambda m: m.blocks[1].mixer)])
    message = str(err.value)
    assert message.startswith("step 5: non-finite training step (loss nan)")
    assert "first non-finite output in blocks.1.mixer" in message
    # the parameters were still good: they were saved as step 4, which verifies and is finite
    assert "checkpoints/step-00000004" in message
    state = load_file(tmp_path / "checkpoints" / "step-00000004" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in state.values())
    events = _records(tmp_path, "event")
    assert events[-1]["event"] == "nonfinite" and events[-1]["step"] == 5


def test_nonfinite_stop_never_saves_broken_parameters(tmp_path):
    def corrupt(trainer):
        if trainer.step == 4:
            with torch.no_grad():
                trainer.model.blocks[0].mixer.layer.weight_hh_l0.fill_(float("nan"))

    with pytest.raises(NonFiniteError, match="step 5: .*last good checkpoint: .*step-00000003"):
        train(_charlm(steps=12, checkpoint_every=3), tmp_path, progress=False, callbacks=[corrupt])
    assert [p.name for p in sorted((tmp_path / "checkpoints").iterdir())] == ["step-00000003"]


def test_nonfinite_skip_drops_the_step_and_goes_on(tmp_path):
    def once(trainer):  # NaN in exactly one update
        if trainer.step + 1 == 3:
            handle = trainer.model.blocks[0].mixer.register_forward_hook(
                lambda m, i, out: (out[0] * float("nan"), out[1])
            )
            trainer.callbacks.append(lambda t: handle.remove() if t.step == 3 else None)

    metrics = train(_charlm(steps=6, on_nonfinite="skip"), tmp_path, progress=False, callbacks=[once])
    assert metrics["skipped_steps"] == 1 and metrics["step"] == 6
    losses = [r["loss"] for r in _records(tmp_path, "loss")]
    assert len(losses) == 6 and losses[2] is None  # NaN is written as null: metrics.jsonl stays valid JSON
    assert all(isinstance(x, float) for i, x in enumerate(losses) if i != 2)


# -- accumulation, precision, memory -----------------------------------------------------------


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    big = train(_charlm(steps=3, batch_size=8), tmp_path / "big", progress=False)
    accum = train(_charlm(steps=3, batch_size=4, grad_accum=2), tmp_path / "accum", progress=False)
    a = load_file(tmp_path / "big" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "accum" / "checkpoint" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    assert big["val_loss"] == pytest.approx(accum["val_loss"], rel=1e-5)


def test_bf16_autocast_trains_on_cpu_close_to_fp32(tmp_path):
    fp32 = _records_loss(train, _charlm(steps=3), tmp_path / "fp32")
    bf16 = _records_loss(train, _charlm(steps=3, precision="bf16"), tmp_path / "bf16")
    assert all(torch.isfinite(torch.tensor(bf16)))
    assert bf16[0] == pytest.approx(fp32[0], abs=0.05)  # the same first batch, bf16 rounding


def _records_loss(run, config, run_dir):
    run(config, run_dir, progress=False)
    return [r["loss"] for r in _records(run_dir, "loss")]


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is allowed")
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        Trainer(_charlm(precision="fp16"), tmp_path, progress=False)


def test_activation_checkpointing_trains_to_the_same_parameters(tmp_path):
    train(_charlm(steps=3), tmp_path / "a", progress=False)
    train(_charlm(steps=3, grad_checkpointing=True), tmp_path / "b", progress=False)
    a = load_file(tmp_path / "a" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoint" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


# -- evaluation-driven: best, early stopping, keep_last ---------------------------------------


def test_early_stopping_best_checkpoint_and_keep_last(tmp_path):
    # lr so small that nothing improves by min_delta: stop after `patience` evaluations
    config = _charlm(steps=40, lr=1e-9, eval_every=5, patience=2, min_delta=0.01, keep_last=2)
    metrics = train(config, tmp_path, progress=False)
    assert metrics["stopped_early"] and metrics["step"] == 15  # evals at 5 (best), 10, 15 -> stop
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best",
        "step-00000010",
        "step-00000015",
    ]
    model = Trainer(config, tmp_path / "x", progress=False).model
    assert load_checkpoint(tmp_path / "checkpoints" / "best", model)["step"] == 5


def test_unknown_metric_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="train.metric: 'val_f1' is not a metric of this task; choose from"):
        train(_charlm(steps=2, eval_every=1, metric="val_f1"), tmp_path, progress=False)


# -- logging ---------------------------------------------------------------------------------


def test_jsonl_and_tensorboard_hold_the_step_records(tmp_path):
    train(
        _charlm(steps=4, log_every=2, tensorboard=True, clip="norm", clip_norm=0.01), tmp_path, progress=False
    )
    steps = _records(tmp_path, "loss")
    assert [r["step"] for r in steps] == [2, 4]
    for key in ("loss", "grad_norm", "lr", "clip_rate", "tokens_per_s", "memory_mb", "time_s"):
        assert isinstance(steps[-1][key], float | int), key
    assert steps[-1]["clip_rate"] == 1.0  # every step's norm is above 0.01
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]
    assert "eval/val_bpc" in events.Tags()["scalars"]


def test_progress_prints_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(total=4, start=0, enabled=True, every=2, stream=stream)
    for step in range(1, 5):
        progress.update(step, loss=1.5, tokens_per_s=1234.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("step 2/4 (50%)  loss 1.5000  1,234 tok/s  eta ")


def test_mlflow_tracking_goes_to_a_local_sqlite_store(tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="the optional extra seqlab[mlflow] is not installed")
    train(_charlm(steps=2, mlflow=True, eval_every=1), tmp_path, progress=False)
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("charlm").experiment_id])
    assert run.data.params["train.steps"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")] == [1, 2]
    assert "eval.val_bpc" in run.data.metrics


def test_mlflow_without_the_extra_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'seqlab\[mlflow\]'"):
        train(_charlm(steps=1, mlflow=True), tmp_path, progress=False)


# -- regressions found in review ----------------------------------------------------------------


def test_tbptt_with_gradient_accumulation_chains_every_window(tmp_path):
    trainer = Trainer(_charlm(steps=3, tbptt=8, grad_accum=2), tmp_path, progress=False)
    trainer.forward_net = recorder = _Recorder(trainer.model)
    trainer.start(resume=False)
    trainer.fit()
    calls = recorder.calls
    assert len(calls) == 6 and calls[0][0] is None
    for (_, end), (start, _) in itertools.pairwise(calls):
        assert start is not None and all(torch.equal(a, b) for a, b in zip(_leaves(end), _leaves(start)))


def test_a_transient_nan_resets_the_carried_state_instead_of_poisoning_it(tmp_path):
    def once(trainer):
        if trainer.step + 1 == 3:
            handle = trainer.model.blocks[0].mixer.register_forward_hook(
                lambda m, i, out: (out[0] * float("nan"), out[1])
            )
            trainer.callbacks.append(lambda t: handle.remove() if t.step == 3 else None)

    config = _charlm(steps=8, tbptt=8, on_nonfinite="skip")
    metrics = train(config, tmp_path, progress=False, callbacks=[once])
    assert metrics["skipped_steps"] == 1 and metrics["step"] == 8
    (event,) = _records(tmp_path, "event")[1:]
    assert event["step"] == 3 and event["message"].endswith("the carried TBPTT state was reset")


def test_tbptt_runs_with_segment_memory_and_with_nothing_scored_yet(tmp_path):
    config = _charlm(steps=3, tbptt=8)
    config.model.layer_types = ["xl-attention"]  # bounded memory: allowed, unlike plain attention
    assert train(config, tmp_path / "xl", progress=False)["step"] == 3
    echo = _echo(delay=10, k1=4, steps=4)  # the first windows hold no scored step (t < delay)
    echo.train.batch_size = 1
    assert train(echo, tmp_path / "echo", progress=False)["step"] == 4


def test_tbptt_windows_longer_than_the_rows_are_a_clear_error(tmp_path):
    config = _echo(delay=2, k1=64, steps=1)
    config.task.options.stream_len = 100  # 4 rows of 25 steps
    config.train.batch_size = 4
    with pytest.raises(ConfigError, match="windows of 64 steps do not fit the stream's rows of 25 steps"):
        Trainer(config, tmp_path, progress=False)


def test_a_mistyped_metric_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="train.metric: 'val_bpcc' is not a metric"):
        train(_charlm(steps=50, metric="val_bpcc"), tmp_path, progress=False)
    assert not (tmp_path / "checkpoints").exists()


def test_resume_refuses_changes_to_what_is_optimised(tmp_path):
    from seqlab.training.rundir import check_resumable

    train(_charlm(steps=2), tmp_path, progress=False)
    for key, value in [("lr", 0.1), ("optimizer", "sgd"), ("seed", 3), ("batch_size", 2)]:
        with pytest.raises(ConfigError, match=f"differs from the saved run's in train.{key};"):
            check_resumable(_charlm(steps=2, **{key: value}), tmp_path)
    check_resumable(_charlm(steps=20, patience=2, threads=1), tmp_path)  # how long / how: fine


def test_extending_a_plateau_run_by_resuming_equals_running_longer(tmp_path):
    options = {"schedule": "plateau", "plateau_patience": 1, "eval_every": 2, "checkpoint_every": 5}
    train(_charlm(steps=20, **options), tmp_path / "long", progress=False)
    train(_charlm(steps=10, **options), tmp_path / "short", progress=False)
    train(_charlm(steps=20, **options), tmp_path / "short", progress=False, resume=True)
    a = load_file(tmp_path / "long" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "short" / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_an_early_stopped_run_does_not_train_on(tmp_path):
    config = _charlm(steps=40, lr=1e-9, eval_every=5, patience=2, min_delta=0.01)
    first = train(config, tmp_path, progress=False)
    again = train(config, tmp_path, progress=False, resume=True)
    assert first["step"] == again["step"] == 15 and again["stopped_early"]
