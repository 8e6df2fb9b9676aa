"""The encoder-decoder Transformer, its layers, decoding, and the seq2seq tasks."""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch

from checks import assert_beam_one_equals_greedy, assert_incremental_decoding_equals_teacher_forcing
from seqlab.errors import ConfigError, ShapeError, UnknownNameError
from seqlab.layers.feedforward import FeedForward
from seqlab.models import MODELS, ModelConfig, Seq2SeqConfig, SequenceModel, TransformerSeq2Seq, parse_model
from seqlab.models.decoding import beam_search, greedy_decode, length_penalty, lm_beam_search, select_rows
from seqlab.models.generation import repetition_penalty
from seqlab.spec import IOSpec
from seqlab.tasks import build_task
from seqlab.training.schedule import noam

V = 11
IO = IOSpec(output_dim=V, vocab_size=V, source_vocab_size=V)


def _model(**kw) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    options = {"d_model": 16, "num_heads": 2, "d_ff": 32, "dropout": 0.0} | kw
    return TransformerSeq2Seq(Seq2SeqConfig(**options), IO).double().eval()


def _batch(B=3, S=7, T=6):
    g = torch.Generator().manual_seed(1)
    source = torch.randint(0, V, (B, S), generator=g)
    inputs = torch.randint(0, V, (B, T), generator=g)
    source_mask = torch.arange(S)[None] < torch.tensor([S, S - 3, 2])[:B, None]
    return source, inputs, source_mask


VARIANTS = [
    {},
    {"norm_position": "post"},
    {"activation": "swiglu", "norm": "rmsnorm"},
    {"positional": "learned", "share_embeddings": False, "tie_output": False},
    {"encoder_attention": {"backend": "naive"}},
]


@pytest.mark.parametrize(
    "kw", VARIANTS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default"
)
def test_incremental_decoding_equals_teacher_forcing(kw):
    model = _model(**kw)
    source, inputs, source_mask = _batch()
    assert_incremental_decoding_equals_teacher_forcing(
        model, source, inputs, source_mask, atol=1e-10, rtol=1e-10
    )


def test_source_padding_and_batch_independence():
    model = _model()
    source, inputs, source_mask = _batch()
    full, _ = model(source, inputs, source_mask=source_mask)
    for b in range(3):
        n = int(source_mask[b].sum())
        alone, _ = model(source[b : b + 1, :n], inputs[b : b + 1])
        torch.testing.assert_close(full[b : b + 1], alone, atol=1e-10, rtol=1e-10)
    garbage = source.masked_fill(~source_mask, 5)  # pad contents never matter
    torch.testing.assert_close(model(garbage, inputs, source_mask=source_mask)[0], full)


def test_target_padding_rows_match_alone():
    model = _model()
    source, inputs, source_mask = _batch()
    mask = torch.arange(6)[None] < torch.tensor([6, 4, 2])[:, None]
    out, state = model(source, inputs, source_mask=source_mask, mask=mask)
    assert state.position.tolist() == [6, 4, 2]
    for b, n in enumerate([6, 4, 2]):
        alone, _ = model(source[b : b + 1, : int(source_mask[b].sum())], inputs[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1, :n], alone, atol=1e-10, rtol=1e-10)


def test_decoder_is_causal_and_encoder_sees_everything():
    model = _model()
    source, inputs, _ = _batch()
    base, _ = model(source, inputs)
    changed = inputs.clone()
    changed[:, 3] = (changed[:, 3] + 1) % V
    out, _ = model(source, changed)
    torch.testing.assert_close(out[:, :3], base[:, :3])
    assert not torch.allclose(out[:, 3:], base[:, 3:])
    src2 = source.clone()
    src2[:, -1] = (src2[:, -1] + 1) % V  # the last source token reaches the first target step
    assert not torch.allclose(model(src2, inputs)[0][:, 0], base[:, 0])


def test_post_norm_layer_is_the_paper_formula():
    """Post-norm sub-layer: LayerNorm(x + FFN(x)), checked by hand on one layer."""
    model = _model(norm_position="post", encoder_layers=1)
    layer = model.encoder.layers[0]
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    h = layer.r1.norm(x + layer.self_attn(x))
    expected = layer.r2.norm(h + layer.ffn(h))
    torch.testing.assert_close(layer(x), expected)


def test_gated_ffn_formula():
    torch.manual_seed(0)
    ffn = FeedForward(4, 3, "swiglu").double()
    x = torch.randn(2, 4, dtype=torch.float64)
    w, c = ffn.up.weight, ffn.up.bias
    a, gate = x @ w[:3].T + c[:3], x @ w[3:].T + c[3:]
    expected = (torch.nn.functional.silu(a) * gate) @ ffn.down.weight.T + ffn.down.bias
    torch.testing.assert_close(ffn(x), expected)
    relu = FeedForward(4, 3, "relu").double()
    expected = torch.relu(x @ relu.up.weight.T + relu.up.bias) @ relu.down.weight.T + relu.down.bias
    torch.testing.assert_close(relu(x), expected)  # max(0, xW1 + b1)W2 + b2
    with pytest.raises(UnknownNameError, match="swiglu"):
        FeedForward(4, 3, "swishy")


