"""Chomsky-hierarchy tasks: worked examples, ground truth against plain-Python references,
layout and masks, determinism, evaluation, and one tiny training run through the trainer."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from seqlab.tasks import IGNORE, TASKS, build_task, chomsky_regular, chomsky_sensitive
from seqlab.tasks import chomsky_context_free as cf
from seqlab.training import ExperimentConfig, train

FINAL = ["even-pairs", "cycle-navigation", "modular-arithmetic", "modular-arithmetic-brackets"]
TRANSDUCTIONS = ["stack-manipulation", "reverse-string", "duplicate-string", "bucket-sort"]
ALL = FINAL + TRANSDUCTIONS


def _encode(name, *strings, **config):
    task = build_task(name, config)
    tokens = [list(s) for s in strings]
    width = max(len(s) for s in tokens)
    padded = torch.tensor([s + [0] * (width - len(s)) for s in tokens])
    return task, task.encode(padded, torch.tensor([len(s) for s in tokens]))


def _final_labels(batch):
    """The one scored target of each row (many-to-one tasks)."""
    return [int(batch.targets[b][batch.target_mask[b]].item()) for b in range(len(batch.targets))]


def _outputs(batch):
    """The scored targets of each row (transductions)."""
    return [batch.targets[b][batch.target_mask[b]].tolist() for b in range(len(batch.targets))]


# --- worked examples (the docstrings') ----------------------------------------------------------


def test_importing_the_modules_registers_the_tasks():
    assert TASKS.get("even-pairs") is chomsky_regular.EvenPairsTask
    assert TASKS.get("stack-manipulation") is cf.StackManipulationTask
    assert TASKS.get("bucket-sort") is chomsky_sensitive.BucketSortTask


def test_regular_worked_examples():
    _, batch = _encode("even-pairs", [0, 0, 1, 1, 1, 0], [0, 1, 0, 1, 0, 0, 1])
    assert _final_labels(batch) == [0, 1]
    assert batch.target_mask[0, 5] and batch.targets[0, 6] == IGNORE  # row 0 is padded by one
    _, batch = _encode("cycle-navigation", [2, 0, 1, 0, 0])
    assert _final_labels(batch) == [3]
    P, M, X = 5, 6, 7  # + − ·
    _, batch = _encode("modular-arithmetic", [1, P, 2, X, 3], [1, M, 1, M, 1], [0, X, 1, P, 4, X, 3, M, 2])
    assert _final_labels(batch) == [2, 4, 0]


def test_context_free_worked_examples():
    task, batch = _encode("stack-manipulation", [0, 1, 1, 0, 4, 2, 2])
    assert _outputs(batch) == [[1, 1, 0, 2]]
    assert batch.inputs[0].tolist() == [0, 1, 1, 0, 4, 2, 2, task.sep] + [task.blank] * 8
    assert batch.target_mask[0].tolist() == [False] * 8 + [True] * 4 + [False] * 4
    _, batch = _encode("stack-manipulation", [1, 1, 0, 2, 2, 2])  # popped empty: only the end token
    assert _outputs(batch) == [[2]]
    task, batch = _encode("reverse-string", [0, 1, 1])
    assert batch.inputs[0].tolist() == [0, 1, 1, task.sep, task.blank, task.blank, task.blank]
    assert batch.targets[0].tolist() == [IGNORE] * 4 + [1, 1, 0]
    _, batch = _encode("modular-arithmetic-brackets", [8, 3, 7, 8, 4, 6, 8, 6, 2, 9, 9, 9])
    assert _final_labels(batch) == [3] and batch.target_mask[0, 11]
    assert cf.evaluate_brackets([8, 1, 6, 6, 2, 9]) == 3  # (1 − −2)


def test_context_sensitive_worked_examples():
    task, batch = _encode("duplicate-string", [1, 0, 1])
    assert batch.inputs[0].tolist() == [1, 0, 1, task.sep] + [task.blank] * 6
    assert _outputs(batch) == [[1, 0, 1, 1, 0, 1]]
    _, batch = _encode("bucket-sort", [1, 0, 2, 0, 4, 1, 1, 2])
    assert _outputs(batch) == [[0, 0, 1, 1, 1, 2, 2, 4]]
    _, batch = _encode("bucket-sort", [1, 1, 1, 0, 0, 0, 1], num_symbols=2)
    assert _outputs(batch) == [[0, 0, 0, 1, 1, 1, 1]]


# --- ground truth against independent plain-Python references ------------------------------------


def _strings(batch, task, name):
    """Each row's input string, recovered from the batch (before the separator for transductions)."""
    if name in TRANSDUCTIONS:
        return [row[: row.index(task.sep)] for row in batch.inputs.tolist()]
    return [row[:n] for row, n in zip(batch.inputs.tolist(), batch.lengths.tolist(), strict=True)]


def _python_expression(tokens):
    return "".join("01234+-*()"[t] for t in tokens)


