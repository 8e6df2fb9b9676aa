"""The training engine's parts, one at a time: clipping, optimisers, schedules, tracking, TBPTT
windows, state packing, the non-finite guard, activation checkpointing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models import ModelConfig, SequenceModel
from seqlab.spec import IOSpec
from seqlab.tasks import build_task
from seqlab.tasks.base import IGNORE
from seqlab.training import TrainConfig
from seqlab.training.clipping import GradClipper
from seqlab.training.guard import diagnose, first_nonfinite_output, nonfinite_grads
from seqlab.training.memory import enable_activation_checkpointing
from seqlab.training.optim import build_optimizer, param_groups
from seqlab.training.schedule import build_schedule, warmup_linear
from seqlab.training.state import (
    detach_state,
    pack_carry,
    pack_optimizer,
    pack_rng,
    unpack_carry,
    unpack_optimizer,
    unpack_rng,
)
from seqlab.training.tbptt import StreamCursor
from seqlab.training.tracking import MetricTracker, Plateau, resolve_mode


def _param(grad: list[float]) -> nn.Parameter:
    p = nn.Parameter(torch.zeros(len(grad)))
    p.grad = torch.tensor(grad)
    return p


# -- clipping ------------------------------------------------------------------------------------


def test_global_norm_clipping_scales_a_norm_of_15_to_5():
    a, b = _param([9.0, 0.0]), _param([0.0, 12.0])  # global norm sqrt(81 + 144) = 15
    result = GradClipper("norm", 5.0)([a, b])
    assert result == (15.0, True)
    torch.testing.assert_close(a.grad, torch.tensor([3.0, 0.0]))  # scaled by 1/3
    torch.testing.assert_close(b.grad, torch.tensor([0.0, 4.0]))
    small = _param([3.0, 4.0])
    assert GradClipper("norm", 5.0)([small]) == (5.0, False)
    torch.testing.assert_close(small.grad, torch.tensor([3.0, 4.0]))


def test_value_clipping_clamps_each_entry_and_reports_the_pre_clip_norm():
    p = _param([3.0, -4.0, 0.5])
    norm, clipped = GradClipper("value", 1.0)([p])
    assert clipped and norm == pytest.approx(math.sqrt(25.25))
    torch.testing.assert_close(p.grad, torch.tensor([1.0, -1.0, 0.5]))


def test_adaptive_threshold_follows_the_running_norm_and_cuts_spikes():
    clip = GradClipper("adaptive", 0.0, alpha=0.5, factor=2.0)
    # step 1: norm 5 -> no threshold yet, thr_1 = 2·5 = 10
    assert clip([_param([3.0, 4.0])]) == (5.0, False)
    assert clip.running == pytest.approx(10.0)
    # step 2: norm 8 < 10 -> kept; thr_2 = 0.5·10 + 0.5·2·8 = 13
    assert clip([_param([8.0])]) == (8.0, False)
    assert clip.running == pytest.approx(13.0)
    # step 3: a spike of 130 is cut to 13 and counts as 13: thr_3 = 0.5·13 + 0.5·2·13 = 19.5
    spike = _param([130.0])
    assert clip([spike]) == (130.0, True)
    torch.testing.assert_close(spike.grad, torch.tensor([13.0]), rtol=1e-5, atol=1e-5)
    assert clip.running == pytest.approx(19.5)
    # step 4: a second spike is still cut (to 19.5), not let through by the first
    assert clip([_param([100.0])]) == (100.0, True)
    restored = GradClipper("adaptive", 0.0, 0.5, 2.0)
    restored.load_state_dict(clip.state_dict())
    assert restored.running == clip.running


def test_no_clipping_only_measures():
    p = _param([30.0, 40.0])
    assert GradClipper("none", 1.0)([p]) == (50.0, False)
    torch.testing.assert_close(p.grad, torch.tensor([30.0, 40.0]))


# -- optimisers and schedules ---------------------------------------------------------------------


def _model(layer="lstm", **kw) -> SequenceModel:
    return SequenceModel(
        ModelConfig(d_model=8, layer_types=[layer], **kw), IOSpec(output_dim=5, vocab_size=5)
    )


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adamw", torch.optim.AdamW),
        ("adam", torch.optim.Adam),
        ("sgd", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_every_optimiser_builds_with_decay_groups_covering_each_parameter_once(name, cls):
    model = _model(tie_weights=True)
    opt = build_optimizer(model, TrainConfig(optimizer=name, weight_decay=0.1))
    assert type(opt) is cls
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted({id(p) for p in model.parameters()})
    assert any(p is model.embed.weight for p in no_decay["params"])  # embeddings are not decayed
    assert all(p.dim() == 2 for p in decay["params"])


def test_param_groups_refuse_nothing_and_duplicate_nothing():
    decay, no_decay = param_groups(_model(), 0.5)
    assert not {id(p) for p in decay["params"]} & {id(p) for p in no_decay["params"]}


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("optimizer", "adamax", "expected one of 'adamw', 'adam', 'sgd', 'rmsprop'"),
        ("schedule", "step", "'cosine', 'linear', 'noam', 'constant', 'plateau'"),
        ("clip", "soft", "'norm', 'value', 'adaptive', 'none'"),
        ("lr", -0.1, "lr: expected a positive number"),
        ("grad_accum", 0, "grad_accum: expected a positive number"),
        ("tbptt_backprop", 5, "needs tbptt > 0"),
    ],
)
def test_bad_train_settings_are_clear_errors(key, value, match):
    from seqlab.config import from_dict

    with pytest.raises(ConfigError, match=match):
        from_dict(TrainConfig, {key: value}, "train")


def test_tbptt_backprop_shorter_than_the_chunk_is_refused():
    with pytest.raises(ConfigError, match="tbptt_backprop: expected >= tbptt"):
        TrainConfig(tbptt=20, tbptt_backprop=10)


def test_linear_schedule_warms_up_then_decays_to_the_floor():
    assert warmup_linear(0, 10, 110) == pytest.approx(0.1)
    assert warmup_linear(10, 10, 110, 0.0) == pytest.approx(1.0)
    assert warmup_linear(60, 10, 110, 0.0) == pytest.approx(0.5)
    assert warmup_linear(500, 10, 110, 0.2) == pytest.approx(0.2)


def test_plateau_schedule_drops_the_rate_after_patience_evaluations_without_improvement():
    model = _model()
    tc = TrainConfig(schedule="plateau", lr=1.0, warmup_steps=0, plateau_factor=0.5, plateau_patience=2)
    plateau = Plateau("min", tc.plateau_factor, tc.plateau_patience)
    opt = build_optimizer(model, tc)
    schedule = build_schedule(opt, tc, 8, plateau)
    lrs = []
    for value in [3.0, 2.0, 2.5, 2.1, 1.0, 1.5, 1.6]:  # bad evals: -, -, 1, 2 (drop), -, 1, 2 (drop)
        plateau.observe(value)
        opt.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_metric_tracker_modes_and_min_delta():
    assert resolve_mode("val_acc", "auto") == "max" and resolve_mode("val_bpc", "auto") == "min"
    assert resolve_mode("val_acc", "min") == "min"
    t = MetricTracker("max", min_delta=0.01)
    assert t.update(0.5) and not t.update(0.505) and t.update(0.52)
    assert t.best == 0.52 and t.bad_evals == 0
    assert not t.update(0.1) and t.bad_evals == 1


# -- TBPTT windows ----------------------------------------------------------------------------


def _numbers_task(n: int):
    """A stream whose step i holds the number i, to read the layout off."""
    from seqlab.tasks.stream import StreamTask

    class Numbers(StreamTask):
        def stream_data(self):
            return torch.arange(n)

    return Numbers()


def test_stream_rows_continue_from_chunk_to_chunk():
    task = _numbers_task(13)  # 12 (input, target) pairs -> B=2 rows of L=6
    cursor = StreamCursor(task, batch_size=2, k1=3, k2=3)
    w0, w1 = cursor.next_window().batch, cursor.next_window().batch
    assert w0.inputs.tolist() == [[0, 1, 2], [6, 7, 8]]
    assert w1.inputs.tolist() == [[3, 4, 5], [9, 10, 11]]  # row b of chunk 1 continues row b of chunk 0
    assert w1.targets.tolist() == [[4, 5, 6], [10, 11, 12]]
    assert cursor.next_window().batch.inputs.tolist() == [[0, 1, 2], [6, 7, 8]]  # epoch 2 restarts
    assert cursor.epoch == 1 and cursor.state is None


def test_tbptt_k2_windows_rerun_the_previous_steps_unscored():
    task = _numbers_task(31)  # 30 pairs, one row
    cursor = StreamCursor(task, batch_size=1, k1=3, k2=5)
    windows = [cursor.next_window() for _ in range(3)]
    assert [w.batch.inputs[0].tolist() for w in windows] == [[0, 1, 2], [1, 2, 3, 4, 5], [4, 5, 6, 7, 8]]
    assert [w.batch.target_mask[0].tolist() for w in windows] == [
        [True] * 3,
        [False, False, True, True, True],
        [False, False, True, True, True],
    ]
    assert [w.split for w in windows] == [1, 3, 3]  # the next window starts at steps 1, 4, 7


def test_echo_task_targets_the_symbol_delay_steps_back():
    task = build_task("echo", {"delay": 2, "stream_len": 50, "eval_len": 10})
    inputs, targets = task.stream_pairs()
    assert targets[:2].tolist() == [IGNORE, IGNORE]
    assert targets[2:].tolist() == inputs[:-2].tolist()
    batch = task.stream_batch(2, 0, 4)
    assert batch.target_mask[0, :2].sum() == 0 and batch.target_mask[1].all()  # row 1 starts mid-stream


# -- state packing ------------------------------------------------------------------------------


def test_optimizer_and_rng_state_round_trip_exactly():
    model = _model()
    opt = build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.9))
    for _ in range(2):
        model(torch.randint(0, 5, (2, 4)))[0].sum().backward()
        opt.step()
    tensors, data = pack_optimizer(opt)
    fresh = build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.9))
    unpack_optimizer(fresh, tensors, data)
    for p in model.parameters():
        assert torch.equal(fresh.state[p]["momentum_buffer"], opt.state[p]["momentum_buffer"])
    generator = torch.Generator().manual_seed(3)
    saved = pack_rng(generator)
    expect = (torch.rand(3), torch.rand(3, generator=generator))
    unpack_rng(generator, saved)
    assert torch.equal(torch.rand(3), expect[0]) and torch.equal(
        torch.rand(3, generator=generator), expect[1]
    )


def test_carried_state_round_trips_through_its_tensors():
    model = SequenceModel(
        ModelConfig(d_model=8, layer_types=["lstm", "mlstm", "xl-attention"]),
        IOSpec(output_dim=5, vocab_size=5),
    )
    _, state = model(torch.randint(0, 5, (2, 6)))
    template = model(torch.zeros(2, 1, dtype=torch.long))[1]
    rebuilt = unpack_carry(pack_carry(state), template, torch.device("cpu"))
    y1, _ = model(torch.randint(0, 5, (2, 3), generator=torch.Generator().manual_seed(1)), state)
    y2, _ = model(torch.randint(0, 5, (2, 3), generator=torch.Generator().manual_seed(1)), rebuilt)
    assert torch.equal(y1, y2)
    detached = detach_state(state)
    leaves = [x for x in torch.utils._pytree.tree_leaves(detached) if isinstance(x, torch.Tensor)]
    assert leaves and all(x.grad_fn is None for x in leaves)


# -- non-finite guard and activation checkpointing ----------------------------------------------


def test_guard_names_the_first_module_and_parameter_that_go_non_finite():
    model = SequenceModel(
        ModelConfig(d_model=8, layer_types=["gru", "lstm"]), IOSpec(output_dim=5, vocab_size=5)
    )
    x = torch.randint(0, 5, (2, 4))
    with torch.no_grad():
        model.blocks[1].mixer.layer.weight_hh_l0[0, 0] = float("nan")
    assert first_nonfinite_output(model, lambda: model(x)).startswith("blocks.1.mixer")
    model(x)[0].sum().backward()
    bad = nonfinite_grads(model)
    assert "blocks.1.mixer.layer.weight_hh_l0" in bad and "blocks.0.mixer.layer.weight_hh_l0" in bad
    message = diagnose(7, float("nan"), model, lambda: model(x))
    assert message.startswith("step 7: non-finite training step (loss nan)")
    assert "first non-finite output in blocks.1.mixer" in message and "non-finite gradients in" in message


@pytest.mark.parametrize("layer", ["lstm", "attention"])
def test_activation_checkpointing_gives_the_same_gradients(layer):
    torch.manual_seed(0)
    plain = _model(layer, dropout=0.1)
    ckpt = _model(layer, dropout=0.1)
    ckpt.load_state_dict(plain.state_dict())
    assert enable_activation_checkpointing(ckpt) == 1
    x = torch.randint(0, 5, (3, 7))
    grads = []
    for model in (plain, ckpt):
        torch.manual_seed(1)  # same dropout masks
        model(x)[0].square().mean().backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
