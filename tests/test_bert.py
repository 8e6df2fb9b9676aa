"""BERT-style encoder: masking statistics, bidirectionality, heads, the mlm task end to end."""

from __future__ import annotations

import pytest
import torch

from seqlab.errors import ConfigError, ShapeError
from seqlab.models import BertConfig, BertModel
from seqlab.models.heads import (
    Pooler,
    SequenceClassificationHead,
    SpanExtractionHead,
    TokenClassificationHead,
    best_span,
)
from seqlab.spec import IOSpec
from seqlab.tasks import IGNORE, build_task
from seqlab.tasks.mlm import mask_tokens
from seqlab.training import ExperimentConfig, train

V = 13
IO = IOSpec(output_dim=V, vocab_size=V)


def _bert(io=IO, **kw) -> BertModel:
    torch.manual_seed(0)
    options = {"d_model": 16, "num_heads": 2, "d_ff": 32, "dropout": 0.0, "max_len": 32} | kw
    return BertModel(BertConfig(**options), io).double().eval()


def test_masking_follows_15_80_10_10():
    """200k tokens, fixed seed: selection 15 %, and of the selected 80 % [MASK], 10 % a random
    regular token (which equals the original 1/50 of the time), 10 % unchanged; bounds are 4σ."""
    regular, mask_id = 50, 99
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, regular, (400, 500), generator=g)
    maskable = torch.ones_like(tokens, dtype=torch.bool)
    maskable[:, 0] = False  # e.g. [CLS]
    inputs, targets = mask_tokens(tokens, maskable, mask_id, regular, g)
    selected = targets != IGNORE
    n_maskable = int(maskable.sum())
    rate = selected.sum().item() / n_maskable
    assert abs(rate - 0.15) < 4 * (0.15 * 0.85 / n_maskable) ** 0.5
    assert not selected[:, 0].any() and (inputs[~selected] == tokens[~selected]).all()
    assert (targets[selected] == tokens[selected]).all()
    n = selected.sum().item()
    sel_in, sel_orig = inputs[selected], tokens[selected]
    is_mask = (sel_in == mask_id).float().mean().item()
    changed = ((sel_in != mask_id) & (sel_in != sel_orig)).float().mean().item()
    same = (sel_in == sel_orig).float().mean().item()
    for observed, expected in [(is_mask, 0.8), (changed, 0.1 * 49 / 50), (same, 0.1 + 0.1 / 50)]:
        assert abs(observed - expected) < 4 * (expected * (1 - expected) / n) ** 0.5
    # random replacements are uniform over the regular vocabulary (chi-square, 49 dof)
    replaced = sel_in[(sel_in != mask_id) & (sel_in != sel_orig)]
    assert int(replaced.max()) < regular
    counts = torch.bincount(replaced, minlength=regular).double()
    expected_count = len(replaced) / regular
    chi2 = ((counts - expected_count) ** 2 / expected_count).sum().item()
    assert chi2 < 90  # the 99.99th percentile of chi-square(49) is about 90


def test_encoder_is_bidirectional_and_padding_invariant():
    model = _bert()
    x = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(1))
    out, state = model(x)
    assert out.shape == (2, 9, V) and state is None
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % V
    assert not torch.allclose(model(changed)[0][:, 0], out[:, 0])  # the first token sees the last
    mask = torch.arange(9)[None] < torch.tensor([9, 5])[:, None]
    padded, _ = model(x.masked_fill(~mask, 3), mask=mask)
    alone, _ = model(x[1:, :5])
    torch.testing.assert_close(padded[1, :5], alone[0], atol=1e-10, rtol=1e-10)
    assert model.mlm.decoder.weight is model.embed.tokens.weight  # tied to the input embedding


def test_next_sentence_logits_at_cls():
    model = _bert(IOSpec(output_dim=V + 2, vocab_size=V))
    x = torch.randint(0, V, (3, 6))
    out, _ = model(x, segments=(torch.arange(6) > 2).long().expand(3, -1))
    assert out.shape == (3, 6, V + 2)
    assert (out[:, 1:, V:] == 0).all() and (out[:, 0, V:] != 0).all()
    with pytest.raises(ShapeError, match="segments"):
        model(x, segments=torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ConfigError, match="segments >= 2"):
        _bert(IOSpec(output_dim=V + 2, vocab_size=V), segments=0)
    with pytest.raises(ConfigError, match="masked-LM"):
        _bert(IOSpec(output_dim=3, vocab_size=V))


