"""Segment-level recurrence (Transformer-XL): the ``xl-attention`` mixer against plain attention.

Every check compares with :class:`AttentionMixer` on the same weights: the memory must act as
extra past context, position-consistent, bounded, padding-free and gradient-stopped.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from seqlab.errors import ConfigError, ShapeError
from seqlab.mixers.attention import AttentionMixer
from seqlab.mixers.xl_attention import SegmentMemory, XLAttentionMixer, keep_last

D = 8
CONFIGS = [  # positions, backends, grouped-query heads, windows
    {"backend": "sdpa"},
    {"backend": "naive", "positional": "alibi"},
    {"backend": "sdpa", "positional": "none", "num_kv_heads": 2},
    {"backend": "sdpa", "window": 3, "num_kv_heads": 1},
    {"backend": "naive", "window": 2, "positional": "alibi"},
]
IDS = ["-".join(f"{k}={v}" for k, v in c.items()) for c in CONFIGS]


def _pair(config, mem_len):
    """An xl-attention mixer and a plain attention mixer with the same weights (float64, eval)."""
    torch.manual_seed(0)
    xl = XLAttentionMixer(D, config | {"mem_len": mem_len}).double().eval()
    plain = AttentionMixer(D, config).double().eval()
    plain.load_state_dict(xl.state_dict())
    return xl, plain


def _x(b, t, seed=1):
    return torch.randn(b, t, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def _segments(xl, x, cuts, mask=None):
    """Run xl over x cut at ``cuts``, carrying the memory; return the joined outputs and states."""
    ys, states, state = [], [], None
    bounds = [0, *cuts, x.shape[1]]
    for a, b in itertools.pairwise(bounds):
        y, state = xl(x[:, a:b], state, mask=None if mask is None else mask[:, a:b])
        ys.append(y)
        states.append(state)
    return torch.cat(ys, 1), states


def test_keep_last_by_hand():
    h = torch.arange(1.0, 11.0).view(2, 5, 1)  # rows 1..5 and 6..10
    valid = torch.tensor([[True, False, True, True, False], [False, False, False, False, True]])
    m = keep_last(h, valid, 2)
    assert m.h[..., 0].tolist() == [[3.0, 4.0], [0.0, 10.0]]  # last two real rows, right-aligned
    assert m.valid.tolist() == [[True, True], [False, True]]
    m = keep_last(h, valid, 9)  # more room than rows: width S, empty slots first
    assert m.h[..., 0].tolist() == [[0.0, 0.0, 1.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0, 10.0]]
    assert m.valid.sum(1).tolist() == [3, 1]
    assert keep_last(h, valid, 0).h.shape == (2, 0, 1)


def test_keep_last_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(4, 11, 3, generator=g)
    valid = torch.rand(4, 11, generator=g) < 0.6
    for n in (0, 1, 4, 11, 20):
        m = keep_last(h, valid, n)
        assert m.h.shape == (4, min(n, 11), 3)
        for b in range(4):
            want = h[b][valid[b]][max(0, int(valid[b].sum()) - n) :] if n else h[b, :0]
            assert int(m.valid[b].sum()) == len(want)
            _close(m.h[b][m.valid[b]], want)
            assert m.valid[b].tolist() == sorted(m.valid[b].tolist())  # filled slots at the end
            assert (m.h[b][~m.valid[b]] == 0).all()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_mem_len_zero_is_the_plain_transformer_per_segment(config):
    xl, plain = _pair(config, mem_len=0)
    x = _x(2, 12)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 2:6] = False  # a gap in row 1
    y, states = _segments(xl, x, [4, 7], mask)
    for a, b in [(0, 4), (4, 7), (7, 12)]:
        _close(y[:, a:b], plain(x[:, a:b], mask=mask[:, a:b])[0])
    assert all(s.h.shape == (2, 0, D) for s in states)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_full_memory_equals_full_attention_across_segments(config):
    xl, plain = _pair(config, mem_len=16)  # ≥ the 11 tokens: nothing is ever dropped
    x = _x(3, 11)
    mask = torch.arange(11)[None] < torch.tensor([11, 7, 3])[:, None]
    mask[0, 4:6] = False  # padding that straddles a cut
    full, _ = plain(x, mask=mask)
    for cuts in ([5], [1, 2, 8]):
        y, states = _segments(xl, x, cuts, mask)
        _close(y, full)
        _close(xl(x, mask=mask)[0], full)
        assert states[-1].valid.sum(1).tolist() == mask.sum(1).tolist()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_sliding_memory_is_attention_over_memory_then_segment(config):
    M = 3
    xl, plain = _pair(config, mem_len=M)
    x1, x2 = _x(2, 6, seed=1), _x(2, 4, seed=2)
    _, memory = xl(x1)
    y2, _ = xl(x2, memory)
    # the same as attending over the last M tokens of segment 1 followed by segment 2
    reference, _ = plain(torch.cat([x1[:, -M:], x2], 1))
    _close(y2, reference[:, -4:])
    assert not torch.allclose(y2, plain(x2)[0])  # the memory is read


def test_step_slides_the_memory_one_token_at_a_time():
    M = 3
    xl, plain = _pair({"backend": "sdpa"}, mem_len=M)
    x = _x(2, 7)
    state = xl.init_state(2)
    for t in range(7):
        y_t, state = xl.step(x[:, t], state)
        context = x[:, max(0, t - M) : t + 1]  # the token and the M before it
        _close(y_t, plain(context)[0][:, -1])
        assert state.h.shape == (2, min(t + 1, M), D)
    _close(state.h, x[:, -M:])


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_window_with_memory_streams_exactly_in_bounded_state(backend):
    W = 4
    xl, plain = _pair({"backend": backend, "window": W}, mem_len=W - 1)  # M = W − 1 suffices
    x = _x(2, 16)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 3:9] = False
    y, states = _segments(xl, x, [3, 8, 10], mask)
    _close(y, plain(x, mask=mask)[0])
    assert max(s.h.shape[1] for s in states) == W - 1 and xl.state_size(16) == (W - 1) * D


def test_gradient_stops_at_the_segment_boundary():
    xl, plain = _pair({"backend": "sdpa"}, mem_len=8)
    xl.train()
    x1, x2 = _x(2, 5, seed=1).requires_grad_(), _x(2, 4, seed=2).requires_grad_()
    _, memory = xl(x1)
    assert not memory.h.requires_grad
    y2, _ = xl(x2, memory)
    params = list(xl.parameters())
    grads = torch.autograd.grad(y2.pow(2).sum(), [x1, x2, *params], allow_unused=True)
    assert grads[0] is None  # nothing flows back into segment 1
    assert all(g is not None and g.abs().sum() > 0 for g in grads[1:])  # segment 2 and weights
    # segment 1 does reach segment 2's output: the stop, not a missing dependency, is why
    y2_other, _ = xl(x2, xl(x1 + 1.0)[1])
    assert not torch.allclose(y2_other, y2)
    _, cache = plain(x1)  # plain attention's KV cache keeps the graph: a nonzero gradient
    (g1,) = torch.autograd.grad(plain(x2, cache)[0].pow(2).sum(), [x1])
    assert g1.abs().sum() > 0


def test_padding_never_enters_the_memory():
    xl, _ = _pair({"backend": "sdpa"}, mem_len=3)
    x = _x(3, 6)
    mask = torch.arange(6)[None] < torch.tensor([6, 2, 0])[:, None]
    _, memory = xl(x.masked_fill(~mask[..., None], 1e6), mask=mask)
    assert memory.valid.tolist() == [[True] * 3, [False, True, True], [False] * 3]
    _close(memory.h[0], x[0, 3:])
    _close(memory.h[1, 1:], x[1, :2])
    assert (memory.h[1, 0] == 0).all() and (memory.h[2] == 0).all()
    # an all-padded segment leaves the memory as it was
    _, after = xl(_x(3, 2, seed=5), memory, mask=torch.zeros(3, 2, dtype=torch.bool))
    _close(after.h[:, -3:], memory.h)
    assert after.valid[:, -3:].tolist() == memory.valid.tolist()


def test_config_state_and_errors():
    xl, plain = _pair({"backend": "sdpa"}, mem_len=5)
    assert list(xl.state_dict()) == list(plain.state_dict())  # weights move between the two
    assert [xl.state_size(T) for T in (1, 5, 100)] == [D, 5 * D, 5 * D]
    with pytest.raises(ConfigError, match="mem_len: expected a non-negative number"):
        XLAttentionMixer(D, {"mem_len": -1})
    _, cache = plain(_x(2, 3))
    with pytest.raises(ShapeError, match="expected a SegmentMemory state, got KVCache"):
        xl(_x(2, 3), cache)
    too_long = SegmentMemory(torch.zeros(2, 6, D, dtype=torch.float64), torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(ShapeError, match=r"S ≤ mem_len=5"):
        xl(_x(2, 3), too_long)


def test_a_model_carries_the_memory_of_every_block():
    from seqlab.models.config import ModelConfig
    from seqlab.models.sequence import SequenceModel
    from seqlab.spec import IOSpec

    torch.manual_seed(0)
    config = ModelConfig(
        d_model=D, layer_types=["xl-attention"] * 2, mixers={"xl-attention": {"mem_len": 32}}, d_ff=16
    )
    model = SequenceModel(config, IOSpec(output_dim=11, vocab_size=11)).double().eval()
    tokens = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(0))
    full, _ = model(tokens)
    y1, state = model(tokens[:, :6])
    y2, state = model(tokens[:, 6:], state)
    _close(torch.cat([y1, y2], 1), full)
    assert [s.h.shape for s in state.blocks] == [(2, 10, D)] * 2
