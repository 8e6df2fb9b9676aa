"""SequenceModel: shapes, prefill + step == forward, generation, weight tying, accounting."""

from __future__ import annotations

import pytest
import torch

from checks import assert_prefill_then_steps_equals_forward
from seqlab.errors import ConfigError, ShapeError
from seqlab.models import ModelConfig, SequenceModel, filter_logits
from seqlab.spec import IOSpec

V = 11
LM = IOSpec(output_dim=V, vocab_size=V)


def _lm(layer_types=("lstm", "gru", "rnn"), **kw):
    torch.manual_seed(0)
    return SequenceModel(ModelConfig(d_model=16, layer_types=list(layer_types), **kw), LM).eval()


@pytest.mark.parametrize("positional", ["none", "sinusoidal", "learned"])
@pytest.mark.parametrize("layers", [("lstm", "gru", "rnn"), ("attention", "lstm", "attention")])
@pytest.mark.parametrize("d_ff", [0, 32])
def test_prefill_then_steps_equals_forward(d_ff, layers, positional):
    model = _lm(layers, d_ff=d_ff, positional=positional)
    x = torch.randint(0, V, (2, 10))
    assert_prefill_then_steps_equals_forward(model, x, 4, atol=1e-5, rtol=1e-5)


def test_greedy_generation_is_deterministic_and_matches_argmax_chain():
    model = _lm()
    prompt = torch.randint(0, V, (2, 3))
    a = model.generate(prompt, 8, temperature=0)
    b = model.generate(prompt, 8, temperature=0)
    assert torch.equal(a, b) and a.shape == (2, 11) and torch.equal(a[:, :3], prompt)
    # each generated token is the argmax of a full forward over everything before it
    logits, _ = model(a[:, :-1])
    assert torch.equal(logits[:, 2:].argmax(-1), a[:, 3:])


def test_sampling_uses_the_generator():
    model = _lm()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    runs = [model.generate(prompt, 20, 1.0, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda out: torch.isfinite(out[0]).tolist()  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.5)) == [True, False, False, False]
    assert kept(filter_logits(logits, top_p=0.8)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.81)) == [True, True, True, False]
    assert kept(filter_logits(logits[:, [2, 0, 3, 1]], top_p=0.8)) == [False, True, False, True]


def test_weight_tying_shares_the_embedding():
    model = _lm(tie_weights=True)
    assert model.head.weight is model.embed.weight
    untied = _lm()
    assert untied.num_params() - model.num_params() == V * 16
    with pytest.raises(ConfigError, match="tie_weights"):
        SequenceModel(ModelConfig(d_model=8, tie_weights=True), IOSpec(output_dim=2, input_dim=3))


def test_feature_inputs_and_accounting():
    model = SequenceModel(
        ModelConfig(d_model=8, layer_types=["lstm", "gru"]), IOSpec(output_dim=1, input_dim=2)
    )
    y, state = model(torch.randn(4, 5, 2))
    assert y.shape == (4, 5, 1) and len(state.blocks) == 2 and state.position.tolist() == [5] * 4
    assert model.state_size() == 2 * 8 + 8  # LSTM (h, c) + GRU h
    assert model.num_params() == sum(p.numel() for p in model.parameters())


def test_bad_model_inputs():
    model = _lm()
    with pytest.raises(ShapeError, match=r"expected token ids of shape \(B, T\)"):
        model(torch.randn(2, 3))
    with pytest.raises(ShapeError, match="expected a ModelState"):
        model(torch.zeros(2, 3, dtype=torch.long), [None])
    with pytest.raises(ShapeError, match="non-empty prompt"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)


def test_generation_argument_checks():
    model = _lm()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    with pytest.raises(ConfigError, match="top_k"):
        model.generate(prompt, 3, top_k=-1)
    with pytest.raises(ConfigError, match="top_p"):
        model.generate(prompt, 3, top_p=0.0)
    classifier = SequenceModel(ModelConfig(d_model=8), IOSpec(output_dim=2, vocab_size=5))
    with pytest.raises(ConfigError, match="needs a language model"):
        classifier.generate(prompt, 3)
    assert classifier.training  # training mode restored even after an error


def test_state_size_grows_with_context_only_for_attention():
    recurrent, hybrid = _lm(("lstm", "gru")), _lm(("lstm", "attention"))
    assert recurrent.state_size(1) == recurrent.state_size(1000) == 2 * 16 + 16
    assert hybrid.state_size(1000) - hybrid.state_size(1) == 2 * 16 * 999


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_padding_invariance_with_absolute_positions(positional):
    model = _lm(("attention", "gru"), positional=positional)
    x = torch.randint(0, V, (2, 6))
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    y, state = model(x, mask=mask)
    alone, s_alone = model(x[1:, :3])
    torch.testing.assert_close(y[1, :3], alone[0], atol=1e-5, rtol=1e-5)
    assert state.position.tolist() == [6, 3] and s_alone.position.tolist() == [3]


def test_sinusoidal_values_by_hand():
    from seqlab.layers.positional import sinusoidal

    # d = 4: PE(pos) = [sin(pos), cos(pos), sin(pos/100), cos(pos/100)]  (10000^(2/4) = 100)
    expected = torch.tensor(
        [
            [0.8414709848, 0.5403023059, 0.0099998333, 0.9999500004],
            [0.9092974268, -0.4161468365, 0.0199986667, 0.9998000067],
            [0.1411200081, -0.9899924966, 0.0299955002, 0.9995500337],
        ]
    )
    torch.testing.assert_close(sinusoidal(torch.tensor([1, 2, 3]), 4), expected)
    assert sinusoidal(torch.tensor([0]), 5).tolist() == [[0.0, 1.0, 0.0, 1.0, 0.0]]


def test_learned_positions_beyond_the_table_are_a_clear_error():
    model = _lm(("gru",), positional="learned", max_len=8)
    with pytest.raises(ShapeError, match=r"position 8 is beyond the learned position table \(max_len=8\)"):
        model(torch.zeros(1, 9, dtype=torch.long))
