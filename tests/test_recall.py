"""Recall tasks (MQAR, selective copy): worked examples, targets against plain-Python references,
masks, determinism, evaluation, configuration errors, and a tiny training run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import ConfigError
from seqlab.tasks import IGNORE, TASKS, build_task, recall
from seqlab.training import ExperimentConfig, train


def _oracle(num_classes):
    return lambda b: F.one_hot(b.targets.clamp(min=0), num_classes).float() * 10


def test_importing_the_module_registers_the_tasks():
    assert TASKS.get("mqar") is recall.MQARTask and TASKS.get("selective-copy") is recall.SelectiveCopyTask


# --- MQAR ----------------------------------------------------------------------------------------


def test_mqar_worked_example():
    inputs, targets = recall.mqar_layout(
        torch.tensor([[2, 4]]),
        torch.tensor([[8, 7]]),
        torch.tensor([[3, 0]]),
        torch.zeros(1, 12, dtype=torch.long),
    )
    assert inputs[0].tolist() == [2, 8, 4, 7, 4, 0, 0, 0, 0, 0, 2, 0]
    assert targets[0].tolist() == [IGNORE] * 4 + [7] + [IGNORE] * 5 + [8, IGNORE]


@pytest.mark.parametrize(("seq_len", "pairs"), [(64, 4), (128, 8), (256, 16)])
def test_mqar_targets_agree_with_a_dictionary(seq_len, pairs):
    task = build_task("mqar", {"vocab_size": 1024, "seq_len": seq_len, "num_kv_pairs": pairs})
    batch = task.train_batch(32, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == batch.targets.shape == (32, seq_len) and batch.mask is None
    for x, y in zip(batch.inputs.tolist(), batch.targets.tolist(), strict=True):
        keys, values = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
        assert len(set(keys)) == pairs and all(1 <= k < 512 for k in keys)
        assert len(set(values)) == pairs and all(512 <= v < 1024 for v in values)
        memory = dict(zip(keys, values, strict=True))
        queries = [t for t in range(seq_len) if y[t] != IGNORE]
        assert sorted(x[t] for t in queries) == sorted(keys)  # every key queried once
        assert all(t >= 2 * pairs and (t - 2 * pairs) % 2 == 0 for t in queries)
        assert all(y[t] == memory[x[t]] for t in queries)


def test_mqar_queries_follow_the_power_law():
    task = build_task("mqar", {"vocab_size": 512, "seq_len": 256, "num_kv_pairs": 4})
    batch = task.train_batch(400, torch.Generator().manual_seed(1))
    slots = (batch.target_mask.nonzero()[:, 1] - 8) // 2  # 124 slots
    counts = torch.bincount(slots, minlength=124)
    assert counts[:10].sum() > counts[-10:].sum()  # near queries are more frequent than far ones


def test_mqar_determinism_and_evaluation():
    config = {"vocab_size": 64, "seq_len": 16, "num_kv_pairs": 2, "val_size": 40, "test_seq_len": 32}
    task = build_task("mqar", config)
    a = task.train_batch(8, torch.Generator().manual_seed(2))
    b = task.train_batch(8, torch.Generator().manual_seed(2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    metrics = task.evaluate(_oracle(64), batch_size=16)
    assert metrics["val_acc"] == metrics["test_acc"] == metrics["val_seq_acc"] == 1.0
    chance = task.evaluate(lambda b: torch.zeros(*b.inputs.shape, 64), batch_size=16)
    assert chance["val_acc"] < 0.2


@pytest.mark.parametrize(
    "config",
    [
        {"seq_len": 63},
        {"seq_len": 16, "num_kv_pairs": 5},
        {"vocab_size": 32, "seq_len": 64},
        {"test_seq_len": 31},
    ],
)
def test_mqar_bad_configs(config):
    with pytest.raises(ConfigError, match="mqar"):
        build_task("mqar", {"vocab_size": 256} | config)


# --- selective copy ------------------------------------------------------------------------------


def test_selective_copy_worked_example():
    inputs, targets, mask = recall.selective_copy_layout(
        torch.tensor([[3, 1]]), torch.tensor([[1, 4]]), torch.tensor([6]), noise=14, marker=15
    )
    assert inputs[0].tolist() == [14, 3, 14, 14, 1, 14, 15, 15]
    assert targets[0].tolist() == [IGNORE] * 6 + [3, 1] and mask.all()


def test_selective_copy_targets_masks_and_determinism():
    task = build_task("selective-copy")
    lengths = torch.tensor([8, 40, 17, 23])
    a = task.make_batch(lengths, torch.Generator().manual_seed(4))
    b = task.make_batch(lengths, torch.Generator().manual_seed(4))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert a.inputs.shape == (4, 48) and a.lengths.tolist() == [16, 48, 25, 31]
    assert not (a.target_mask & ~a.mask).any() and (a.inputs[~a.mask] == 0).all()
    for x, y, n in zip(a.inputs.tolist(), a.targets.tolist(), lengths.tolist(), strict=True):
        data = [t for t in x[:n] if t != task.noise]  # the reference: the non-noise tokens, in order
        assert len(data) == 8 and x[n : n + 8] == [task.marker] * 8
        assert y[n : n + 8] == data and all(t == IGNORE for t in y[:n] + y[n + 8 :])


def test_selective_copy_evaluation_and_errors():
    config = {"num_tokens": 3, "min_len": 3, "max_len": 6, "test_min_len": 7, "test_max_len": 9}
    task = build_task("selective-copy", config | {"test_per_length": 4, "val_size": 16})
    metrics = task.evaluate(_oracle(14), batch_size=8)
    assert metrics["test_acc"] == metrics["val_seq_acc"] == 1.0 and sorted(metrics["test_acc_by_length"]) == [
        7,
        8,
        9,
    ]
    with pytest.raises(ConfigError, match="num_tokens"):
        build_task("selective-copy", {"num_tokens": 10, "min_len": 5})


# --- the trainer ---------------------------------------------------------------------------------


def test_mqar_trains_end_to_end(tmp_path):
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "mqar", "vocab_size": 64, "seq_len": 16, "num_kv_pairs": 2, "val_size": 16},
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {
                "steps": 6,
                "batch_size": 8,
                "lr": 1e-2,
                "warmup_steps": 1,
                "eval_every": 6,
                "threads": 1,
            },
        }
    )
    metrics = train(config, tmp_path, progress=False)
    assert 0.0 <= metrics["val_acc"] <= 1.0 and "test_acc" in metrics
    assert (tmp_path / "final_metrics.json").exists()
