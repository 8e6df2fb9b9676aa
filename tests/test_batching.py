"""Batching: length buckets and token budgets (seqlab.data.batching, Task.train_batch_tokens)."""

from __future__ import annotations

import doctest
import itertools

import pytest
import torch
import torch.nn.functional as F

from seqlab.data import batching
from seqlab.data.batching import bucket_batches, pad_sequences, padding_fraction, random_batches
from seqlab.errors import ConfigError
from seqlab.tasks import IGNORE, Batch, Task, build_task


def _uniform_lengths(n: int = 4096, high: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, high + 1, (n,), generator=torch.Generator().manual_seed(seed))


def _batch_tokens(batch) -> int:
    """Padded token slots of a task batch: B · T, plus B · S for a source (seq2seq)."""
    tokens = batch.inputs.shape[0] * batch.inputs.shape[1]
    return tokens + (batch.source.numel() if batch.source is not None else 0)


def test_docstring_examples():
    assert doctest.testmod(batching).failed == 0


def test_pad_sequences():
    x, mask = pad_sequences([torch.tensor([1.0, 2.0]), torch.tensor([3.0]), torch.tensor([])], pad_value=9)
    assert x.tolist() == [[1.0, 2.0], [3.0, 9.0], [9.0, 9.0]]
    assert mask.sum(1).tolist() == [2, 1, 0] and mask.dtype == torch.bool
    with pytest.raises(ConfigError):
        pad_sequences([])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 7},
        {"max_tokens": 300},
        {"max_tokens": 300, "batch_size": 4},
        {"max_tokens": 300, "bucket_width": 16},
        {"batch_size": 5, "bucket_width": 1, "shuffle": False},
    ],
)
def test_every_index_once_and_limits_respected(kwargs):
    lengths = _uniform_lengths(500, high=120)
    batches = bucket_batches(lengths, generator=torch.Generator().manual_seed(1), **kwargs)
    everything = torch.cat(batches)
    assert torch.equal(everything.sort().values, torch.arange(500))  # each index exactly once
    for b in batches:
        assert len(b) > 0
        if "batch_size" in kwargs:
            assert len(b) <= kwargs["batch_size"]
        if "max_tokens" in kwargs:
            assert len(b) * int(lengths[b].max()) <= kwargs["max_tokens"]
        if "bucket_width" in kwargs:  # batches never mix buckets
            assert (lengths[b] // kwargs["bucket_width"]).unique().numel() == 1


def test_budget_batches_are_full():
    """Greedy packing: a batch closes only when the next (longer) item would break the budget."""
    lengths = _uniform_lengths(500, high=120)
    batches = bucket_batches(lengths, max_tokens=300, shuffle=False)
    for b, nxt in itertools.pairwise(batches):
        assert (len(b) + 1) * int(lengths[nxt[0]]) > 300


def test_deterministic_given_generator():
    lengths = _uniform_lengths(300)

    def draw(seed):
        return bucket_batches(
            lengths, max_tokens=800, bucket_width=8, generator=torch.Generator().manual_seed(seed)
        )

    a, b, c = draw(3), draw(3), draw(4)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    assert [x.tolist() for x in a] != [x.tolist() for x in c]  # the order of batches is shuffled
    unshuffled = bucket_batches(lengths, max_tokens=800, shuffle=False)
    assert [int(lengths[x].max()) for x in unshuffled] == sorted(int(lengths[x].max()) for x in unshuffled)


def test_bucketing_reduces_padding():
    """Lengths uniform on 1..200, 4096 sequences. Measured (seed 0): random batches of 32 pad
    0.480 of their token slots; sorted batches of 32 0.008; width-10 buckets 0.041; a
    4096-token budget 0.017 (sorted) / 0.042 (width 10)."""
    lengths, g = _uniform_lengths(), torch.Generator().manual_seed(0)
    random = padding_fraction(lengths, random_batches(len(lengths), 32, g))
    sorted_ = padding_fraction(lengths, bucket_batches(lengths, batch_size=32, generator=g))
    bucketed = padding_fraction(lengths, bucket_batches(lengths, batch_size=32, bucket_width=10, generator=g))
    budget = padding_fraction(lengths, bucket_batches(lengths, max_tokens=4096, bucket_width=10, generator=g))
    assert 0.4 < random < 0.6
    assert sorted_ < 0.02 and bucketed < 0.1 and budget < 0.1


def test_bucket_batches_errors():
    lengths = torch.tensor([3, 9, 4])
    with pytest.raises(ConfigError, match="sequence 1"):  # longer than the budget: named
        bucket_batches(lengths, max_tokens=8, shuffle=False)
    for kwargs in [{}, {"max_tokens": 0}, {"batch_size": -1}, {"batch_size": 2, "bucket_width": 0}]:
        with pytest.raises(ConfigError):
            bucket_batches(lengths, shuffle=False, **kwargs)
    with pytest.raises(ConfigError, match="Generator"):
        bucket_batches(lengths, batch_size=2, shuffle=True)
    with pytest.raises(ConfigError, match="integer"):
        bucket_batches(lengths.float(), batch_size=2, shuffle=False)
    assert bucket_batches(torch.zeros(0, dtype=torch.long), batch_size=2, shuffle=False) == []


# ---- Task.train_batch_tokens ---------------------------------------------------------------


# real tokens of a row of string length n: parity n; copy x SEP blanks; seq2seq decoder BOS y / y EOS
REAL_TOKENS = {
    "parity": lambda n: n,
    "copy": lambda n: 2 * n + 1,
    "reverse": lambda n: n + 1,
    "sort": lambda n: n + 1,
}


@pytest.mark.parametrize("name", ["parity", "copy", "reverse", "sort"])
def test_length_tasks_bucketed_batches_within_budget(name):
    task, g = build_task(name), torch.Generator().manual_seed(0)
    c, max_tokens = task.config, 4 * task.train_length
    width = -(-(c.max_len - c.min_len + 1) // task.num_buckets)
    for _ in range(30):
        batch = task.train_batch_tokens(max_tokens, g)
        assert _batch_tokens(batch) <= max_tokens
        n = (batch.lengths - 1) // 2 if name == "copy" else batch.lengths  # copy: lengths = 2n + 1
        assert n.min() >= c.min_len and n.max() <= c.max_len
        assert ((n - c.min_len) // width).unique().numel() == 1  # one bucket
        real = batch.mask.sum(1)  # the mask marks exactly the real, left-aligned tokens of each row
        assert torch.equal(real, REAL_TOKENS[name](n))
        assert torch.equal(batch.mask, torch.arange(batch.mask.shape[1]) < real[:, None])
        assert batch.target_mask.any(1).all() and not (batch.target_mask & ~batch.mask).any()
        if batch.source is not None:
            assert torch.equal(batch.source_mask.sum(1), n)


def test_length_task_batch_fills_budget_and_pads_little():
    task = build_task("parity")  # lengths 1..40, default bucket width ⌈40 / 16⌉ = 3
    batch = task.train_batch_tokens(400, torch.Generator().manual_seed(0), bucket_width=5)
    top = -(-int(batch.lengths.max()) // 5) * 5  # the bucket's longest length
    assert batch.inputs.shape[0] == 400 // top
    g = torch.Generator().manual_seed(0)

    def pad(draw):
        masks = [draw().mask for _ in range(200)]
        return 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)

    random = pad(lambda: task.train_batch(2048 // 40, g))
    bucketed = pad(lambda: task.train_batch_tokens(2048, g))
    assert random > 0.35 and bucketed < 0.15  # measured: 0.486 and 0.082


def test_length_distribution_stays_uniform():
    """P(length = n) = 1/N for every drawn sequence: the per-batch length histograms, averaged
    over batches, are uniform on min_len..max_len (loose bound on 3000 batches: ±35 %)."""
    task = build_task("parity", {"min_len": 3, "max_len": 22})
    g, N, draws = torch.Generator().manual_seed(0), 20, 3000
    freq = torch.zeros(N)
    for _ in range(draws):
        n = task.train_batch_tokens(100, g, bucket_width=3).lengths  # buckets 3-5, ..., 21-22
        freq += torch.bincount(n - 3, minlength=N).float() / len(n)
    freq /= draws
    assert (freq - 1 / N).abs().max() < 0.35 / N, freq


def test_train_batch_unchanged_by_bucketing():
    """Existing seeds reproduce: train_batch draws exactly what it drew before."""
    task = build_task("parity")
    batch = task.train_batch(5, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 41, (5,), generator=g)
    assert torch.equal(batch.inputs, task.make_batch(lengths, g).inputs)


def test_seq2seq_counts_source_plus_target():
    task = build_task("reverse")  # lengths 1..12: 2·12 + 1 = 25 tokens
    assert task.train_length == 25 and task.sequence_tokens(3) == 7
    batch = task.train_batch_tokens(25, torch.Generator().manual_seed(0))  # room for one only
    assert batch.source.shape[0] == 1


def test_fixed_length_tasks_default_batch_size():
    adding = build_task("adding", {"length": 30})
    batch = adding.train_batch_tokens(100, torch.Generator().manual_seed(0))
    assert adding.train_length == 30 and tuple(batch.inputs.shape[:2]) == (3, 30)
    mlm = build_task("mlm", {"seq_len": 32})
    assert tuple(mlm.train_batch_tokens(100, torch.Generator().manual_seed(0)).inputs.shape) == (3, 32)
    nsp = build_task("mlm", {"seq_len": 32, "next_sentence": True})
    assert nsp.train_length == nsp.train_batch(1, torch.Generator().manual_seed(0)).inputs.shape[1] == 31


def test_token_budget_errors():
    parity = build_task("parity")  # longest training sequence: 40 tokens
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="smaller than one training sequence of task 'parity'"):
        parity.train_batch_tokens(39, g)
    for bad in [0, -5]:
        with pytest.raises(ConfigError, match="positive"):
            parity.train_batch_tokens(bad, g)
    with pytest.raises(ConfigError, match="adding"):
        build_task("adding").train_batch_tokens(10, g)

    class NoLength(Task):
        def train_batch(self, batch_size, generator):
            raise AssertionError("not reached")

    with pytest.raises(ConfigError, match=r"'NoLength'.*train\.batch_size"):
        NoLength.__new__(NoLength).train_batch_tokens(100, g)  # no Config needed to get here


# ---- the loss ignores padding ---------------------------------------------------------------


def test_padding_never_changes_the_loss():
    """Task.loss = Σ mask·L / Σ mask: a padded batch gives the loss of its sequences' scored
    tokens pooled, whatever the logits at padded positions and however much padding."""
    task, g = build_task("copy", {"num_symbols": 5}), torch.Generator().manual_seed(0)
    batch = task.make_batch(torch.tensor([2, 5, 3]), g)
    outputs = torch.randn(*batch.inputs.shape, 5, generator=g)
    loss = task.loss(outputs, batch)
    # 1. each sequence alone, unpadded: pool the per-token losses
    sums, count = 0.0, 0
    for b, n in enumerate(batch.lengths.tolist()):
        tm, t = batch.target_mask[b, :n], batch.targets[b, :n]
        sums += float(F.cross_entropy(outputs[b, :n][tm], t[tm], reduction="sum"))
        count += int(tm.sum())
    torch.testing.assert_close(loss, torch.tensor(sums / count))
    # 2. garbage at padded positions and 4 more padded steps change nothing
    noisy = torch.where(batch.mask[..., None], outputs, torch.full_like(outputs, 1e4))
    longer = Batch(
        F.pad(batch.inputs, (0, 4)),
        F.pad(batch.targets, (0, 4), value=IGNORE),
        F.pad(batch.target_mask, (0, 4)),
    )
    torch.testing.assert_close(task.loss(noisy, batch), loss)
    torch.testing.assert_close(task.loss(F.pad(outputs, (0, 0, 0, 4), value=7.0), longer), loss)
