"""SequenceModel: shapes, prefill + step == forward, generation, weight tying, accounting."""

from __future__ import annotations

import pytest
import torch

from seqlab.errors import ConfigError, ShapeError
from seqlab.models import ModelConfig, SequenceModel, filter_logits
from seqlab.spec import IOSpec

V = 11
LM = IOSpec(output_dim=V, vocab_size=V)


def _lm(layer_types=("lstm", "gru", "rnn"), **kw):
    torch.manual_seed(0)
    return SequenceModel(ModelConfig(d_model=16, layer_types=list(layer_types), **kw), LM).eval()


@pytest.mark.parametrize("layers", [("lstm", "gru", "rnn"), ("attention", "lstm", "attention")])
@pytest.mark.parametrize("d_ff", [0, 32])
def test_prefill_then_steps_equals_forward(d_ff, layers):
    model = _lm(layers, d_ff=d_ff)
    x = torch.randint(0, V, (2, 10))
    full, final = model(x)
    logits, state = model(x[:, :4])
    outs = [logits]
    for t in range(4, 10):
        step_logits, state = model.step(x[:, t], state)
        outs.append(step_logits[:, None])
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)
    for a, b in zip(state, final, strict=True):
        for ta, tb in zip(a, b, strict=True):
            torch.testing.assert_close(ta, tb, atol=1e-5, rtol=1e-5)


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
    assert y.shape == (4, 5, 1) and len(state) == 2
    assert model.state_size() == 2 * 8 + 8  # LSTM (h, c) + GRU h
    assert model.num_params() == sum(p.numel() for p in model.parameters())


def test_bad_model_inputs():
    model = _lm()
    with pytest.raises(ShapeError, match=r"expected token ids of shape \(B, T\)"):
        model(torch.randn(2, 3))
    with pytest.raises(ShapeError, match="one state per block"):
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