def test_base_preset_is_the_papers_size():
    """N=6, d_model=512, h=8, d_ff=2048, shared embeddings: ~63M parameters with a 37k vocabulary
    (the paper reports 65M for base)."""
    config = parse_model(MODELS.get("transformer-base")())
    assert (config.encoder_layers, config.d_model, config.num_heads, config.d_ff) == (6, 512, 8, 2048)
    assert config.norm_position == "post" and config.dropout == 0.1
    assert MODELS.get("transformer-base").train_defaults["label_smoothing"] == 0.1
    vocab = 37000
    io = IOSpec(output_dim=vocab, vocab_size=vocab, source_vocab_size=vocab, shared_vocab=True)  # joint BPE
    model = TransformerSeq2Seq(config, io)
    D, F, N = 512, 2048, 6
    attn, ffn, norm = 4 * D * D + 4 * D, 2 * D * F + F + D, 2 * D
    expected = vocab * D + N * (attn + ffn + 2 * norm) + N * (2 * attn + ffn + 3 * norm)
    assert model.num_params() == expected
    assert 60e6 < expected < 66e6


def test_noam_schedule_hand_values():
    d, w = 512, 4000
    assert noam(0, d, w) == pytest.approx(d**-0.5 * w**-1.5)  # s = 1
    assert noam(w - 1, d, w) == pytest.approx(d**-0.5 * w**-0.5)  # the peak, s = warmup
    assert noam(w - 1, d, w) == pytest.approx(6.98771e-4, rel=1e-5)
    assert noam(4 * w - 1, d, w) == pytest.approx(noam(w - 1, d, w) / 2)  # ∝ 1/√s after the peak
    assert max(noam(s, d, w) for s in range(0, 3 * w, 97)) <= noam(w - 1, d, w) + 1e-15


