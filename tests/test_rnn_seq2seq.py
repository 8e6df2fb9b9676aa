"""The RNN encoder-decoder with attention and its attention ops (Bahdanau / Luong)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from checks import assert_beam_one_equals_greedy, assert_incremental_decoding_equals_teacher_forcing
from seqlab.config import from_dict, to_dict
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.rnn_attention import DecoderCell
from seqlab.models import MODELS, RNNSeq2Seq, RNNSeq2SeqConfig, dump_model, parse_model
from seqlab.ops.attention import additive
from seqlab.spec import IOSpec

V = 11
IO = IOSpec(output_dim=V, vocab_size=V, source_vocab_size=V, shared_vocab=True)  # one vocabulary
f64 = torch.float64


def _rand(*shape, seed=0):
    return torch.randn(*shape, dtype=f64, generator=torch.Generator().manual_seed(seed))


# -- ops: against a hand-written loop and hand-computed numbers ---------------------------------------


def _loop_attention(score, query, memory, mask):
    """Reference: one score per (b, j) from ``score(s, h_j)``, softmax over real j, weighted sum."""
    B, S, D_h = memory.shape
    context, weights = torch.zeros(B, D_h, dtype=f64), torch.zeros(B, S, dtype=f64)
    for b in range(B):
        real = [j for j in range(S) if mask[b, j]]
        e = [math.exp(float(score(query[b], memory[b, j]))) for j in real]
        for j, e_j in zip(real, e, strict=True):
            weights[b, j] = e_j / sum(e)
            context[b] += weights[b, j] * memory[b, j]
    return context, weights


def _op_cases(D_s=3, D_h=4, A=5):
    w_s, w_h, v = _rand(A, D_s, seed=1), _rand(A, D_h, seed=2), _rand(A, seed=3)
    w_gen, w_cat = _rand(D_s, D_h, seed=4), _rand(A, D_s + D_h, seed=5)
    return {
        "bahdanau": (
            lambda s, h: v @ torch.tanh(w_s @ s + w_h @ h),
            lambda q, m, k: additive.bahdanau_attention(q, additive.bahdanau_keys(m, w_h), m, w_s, v, k),
            D_s,
        ),
        "dot": (lambda s, h: s @ h, lambda q, m, k: additive.dot_attention(q, m, k), D_h),
        "general": (
            lambda s, h: s @ w_gen @ h,
            lambda q, m, k: additive.general_attention(q, m, w_gen, k),
            D_s,
        ),
        "concat": (
            lambda s, h: v @ torch.tanh(w_cat @ torch.cat([s, h])),
            lambda q, m, k: additive.concat_attention(q, m, w_cat, v, k),
            D_s,
        ),
    }


@pytest.mark.parametrize("kind", additive.SCORES)
def test_attention_ops_match_the_loop(kind):
    score, op, D_q = _op_cases()[kind]
    query, memory = _rand(3, D_q, seed=6), _rand(3, 6, 4, seed=7)
    mask = torch.arange(6)[None] < torch.tensor([6, 2, 0])[:, None]  # the last row has no source
    context, weights = op(query, memory, mask)
    ref_context, ref_weights = _loop_attention(score, query, memory, mask)
    torch.testing.assert_close(context, ref_context, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(weights, ref_weights, atol=1e-12, rtol=1e-12)
    assert weights[~mask].eq(0).all() and context[2].eq(0).all()  # pads 0, empty row all zero
    garbage = memory.masked_fill(~mask[..., None], 1e3)  # pad contents never matter
    torch.testing.assert_close(op(query, garbage, mask)[0], context, atol=1e-12, rtol=1e-12)
    # no NaN in the gradients either, even through the empty row
    query.requires_grad_(True)
    op(query, memory, mask)[0].sum().backward()
    assert torch.isfinite(query.grad).all() and query.grad[2].eq(0).all()


def test_attention_ops_hand_computed():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]], dtype=f64)
    mask = torch.tensor([[True, True, False]])
    # dot: s = (1, 0) -> scores (1, 0) over the two real tokens: α = (e, 1) / (e + 1)
    context, weights = additive.dot_attention(torch.tensor([[1.0, 0.0]], dtype=f64), memory, mask)
    a = math.e / (math.e + 1)
    assert weights[0].tolist() == pytest.approx([a, 1 - a, 0.0])
    assert context[0].tolist() == pytest.approx([a, 1 - a])
    # bahdanau, all widths 1: e_j = tanh(0.5 + h_j) for h = (0, 1)
    mem1 = torch.tensor([[[0.0], [1.0]]], dtype=f64)
    one = torch.ones(1, 1, dtype=f64)
    keys = additive.bahdanau_keys(mem1, one)
    _, weights = additive.bahdanau_attention(torch.tensor([[0.5]], dtype=f64), keys, mem1, one, one[0])
    e0, e1 = math.exp(math.tanh(0.5)), math.exp(math.tanh(1.5))
    assert weights[0].tolist() == pytest.approx([e0 / (e0 + e1), e1 / (e0 + e1)])
    # general with W = I is dot; concat with W = [W_s | W_h] is bahdanau; precomputed keys change nothing
    q, m = _rand(2, 4, seed=8), _rand(2, 5, 4, seed=9)
    torch.testing.assert_close(
        additive.general_attention(q, m, torch.eye(4, dtype=f64))[1], additive.dot_attention(q, m)[1]
    )
    w, v = _rand(3, 8, seed=10), _rand(3, seed=11)
    cat = additive.concat_attention(q, m, w, v)
    bah = additive.bahdanau_attention(q, additive.bahdanau_keys(m, w[:, 4:]), m, w[:, :4], v)
    torch.testing.assert_close(cat, bah)
    torch.testing.assert_close(
        additive.concat_attention(q, m, w, v, keys=additive.bahdanau_keys(m, w[:, 4:])), cat
    )


def test_attention_op_shape_errors():
    q, m = _rand(2, 4), _rand(2, 5, 3)
    with pytest.raises(ShapeError, match="query width == memory width, got 4 and 3"):
        additive.dot_attention(q, m)
    with pytest.raises(ShapeError, match=r"\(D_s, D_h\) = \(4, 3\)"):
        additive.general_attention(q, m, _rand(3, 4))
    with pytest.raises(ShapeError, match=r"bool mask of shape \(B, S\) = \(2, 5\)"):
        additive.dot_attention(_rand(2, 3), m, torch.ones(2, 5))
    with pytest.raises(ShapeError, match="one B"):
        additive.dot_attention(_rand(3, 3), m)


# -- the model ----------------------------------------------------------------------------------------

KINDS = [
    ("bahdanau", False),
    ("luong-dot", False),
    ("luong-dot", True),
    ("luong-general", True),
    ("luong-concat", True),
    ("luong-concat", False),
    ("none", False),
]


def _model(**kw) -> RNNSeq2Seq:
    torch.manual_seed(0)
    options = {"embedding_size": 8, "hidden_size": 12, "encoder_hidden_size": 6, "attention_size": 10}
    return RNNSeq2Seq(RNNSeq2SeqConfig(**(options | {"dropout": 0.0} | kw)), IO).double().eval()


def _batch(B=3, S=7, T=6):
    g = torch.Generator().manual_seed(1)
    source = torch.randint(0, V, (B, S), generator=g)
    inputs = torch.randint(0, V, (B, T), generator=g)
    source_mask = torch.arange(S)[None] < torch.tensor([S, S - 3, 2])[:B, None]
    return source, inputs, source_mask


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention,feed", KINDS, ids=[f"{a}{'-feed' if f else ''}" for a, f in KINDS])
def test_step_decoding_equals_teacher_forcing(cell, attention, feed):
    model = _model(cell=cell, attention=attention, input_feed=feed)
    source, inputs, source_mask = _batch()
    tol = {"atol": 1e-12, "rtol": 1e-10}
    state = assert_incremental_decoding_equals_teacher_forcing(model, source, inputs, source_mask, **tol)
    assert state.position.tolist() == [6, 6, 6]


ENCODERS = [
    {},  # bidirectional LSTM, bridge 2·6 -> 12, bahdanau
    {"cell": "gru", "bidirectional": False, "encoder_hidden_size": 12, "encoder_layers": 2},  # no bridge
    {"attention": "luong-general", "input_feed": True, "share_embeddings": False},
]


@pytest.mark.parametrize("kw", ENCODERS, ids=["bilstm-bridge", "gru-2layer", "luong-general-feed"])
def test_source_padding_and_batch_independence(kw):
    model = _model(**kw)
    source, inputs, source_mask = _batch()
    full, _ = model(source, inputs, source_mask=source_mask)
    for b in range(3):
        n = int(source_mask[b].sum())
        alone, _ = model(source[b : b + 1, :n], inputs[b : b + 1])
        torch.testing.assert_close(full[b : b + 1], alone, atol=1e-12, rtol=1e-10)
    garbage = source.masked_fill(~source_mask, 5)  # pad contents never matter
    torch.testing.assert_close(model(garbage, inputs, source_mask=source_mask)[0], full, atol=0, rtol=0)


def test_target_padding_rows_match_alone():
    model = _model(attention="luong-concat", input_feed=True)
    source, inputs, source_mask = _batch()
    mask = torch.arange(6)[None] < torch.tensor([6, 4, 2])[:, None]
    out, state = model(source, inputs, source_mask=source_mask, mask=mask)
    assert state.position.tolist() == [6, 4, 2]
    for b, n in enumerate([6, 4, 2]):
        alone, alone_state = model(source[b : b + 1, : int(source_mask[b].sum())], inputs[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1, :n], alone, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(state.h[b : b + 1], alone_state.h, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(state.feed[b : b + 1], alone_state.feed, atol=1e-12, rtol=1e-10)


def test_decoder_is_causal_and_encoder_sees_everything():
    model = _model()
    source, inputs, _ = _batch()
    base, _ = model(source, inputs)
    changed = inputs.clone()
    changed[:, 3] = (changed[:, 3] + 1) % V
    out, _ = model(source, changed)
    torch.testing.assert_close(out[:, :3], base[:, :3], atol=0, rtol=0)
    assert not torch.allclose(out[:, 3:], base[:, 3:])
    for j in (0, -1):  # the first and the last source token both reach the first target step
        src2 = source.clone()
        src2[:, j] = (src2[:, j] + 1) % V
        assert not torch.allclose(model(src2, inputs)[0][:, 0], base[:, 0])


@pytest.mark.parametrize("attention", ["bahdanau", "luong-general"])
def test_attention_weights_sum_to_one_over_real_tokens(attention):
    model = _model(attention=attention)
    source, inputs, source_mask = _batch()
    weights = model.attention_weights(source, inputs, source_mask)
    assert weights.shape == (3, 6, 7)
    assert weights.masked_select(~source_mask[:, None, :].expand(3, 6, 7)).eq(0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6, dtype=f64))
    with pytest.raises(ConfigError, match="attention 'none'"):
        _model(attention="none").attention_weights(source, inputs)


def test_empty_source_row_is_finite_and_every_parameter_learns():
    model = _model(attention="luong-concat", input_feed=True).train()
    source, inputs, source_mask = _batch()
    source_mask[2] = False  # a row with no real source token
    logits, _ = model(source, inputs, source_mask=source_mask)
    logits.logsumexp(-1).sum().backward()
    assert torch.isfinite(logits).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_beam_one_equals_greedy():
    source, _, source_mask = _batch()
    assert_beam_one_equals_greedy(_model(), source, source_mask, wide_beam=3)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_decoder_cell_is_torchs_cell(cell):
    ours = DecoderCell(cell, 5, 4).double()
    ref = (torch.nn.LSTMCell if cell == "lstm" else torch.nn.GRUCell)(5, 4).double()
    ref.load_state_dict(ours.state_dict())
    x, h, c = _rand(3, 5, seed=1), _rand(3, 4, seed=2), _rand(3, 4, seed=3)
    h_new, c_new = ours(x @ ours.weight_ih.t() + ours.gate_bias(), h, c)
    if cell == "lstm":
        ref_h, ref_c = ref(x, (h, c))
        torch.testing.assert_close(c_new, ref_c)
    else:
        ref_h = ref(x, h)
    torch.testing.assert_close(h_new, ref_h)


def test_bridge_only_when_widths_differ_and_param_count():
    same = _model(bidirectional=False, encoder_hidden_size=12)
    source, _, source_mask = _batch()
    _, (h_n, c_n) = same.encoder(same.src_embed(source), mask=source_mask)
    state = same.start(source, source_mask)
    assert same.bridge_h is None and torch.equal(state.h, h_n[-1]) and torch.equal(state.c, c_n[-1])
    model = _model(encoder_hidden_size=8)  # M = 2·8 = 16 != H = 12: a bridge for h and c
    E, H, He, M, A = 8, 12, 8, 16, 10
    expected = (
        V * E  # shared embeddings
        + 2 * (4 * He * (E + He) + 8 * He)  # bidirectional LSTM encoder
        + 2 * (M * H + H)  # bridge for h and c
        + A * H
        + A * M
        + A  # W_s, W_h, v
        + 4 * H * (E + M)
        + 4 * H * H
        + 8 * H  # decoder cell on [E y; c_t]
        + (H + M) * H  # W_o
        + H * V
        + V  # W_out, b_out
    )
    assert model.num_params() == expected
    assert model.state_size(100) == 2 * H and _model(cell="gru").state_size() == 12
    assert _model(attention="luong-general", input_feed=True).state_size() == 3 * 12


# -- config and errors --------------------------------------------------------------------------------


def test_config_round_trip_and_preset():
    config = RNNSeq2SeqConfig(cell="gru", attention="luong-general", input_feed=True, tie_output=False)
    assert from_dict(RNNSeq2SeqConfig, to_dict(config)) == config
    data = dump_model(config)
    assert data["arch"] == "rnn-seq2seq" and parse_model(data) == config
    preset = parse_model(MODELS.get("rnn-seq2seq")())
    assert isinstance(preset, RNNSeq2SeqConfig) and preset.d_model == preset.hidden_size
    tied = RNNSeq2Seq(RNNSeq2SeqConfig(embedding_size=16, hidden_size=16, tie_output=True), IO)
    assert tied.head.weight is tied.tgt_embed.weight


@pytest.mark.parametrize(
    "options,message",
    [
        ({"attention": "luong-dot"}, "memory width 256 .*hidden_size=128"),
        ({"input_feed": True}, "input_feed: input feeding needs luong"),
        ({"tie_output": True}, "embedding_size == hidden_size, got 64 and 128"),
        ({"cell": "rnn"}, "cell: expected one of 'lstm', 'gru'"),
        ({"attention": "luong"}, "attention: expected one of"),
        ({"hidden_size": 0}, "model.hidden_size: expected a positive number"),
        ({"dropout": 1.5}, "dropout: expected a value in"),
        ({"hiden_size": 3}, "unknown key 'model.hiden_size'; allowed keys: cell,"),
        ({"bidirectional": "yes"}, "model.bidirectional: expected bool"),
    ],
)
def test_bad_configs(options, message):
    with pytest.raises(ConfigError, match=message):
        parse_model({"arch": "rnn-seq2seq", **options})


def test_bad_models_and_inputs():
    with pytest.raises(ConfigError, match="one vocabulary"):
        RNNSeq2Seq(RNNSeq2SeqConfig(share_embeddings=True), IOSpec(5, vocab_size=5, source_vocab_size=7))
    with pytest.raises(ConfigError, match="sequence-to-sequence"):
        RNNSeq2Seq(RNNSeq2SeqConfig(), IOSpec(5, vocab_size=5))
    model = _model()
    source, inputs, source_mask = _batch()
    with pytest.raises(ShapeError, match=r"source: token ids must be in \[0, 11\)"):
        model(source + 20, inputs)
    with pytest.raises(ShapeError, match="inputs: expected token ids of shape"):
        model(source, inputs.double())
    with pytest.raises(ShapeError, match=r"source_mask: expected a bool mask of shape \(3, 7\)"):
        model(source, inputs, source_mask=source_mask.long())
    with pytest.raises(ShapeError, match=r"mask: expected a bool mask of shape \(3, 6\)"):
        model(source, inputs, mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ShapeError, match="inputs have batch 2 but the state was started for 3"):
        model(source, inputs[:2])
    with pytest.raises(ShapeError, match="RNNSeq2SeqState"):
        model.decode(inputs, None)
    with pytest.raises(ShapeError, match="right-padded"):  # the torch-kernel encoder packs
        model(source, inputs, source_mask=source_mask.flip(1))


# -- end to end ---------------------------------------------------------------------------------------


def test_cli_train_reverse(tmp_path):
    run = tmp_path / "run"
    small = {
        "train.steps": 10,
        "train.eval_every": 0,
        "model.hidden_size": 32,
        "model.encoder_hidden_size": 16,
        "model.attention_size": 16,
        "task.max_len": 5,
        "task.val_size": 25,
        "task.test_min_len": 6,
        "task.test_max_len": 7,
        "task.test_per_length": 4,
    }
    sets = [arg for key, value in small.items() for arg in ("--set", f"{key}={value}")]
    cmd = ["-m", "seqlab", "train", "--task", "reverse", "--model", "rnn-seq2seq", "--out", str(run)]
    proc = subprocess.run(
        [sys.executable, *cmd, "--json", "--no-progress", *sets],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"val_seq_acc", "val_acc", "val_loss", "test_seq_acc", "train_time_s", "params"} <= set(metrics)
    assert sorted(map(int, metrics["test_seq_acc_by_length"])) == [6, 7]
    assert 0.0 <= metrics["val_seq_acc"] <= 1.0 and math.isfinite(metrics["val_loss"])
    assert {"config.yaml", "metrics.jsonl", "final_metrics.json"} <= {p.name for p in run.iterdir()}
    assert "arch: rnn-seq2seq" in (run / "config.yaml").read_text()
    assert json.loads((run / "final_metrics.json").read_text())["params"] == metrics["params"]
