"""Tasks: targets are right, evaluation measures what it says (oracle and chance predictors)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqlab.tasks import IGNORE, build_task
from seqlab.tasks.adding import BASELINE_MSE, adding_batch
from seqlab.tasks.copy import copy_batch
from seqlab.tasks.parity import parity_batch


def _oracle(batch, num_classes):
    """Logits that put all mass on the true target (class 0 where unscored)."""
    t = batch.targets.clamp(min=0)
    return F.one_hot(t, num_classes).float() * 10


def test_parity_targets_and_padding():
    task = build_task("parity")
    g = torch.Generator().manual_seed(0)
    batch = task.make_batch(torch.tensor([3, 1, 5]), g)
    for b, n in enumerate([3, 1, 5]):
        assert batch.mask[b].sum() == n
        assert batch.targets[b, n - 1] == batch.inputs[b, :n].sum() % 2
        assert (batch.targets[b, : n - 1] == IGNORE).all() and (batch.targets[b, n:] == IGNORE).all()
        assert (batch.inputs[b, n:] == 0).all()


def test_the_worked_examples_of_parity_copy_and_adding():
    _ = IGNORE
    b = parity_batch(torch.tensor([[1, 0, 1, 1], [1, 1, 1, 0]]), torch.tensor([4, 2]))
    assert b.inputs.tolist() == [[1, 0, 1, 1], [1, 1, 0, 0]]
    assert b.targets.tolist() == [[_, _, _, 1], [_, 0, _, _]]
    b = copy_batch(torch.tensor([[2, 0, 5], [4, 7, 7]]), torch.tensor([3, 1]), sep=8, blank=9)
    assert b.inputs.tolist() == [[2, 0, 5, 8, 9, 9, 9], [4, 8, 9, 0, 0, 0, 0]]
    assert b.targets.tolist() == [[_, _, _, _, 2, 0, 5], [_, _, 4, _, _, _, _]]
    assert b.target_mask.sum(1).tolist() == [3, 1] and b.lengths.tolist() == [7, 3]
    b = adding_batch(torch.tensor([[0.3, 0.5, 0.2, 0.9]]), torch.tensor([1]), torch.tensor([2]))
    assert b.inputs[0, :, 1].tolist() == [0, 1, 1, 0]
    assert b.targets[0, -1, 0].item() == pytest.approx(0.7) and b.target_mask[0].tolist() == [0, 0, 0, 1]


def test_parity_evaluation_oracle_and_chance():
    task = build_task("parity", {"test_max_len": 60, "test_per_length": 8, "val_size": 80})
    perfect = task.evaluate(lambda b: _oracle(b, 2), batch_size=64)
    assert perfect["test_acc"] == 1.0 and perfect["val_acc"] == 1.0 and perfect["test_acc_min"] == 1.0
    assert sorted(perfect["test_acc_by_length"]) == list(range(41, 61))
    constant = task.evaluate(lambda b: torch.zeros(*b.inputs.shape, 2), batch_size=64)
    assert 0.3 < constant["test_acc"] < 0.7  # chance level


def test_copy_layout():
    task = build_task("copy", {"num_symbols": 5})
    batch = task.make_batch(torch.tensor([2, 3]), torch.Generator().manual_seed(0))
    x, y = batch.inputs[1], batch.targets[1]
    assert x[3] == task.sep and (x[4:7] == task.blank).all()
    assert torch.equal(y[4:7], x[:3]) and (y[:4] == IGNORE).all()
    assert batch.mask[0].sum() == 5 and (batch.inputs[0, 5:] == 0).all()
    assert task.evaluate(lambda b: _oracle(b, 5), 64)["test_seq_acc"] == 1.0


def test_adding_targets_and_baseline():
    task = build_task("adding", {"length": 10, "test_length": 20, "val_size": 2000})
    batch = task.train_batch(4, torch.Generator().manual_seed(0))
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :5].sum(1) == 1).all()  # one marker in each half
    torch.testing.assert_close(batch.targets[:, -1, 0], (values * markers).sum(1))
    predict_mean = task.evaluate(lambda b: torch.ones(*b.inputs.shape[:2], 1), batch_size=500)
    assert abs(predict_mean["val_mse"] - BASELINE_MSE) < 0.02


def test_charlm_windows_shift_by_one(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abcdefghij" * 30)
    task = build_task("charlm", {"text": str(text), "seq_len": 8, "eval_windows": 4})
    batch = task.train_batch(3, torch.Generator().manual_seed(0))
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    assert task.tokenizer.decode(task.tokenizer.encode("abc")) == "abc"
    uniform = task.evaluate(lambda b: torch.zeros(*b.inputs.shape, task.io.output_dim), 2)
    assert abs(uniform["val_bpc"] - torch.log2(torch.tensor(10.0)).item()) < 1e-5