def test_bad_configs_and_inputs():
    with pytest.raises(ConfigError, match="divide"):
        Seq2SeqConfig(d_model=10, num_heads=4)
    with pytest.raises(ConfigError, match="top level"):
        Seq2SeqConfig(encoder_attention={"num_heads": 2})
    with pytest.raises(UnknownNameError, match="full"):
        Seq2SeqConfig(encoder_attention={"kind": "nope"})
    with pytest.raises(ConfigError, match="one vocabulary"):  # two tokenizers of equal size too
        TransformerSeq2Seq(
            Seq2SeqConfig(d_model=8, num_heads=2, share_embeddings=True),
            IOSpec(5, vocab_size=5, source_vocab_size=5),
        )
    with pytest.raises(ConfigError, match="sequence-to-sequence"):
        TransformerSeq2Seq(Seq2SeqConfig(d_model=8, num_heads=2), IOSpec(5, vocab_size=5))
    with pytest.raises(ConfigError, match="encoder-decoder"):
        SequenceModel(ModelConfig(d_model=8), IO)
    model = _model(positional="learned", max_len=8)
    source, inputs, source_mask = _batch()
    with pytest.raises(ShapeError, match="max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long), inputs[:1])
    with pytest.raises(ShapeError, match=r"\[0, 11\)"):
        model(source + 20, inputs)
    with pytest.raises(ShapeError, match="bool mask of shape"):
        model(source, inputs, source_mask=source_mask.long())
    with pytest.raises(ShapeError, match="Seq2SeqState"):
        model.decode(inputs, None)


# -- decoding ------------------------------------------------------------------------------------


class _Prefix(NamedTuple):
    tokens: torch.Tensor  # (B, t)


class ToyLM:
    """A hand-built model where greedy decoding is suboptimal. Tokens: A=0, B=1, EOS=2.

    P(A)=.6, P(B)=.4 first; after A: A .4, B .3, EOS .3; after B: EOS .9; after AA: EOS 1.
    Greedy takes A, A, EOS (p = .6·.4·1 = .24); the best sequence is B, EOS (p = .36).
    """

    table = {
        (): [0.6, 0.4, 0.0],
        (0,): [0.4, 0.3, 0.3],
        (1,): [0.05, 0.05, 0.9],
    }

    def step(self, tokens, state):
        """The first call consumes the start token; the state is the prefix generated so far."""
        B = tokens.shape[0]
        prefix = tokens.new_zeros(B, 0) if state is None else torch.cat([state.tokens, tokens[:, None]], 1)
        probs = [self.table.get(tuple(row.tolist()), [0.0, 0.0, 1.0]) for row in prefix]
        return torch.tensor(probs).clamp(min=1e-12).log(), _Prefix(prefix)


def test_beam_search_beats_greedy_on_the_toy_model():
    model, start = ToyLM(), torch.tensor([9])
    greedy = greedy_decode(model, None, start, 5, eos=2)
    assert greedy.tolist() == [[0, 0, 2]]
    result = beam_search(model, None, start, 5, beam_size=2, eos=2)
    assert result.tokens[0, :2].tolist() == [1, 2]
    assert result.log_probs[0].item() == pytest.approx(math.log(0.36))
    one = beam_search(model, None, start, 5, beam_size=1, eos=2)
    assert one.tokens.tolist() == greedy.tolist()
    assert one.log_probs[0].item() == pytest.approx(math.log(0.24))


def test_beam_one_equals_greedy_and_batching_is_per_source():
    model = _model()
    source, _, source_mask = _batch()
    start = torch.full((3,), 1)
    wide = assert_beam_one_equals_greedy(model, source, source_mask, wide_beam=4)
    for b in range(3):  # each source's beam is independent of the others in the batch
        n = int(source_mask[b].sum())
        alone = beam_search(
            model, model.start(source[b : b + 1, :n]), start[:1], 8, beam_size=4, eos=2, pad=0
        )
        assert wide.tokens[b, : alone.tokens.shape[1]].tolist() == alone.tokens[0].tolist()
        assert wide.scores[b].item() == pytest.approx(alone.scores[0].item())


def test_language_model_beam_one_equals_greedy_generation():
    torch.manual_seed(0)
    lm = SequenceModel(ModelConfig(d_model=16, layer_types=["lstm", "attention"]), IOSpec(7, vocab_size=7))
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    greedy = lm.generate(prompt, 6, temperature=0)
    assert lm_beam_search(lm, prompt, 6, beam_size=1).tolist() == greedy.tolist()
    assert (
        lm_beam_search(lm, prompt[:, :1], 6, beam_size=1).tolist()
        == lm.generate(prompt[:, :1], 6, 0).tolist()
    )
    assert lm_beam_search(lm, prompt, 6, beam_size=3).shape == (2, 9)


def test_length_penalty_and_select_rows():
    assert length_penalty(torch.tensor([1]), 0.0).item() == 1.0
    assert length_penalty(torch.tensor([7]), 1.0).item() == pytest.approx(2.0)
    state = [_Prefix(torch.arange(6).view(3, 2)), None]
    picked = select_rows(state, torch.tensor([2, 0]))
    assert picked[0].tokens.tolist() == [[4, 5], [0, 1]] and picked[1] is None


def test_repetition_penalty_hand_example():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # seen: positive halved, negative doubled
    assert repetition_penalty(logits, torch.tensor([[0]]), 1.0) is logits


# -- tasks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_transduction_batches(name):
    task = build_task(name, {"num_symbols": 5})
    batch = task.make_batch(torch.tensor([3, 1]), torch.Generator().manual_seed(0))
    pad, bos, eos = task.pad, task.bos, task.eos
    for b, n in enumerate([3, 1]):
        src = batch.source[b, :n].tolist()
        want = src[::-1] if name == "reverse" else sorted(src)
        assert batch.inputs[b, : n + 1].tolist() == [bos, *want]
        assert batch.targets[b, : n + 1].tolist() == [*want, eos]
        assert batch.source[b, n:].eq(pad).all() and not batch.source_mask[b, n:].any()
        assert batch.mask[b].sum() == n + 1 and batch.target_mask[b].sum() == n + 1


def test_label_smoothing_loss_formula():
    task = build_task("reverse")
    batch = task.make_batch(torch.tensor([4, 2]), torch.Generator().manual_seed(0))
    logits = torch.randn(*batch.targets.shape, task.io.output_dim)
    eps = 0.1
    logp = logits[batch.target_mask].log_softmax(-1)
    targets = batch.targets[batch.target_mask]
    smoothed = (1 - eps) * -logp.gather(1, targets[:, None])[:, 0] + eps * -logp.mean(-1)
    assert task.loss(logits, batch, label_smoothing=eps).item() == pytest.approx(smoothed.mean().item())


def test_embeddings_are_shared_exactly_when_the_task_has_one_vocabulary():
    config = Seq2SeqConfig(d_model=8, num_heads=2)  # share_embeddings unset: auto
    one = TransformerSeq2Seq(config, IOSpec(5, vocab_size=5, source_vocab_size=5, shared_vocab=True))
    two = TransformerSeq2Seq(config, IOSpec(5, vocab_size=5, source_vocab_size=7))  # G2P-like
    assert one.src_embed.tokens is one.tgt_embed.tokens
    assert two.src_embed.tokens is not two.tgt_embed.tokens and two.src_embed.tokens.num_embeddings == 7
    off = TransformerSeq2Seq(
        Seq2SeqConfig(d_model=8, num_heads=2, share_embeddings=False),
        IOSpec(5, vocab_size=5, source_vocab_size=5, shared_vocab=True),
    )
    assert off.src_embed.tokens is not off.tgt_embed.tokens