def _stack(tokens):
    stack = []
    for t in tokens:
        if t in (0, 1):
            stack.append(t)
        elif t == 2:
            if stack:
                stack.pop()
        else:
            stack.append(t - 3)
    return [*reversed(stack), 2]


REFERENCE = {
    "even-pairs": lambda s: sum(a != b for a, b in itertools.pairwise(s)) % 2,
    "cycle-navigation": lambda s: sum(t - 1 for t in s) % 5,
    "modular-arithmetic": lambda s: eval(_python_expression(s)) % 5,
    "modular-arithmetic-brackets": lambda s: eval(_python_expression(s)) % 5,
    "stack-manipulation": _stack,
    "reverse-string": lambda s: s[::-1],
    "duplicate-string": lambda s: s + s,
    "bucket-sort": sorted,
}


@pytest.mark.parametrize("name", ALL)
def test_targets_agree_with_a_python_reference(name):
    task = build_task(name)
    lengths = torch.arange(1, 61)
    batch = task.make_batch(lengths, torch.Generator().manual_seed(3))
    strings = _strings(batch, task, name)
    got = _final_labels(batch) if name in FINAL else _outputs(batch)
    assert got == [REFERENCE[name](s) for s in strings]
    # the strings belong to the language's input set
    for n, s in zip(lengths.tolist(), strings, strict=True):
        assert len(s) == (n - 1 + n % 2 if name == "modular-arithmetic" else n)
    if name == "modular-arithmetic-brackets":
        assert all(s.count(8) == s.count(9) for s in strings)
    if name == "stack-manipulation":
        assert all(s[0] in (0, 1) for s in strings)  # a non-empty initial stack


# --- layout, masks, determinism ------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_layout_masks_and_determinism(name):
    task = build_task(name)
    lengths = torch.tensor([7, 1, 12, 4])
    a = task.make_batch(lengths, torch.Generator().manual_seed(5))
    b = task.make_batch(lengths, torch.Generator().manual_seed(5))
    c = task.make_batch(lengths, torch.Generator().manual_seed(6))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    assert a.inputs.shape == a.targets.shape == a.mask.shape == a.target_mask.shape
    assert a.inputs.shape[1] == int(a.lengths.max()) and torch.equal(a.mask.sum(1), a.lengths)
    odd = name == "modular-arithmetic"  # even lengths drop one token (the paper's rule)
    assert a.lengths.tolist() == [task.sequence_tokens(n) for n in ([7, 1, 11, 3] if odd else [7, 1, 12, 4])]
    assert not (a.target_mask & ~a.mask).any()  # padding is never scored
    assert (a.inputs[~a.mask] == 0).all()
    assert (a.targets[~a.target_mask] == IGNORE).all() and (a.targets[a.target_mask] >= 0).all()
    assert int(a.targets.max()) < task.io.output_dim and int(a.inputs.max()) < task.io.vocab_size


@pytest.mark.parametrize("name", ["modular-arithmetic-brackets", "duplicate-string"])
def test_token_budget_batches(name):
    task = build_task(name)
    batch = task.train_batch_tokens(400, torch.Generator().manual_seed(0))
    assert batch.inputs.numel() <= 400 and len(batch.inputs) >= 1


# --- evaluation ----------------------------------------------------------------------------------


def _oracle(num_classes):
    return lambda b: F.one_hot(b.targets.clamp(min=0), num_classes).float() * 10


@pytest.mark.parametrize("name", ALL)
def test_evaluation_oracle_is_perfect(name):
    config = {"max_len": 6, "test_min_len": 7, "test_max_len": 12, "test_per_length": 3, "val_size": 24}
    task = build_task(name, config)
    metrics = task.evaluate(_oracle(task.io.output_dim), batch_size=16)
    assert metrics["test_acc"] == metrics["val_acc"] == metrics["test_seq_acc"] == 1.0
    assert sorted(metrics["test_acc_by_length"]) == list(range(7, 13))


def test_evaluation_at_chance():
    task = build_task("cycle-navigation", {"test_max_len": 80, "test_per_length": 40, "val_size": 200})
    metrics = task.evaluate(lambda b: torch.zeros(*b.inputs.shape, 5), batch_size=256)
    assert 0.1 < metrics["test_acc"] < 0.3  # five classes


# --- the trainer ---------------------------------------------------------------------------------


def test_trains_end_to_end(tmp_path):
    config = ExperimentConfig.from_dict(
        {
            "task": {
                "name": "reverse-string",
                "max_len": 4,
                "test_min_len": 5,
                "test_max_len": 6,
                "test_per_length": 4,
                "val_size": 16,
            },
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {
                "steps": 6,
                "batch_size": 8,
                "lr": 1e-2,
                "warmup_steps": 1,
                "eval_every": 6,
                "log_every": 3,
                "threads": 1,
            },
        }
    )
    metrics = train(config, tmp_path, progress=False)
    assert 0.0 <= metrics["test_acc"] <= 1.0 and set(metrics["test_acc_by_length"]) == {5, 6}
    assert (tmp_path / "final_metrics.json").exists()