def test_pooling_heads_by_hand():
    torch.manual_seed(0)
    hidden = torch.randn(2, 4, 6)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool()
    mean = Pooler(6, "mean")(hidden, mask)
    torch.testing.assert_close(mean[0], hidden[0, :2].mean(0))
    torch.testing.assert_close(mean[1], hidden[1].mean(0))
    cls = Pooler(6, "cls")
    torch.testing.assert_close(cls(hidden), torch.tanh(hidden[:, 0] @ cls.dense.weight.T + cls.dense.bias))
    assert SequenceClassificationHead(6, 3, "mean").eval()(hidden, mask).shape == (2, 3)
    assert TokenClassificationHead(6, 5).eval()(hidden).shape == (2, 4, 5)
    start, end = SpanExtractionHead(6)(hidden, mask)
    assert torch.isinf(start[0, 2:]).all() and torch.isfinite(end[1]).all()
    with pytest.raises(ConfigError, match="pooling"):
        Pooler(6, "max")


def test_best_span_hand_example():
    start = torch.tensor([[0.0, 5.0, 1.0, 0.0]])
    end = torch.tensor([[9.0, 0.0, 0.0, 2.0]])  # end 0 < start 1 is not allowed
    i, j = best_span(start, end)
    assert (i.item(), j.item()) == (0, 0)  # 0 + 9 beats 5 + 2
    start, end = torch.tensor([[0.0, 1.0, 0.5, 0.0]]), torch.tensor([[0.0, 0.0, 0.0, 5.0]])
    assert [t.item() for t in best_span(start, end, max_len=3)] == [1, 3]  # 1 + 5
    assert [t.item() for t in best_span(start, end, max_len=2)] == [2, 3]  # (1, 3) too long: 0.5 + 5


def test_encoder_and_head_learn_a_sequence_label():
    """Fine-tuning path: encode + [CLS] head learns 'does token 1 occur?' in a few hundred steps."""
    torch.manual_seed(0)
    model = BertModel(BertConfig(d_model=32, num_heads=2, d_ff=64, dropout=0.0, layers=1), IO)
    head = SequenceClassificationHead(32, 2, "cls", dropout=0.0)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        x = torch.randint(2, V, (n, 8), generator=g)
        has = torch.rand(n, generator=g) < 0.5
        x[has, torch.randint(1, 8, (int(has.sum()),), generator=g)] = 1
        x[:, 0] = 0  # [CLS]
        return x, has.long()

    for _ in range(200):
        x, y = batch(32)
        loss = torch.nn.functional.cross_entropy(head(model.encode(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(512)
    with torch.no_grad():
        acc = (head(model.encode(x)).argmax(-1) == y).float().mean().item()
    assert acc > 0.95


@pytest.mark.parametrize("nsp", [False, True])
def test_mlm_task_batches(nsp):
    task = build_task("mlm", {"seq_len": 21, "next_sentence": nsp})
    batch = task.train_batch(64, torch.Generator().manual_seed(0))
    original = torch.where(batch.target_mask, batch.targets, batch.inputs)
    assert (original[:, 0] == task.cls).all() and (original[:, -1] == task.sep).all()
    assert not batch.target_mask[:, 0].any() and not batch.target_mask[:, -1].any()
    if nsp:
        L = 9
        assert (original[:, L + 1] == task.sep).all()
        assert batch.segments[0].tolist() == [0] * (L + 2) + [1] * (L + 1)
        assert 0 < batch.labels.float().mean() < 1
        text = task.tokenizer.decode(task.train_data.tolist())
        for row, label in zip(original.tolist(), batch.labels.tolist(), strict=True):
            a, b = task.tokenizer.decode(row[1 : L + 1]), task.tokenizer.decode(row[L + 2 : 2 * L + 2])
            assert label == 0 or a + b in text  # "is next" pairs are contiguous in the text
    with pytest.raises(ConfigError, match="seq_len"):
        build_task("mlm", {"seq_len": 4})


def test_mlm_training_run(tmp_path):
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "mlm", "seq_len": 32, "next_sentence": True, "eval_windows": 16},
            "model": {"arch": "bert", "d_model": 32, "num_heads": 2, "d_ff": 64, "layers": 1},
            "train": {"steps": 30, "batch_size": 8, "eval_every": 0, "lr": 3e-3},
        }
    )
    metrics = train(config, tmp_path, progress=False)
    assert {"val_loss", "val_acc", "val_ppl", "val_nsp_acc"} <= set(metrics)
    assert metrics["val_loss"] < 4.2  # below uniform guessing over ~70 tokens (ln 70 ≈ 4.25)
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "checkpoint").is_dir()
