"""Efficient attention: local/global windows, Performer (FAVOR+), Linformer, grouped-query heads.

Every fast form is compared with a plain reference on outputs and gradients in float64; the
linear-in-T claims are checked by measuring the largest tensor any op allocates (forward and
backward), never by timing.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from seqlab.config import from_dict, to_dict
from seqlab.errors import ConfigError, ShapeError, UnknownNameError
from seqlab.layers.self_attention import SELF_ATTENTION, SelfAttentionConfig, build_self_attention
from seqlab.mixers import build_mixer
from seqlab.ops.attention import attention_naive, attention_sdpa, causal_mask
from seqlab.ops.attention.efficient import linformer_attention, local_attention, local_mask
from seqlab.ops.attention.favor import (
    favor_logits,
    performer_attention,
    performer_attention_causal,
    performer_attention_quadratic,
    performer_attention_recurrent,
    random_features,
)

f64 = torch.float64


def _close(a, b, tol=1e-10):
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def _qkv(B, H, L, S, K=4, V=3, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, H, L, K), (B, H, S, K), (B, H, S, V)]
    return [(torch.randn(*s, generator=g, dtype=f64) * scale).requires_grad_() for s in shapes]


def _grads(out, inputs, seed=1):
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * w).sum(), inputs, retain_graph=True)


def _assert_same(fast, ref, inputs, tol=1e-10):
    """Outputs and gradients (through a random projection) of two forms agree."""
    _close(fast, ref, tol)
    for a, b in zip(_grads(fast, inputs), _grads(ref, inputs), strict=True):
        _close(a, b, tol)


# ---------------------------------------------------------------------------------------------
# local / sliding-window attention


def test_local_mask_by_hand():
    causal = local_mask(5, 5, window=2, global_tokens=1, causal=True).int().tolist()
    assert causal == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 0, 1, 1, 0],
        [1, 0, 0, 1, 1],
    ]
    bidir = local_mask(5, 5, window=2, global_tokens=1, causal=False).int().tolist()
    assert bidir == [
        [1, 1, 1, 1, 1],  # the global token sees everything
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 0, 1, 1, 1],
        [1, 0, 0, 1, 1],
    ]
    # queries are the last L of S positions (a cache before them), like causal_mask
    assert local_mask(2, 5, window=2).int().tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]
    assert torch.equal(local_mask(6, 6, window=6), causal_mask(6, 6))


LOCAL_CASES = [  # (L, S, window, global_tokens, causal, block_size)
    (13, 13, 1, 0, True, None),
    (13, 13, 3, 0, True, None),
    (13, 13, 4, 2, True, 3),
    (13, 13, 20, 0, True, None),  # window wider than the sequence: causal attention
    (5, 13, 3, 1, True, 2),  # 8 cached keys before the 5 queries
    (1, 13, 4, 0, True, None),  # one decoding step
    (13, 13, 1, 0, False, None),
    (13, 13, 3, 0, False, 5),
    (13, 13, 2, 3, False, None),
    (13, 13, 4, 13, False, 4),  # every token global: full attention
]


@pytest.mark.parametrize("backend", ["sdpa", "naive"])
@pytest.mark.parametrize("alibi", [False, True])
@pytest.mark.parametrize("L,S,W,G,causal,C", LOCAL_CASES)
def test_local_attention_equals_full_attention_with_the_band_mask(L, S, W, G, causal, C, alibi, backend):
    B, H = 3, 2
    q, k, v = _qkv(B, H, L, S)
    key_valid = torch.arange(S)[None] < torch.tensor([S, S - 5, 0])[:, None]  # row 2: nothing valid
    slopes = torch.tensor([0.5, 0.125], dtype=f64) if alibi else None
    allowed = local_mask(L, S, W, G, causal=causal)[None, None] & key_valid[:, None, None, :]
    bias = None
    if alibi:
        distance = (torch.arange(S - L, S)[:, None] - torch.arange(S)[None]).abs()  # (L, S)
        bias = -slopes[:, None, None] * distance
    ref, _ = attention_naive(q, k, v, allowed, bias=bias)
    out = local_attention(
        q, k, v, W, G, causal=causal, key_valid=key_valid, slopes=slopes, block_size=C, backend=backend
    )
    _assert_same(out, ref, (q, k, v))
    assert torch.isfinite(out).all() and out[2].abs().max() == 0  # fully masked rows: zeros


def test_local_attention_rejects_bad_shapes():
    q, k, v = _qkv(1, 1, 6, 4)
    with pytest.raises(ShapeError, match="L ≤ S"):
        local_attention(q, k, v, 2)
    q, k, v = _qkv(1, 1, 4, 4)
    with pytest.raises(ShapeError, match="window ≥ 1"):
        local_attention(q, k, v, 0)
    with pytest.raises(ShapeError, match=r"key_valid of shape \(1, 4\)"):
        local_attention(q, k, v, 2, key_valid=torch.ones(1, 5, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# Performer / FAVOR+


def test_random_features_are_orthogonal_blocks_with_gaussian_lengths():
    K = 16
    omega = random_features(4096, K, generator=torch.Generator().manual_seed(0), dtype=f64)
    block = omega[:K] / omega[:K].norm(dim=1, keepdim=True)
    _close(block @ block.T, torch.eye(K, dtype=f64), 1e-12)  # exactly orthogonal within a block
    # lengths of N(0, I_K) vectors: E‖ω‖² = K, Var = 2K -> the mean of 4096 is within 3 %
    assert abs(omega.pow(2).sum(1).mean().item() / K - 1) < 0.03
    iid = random_features(8, K, orthogonal=False, generator=torch.Generator().manual_seed(0))
    assert iid.shape == (8, K) and iid.dtype == torch.float32


def test_features_estimate_the_softmax_kernel_without_bias():
    """E[φ(q)·φ(k)] = exp(q·k/√K): the feature formula itself, before any normalisation."""
    K = 8
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 6, K, generator=g, dtype=f64) * 0.6
    omega = random_features(200_000, K, generator=g, dtype=f64)
    estimate = torch.exp(favor_logits(q, omega)) @ torch.exp(favor_logits(k, omega)).T / omega.shape[0]
    exact = torch.exp(q @ k.T / math.sqrt(K))  # (6, 6)
    assert ((estimate - exact).abs() / exact).max() < 0.02


def _valid(B, T):
    valid = torch.arange(T)[None] < torch.tensor([T, T - 4, 0, T])[:B, None]
    valid[-1, 2] = False  # a hole in the middle
    return valid


def test_noncausal_performer_equals_quadratic_reference():
    B, H, L, S, M = 4, 2, 7, 9, 10
    q, k, v = _qkv(B, H, L, S)
    omega = random_features(M, 4, generator=torch.Generator().manual_seed(1), dtype=f64)
    valid = _valid(B, S)
    ref = performer_attention_quadratic(q, k, v, omega, valid[:, None, None, :])
    out = performer_attention(q, k, v, omega, valid)
    _assert_same(out, ref, (q, k, v))
    assert out[2].abs().max() == 0  # no real key: zeros, not NaN


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 64])
def test_causal_performer_equals_quadratic_reference(chunk_size):
    B, H, T, M = 4, 2, 11, 10
    q, k, v = _qkv(B, H, T, T)
    omega = random_features(M, 4, generator=torch.Generator().manual_seed(1), dtype=f64)
    valid = _valid(B, T)
    ref = performer_attention_quadratic(
        q, k, v, omega, causal_mask(T, T)[None, None] & valid[:, None, None, :]
    )
    out, _ = performer_attention_causal(q, k, v, omega, valid, chunk_size=chunk_size)
    _assert_same(out, ref, (q, k, v))
    naive, _ = performer_attention_recurrent(q, k, v, omega, valid)
    _assert_same(naive, ref, (q, k, v))
    assert torch.isfinite(out).all() and out[2].abs().max() == 0


def test_causal_performer_state_carries_across_calls():
    B, H, T, M = 4, 2, 11, 6
    q, k, v = _qkv(B, H, T, T)
    omega = random_features(M, 4, generator=torch.Generator().manual_seed(2), dtype=f64)
    valid = _valid(B, T)
    full, final = performer_attention_causal(q, k, v, omega, valid, chunk_size=4)
    _, final_naive = performer_attention_recurrent(q, k, v, omega, valid)
    parts, state = [], None
    for a, b in [(0, 3), (3, 4), (4, 11)]:
        y, state = performer_attention_causal(
            q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], omega, valid[:, a:b], state, chunk_size=2
        )
        parts.append(y)
    _close(torch.cat(parts, 2), full)
    for x, y, z in zip(state, final, final_naive, strict=True):
        _close(x, y)
        _close(x, z)


def test_stabilisation_keeps_float32_exact_where_plain_features_underflow():
    """‖x / K^{1/4}‖ ≈ 16: exp(ω x' − ‖x'‖²/2) underflows to 0 in float32 for every feature, so
    the plain formula gives 0/0; the stabilised forms match the float64 reference."""
    B, H, T, K, M = 1, 2, 6, 16, 8
    q, k, v = (t.detach() for t in _qkv(B, H, T, T, K=K, scale=8.0))
    omega = random_features(M, K, generator=torch.Generator().manual_seed(3), dtype=f64)
    causal = causal_mask(T, T)[None, None]
    ref = performer_attention_quadratic(q, k, v, omega, causal)
    q32, k32, v32, om32 = q.float(), k.float(), v.float(), omega.float()
    plain = performer_attention_quadratic(q32, k32, v32, om32, causal)
    assert plain.abs().max() == 0  # every score underflowed
    chunked, _ = performer_attention_causal(q32, k32, v32, om32, chunk_size=4)
    naive, _ = performer_attention_recurrent(q32, k32, v32, om32)
    for out in (chunked, naive):
        torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=1e-4)
    noncausal = performer_attention(q32, k32, v32, om32)
    torch.testing.assert_close(
        noncausal.double(), performer_attention_quadratic(q, k, v, omega), atol=1e-4, rtol=1e-4
    )


def test_performer_error_to_softmax_falls_as_features_grow():
    """Mean |FAVOR+ − exact softmax attention| over 6 draws of ω: falls ≈ 1/√M (theory), checked
    loosely: monotone in M, 256× the features give at least 6× less error, under 10 % of the mean
    |output| at M = 2048; orthogonal features beat i.i.d. ones on average (Choromanski et al.)."""
    B, H, T, K = 2, 2, 32, 16
    q, k, v = (t.detach() for t in _qkv(B, H, T, T, K=K, V=8, scale=0.5))
    exact = {
        "noncausal": attention_naive(q, k, v)[0],
        "causal": attention_naive(q, k, v, causal_mask(T, T))[0],
    }
    forms = {
        "noncausal": lambda om: performer_attention(q, k, v, om),
        "causal": lambda om: performer_attention_causal(q, k, v, om)[0],
    }
    features = (8, 32, 128, 512, 2048)
    for name, form in forms.items():
        errors = {True: [], False: []}  # orthogonal or not -> error per M
        for orthogonal, M in itertools.product((True, False), features):
            error = 0.0
            for seed in range(6):
                g = torch.Generator().manual_seed(seed)
                omega = random_features(M, K, orthogonal=orthogonal, generator=g, dtype=f64)
                error += (form(omega) - exact[name]).abs().mean().item() / 6
            errors[orthogonal].append(error)
        errs = errors[True]
        assert all(b < a for a, b in itertools.pairwise(errs)), errs
        assert errs[-1] < errs[0] / 6, errs
        assert errs[-1] < 0.1 * exact[name].abs().mean().item(), errs
        assert sum(errors[True][1:4]) < sum(errors[False][1:4]), errors


# ---------------------------------------------------------------------------------------------
# Linformer


def test_linformer_with_identity_projections_is_full_attention():
    B, H, T = 2, 2, 7
    q, k, v = _qkv(B, H, T, T)
    eye = torch.eye(T, 10, dtype=f64)  # P = T, max_len 10: E[:, :T] = I
    ref, _ = attention_naive(q, k, v)
    _assert_same(linformer_attention(q, k, v, eye, eye), ref, (q, k, v))
    # with padding, padded keys become zero keys with zero values (no per-key mask after projection)
    valid = torch.arange(T)[None] < torch.tensor([T, 4])[:, None]
    keep = valid[:, None, :, None]
    ref_pad, _ = attention_naive(q, k * keep, v * keep)
    _assert_same(linformer_attention(q, k, v, eye, eye, valid), ref_pad, (q, k, v))


def test_linformer_gradients_match_finite_differences():
    q, k, v = _qkv(1, 2, 5, 5, K=3, V=2)
    g = torch.Generator().manual_seed(4)
    E, F = (torch.randn(3, 6, generator=g, dtype=f64).requires_grad_() for _ in range(2))
    valid = torch.tensor([[True, True, True, False, False]])
    assert torch.autograd.gradcheck(lambda *t: linformer_attention(*t, valid), (q, k, v, E, F))


def test_linformer_too_long_names_both_sizes():
    layer = build_self_attention(8, SelfAttentionConfig(kind="linformer", num_heads=2, proj_len=4, max_len=6))
    layer(torch.randn(1, 6, 8))
    with pytest.raises(ShapeError, match=r"sequence length 7 exceeds max_len=6"):
        layer(torch.randn(1, 7, 8))


# ---------------------------------------------------------------------------------------------
# encoder self-attention kinds

KINDS = [
    {"kind": "full"},
    {"kind": "local", "window": 3, "global_tokens": 1},
    {"kind": "local", "window": 2, "backend": "naive"},
    {"kind": "performer", "num_features": 16},
    {"kind": "linformer", "proj_len": 5, "max_len": 12},
    {"kind": "linformer", "proj_len": 5, "max_len": 12, "backend": "naive"},
]


def _layer(config, d_model=8):
    torch.manual_seed(0)
    return build_self_attention(d_model, from_dict(SelfAttentionConfig, {"num_heads": 2} | config)).double()


@pytest.mark.parametrize("config", KINDS, ids=[str(c) for c in KINDS])
def test_kinds_padding_rows_alone_gradients_round_trip(config):
    layer = _layer(config)
    B, T = 3, 9
    x = torch.randn(B, T, 8, dtype=f64, requires_grad=True)
    lengths = torch.tensor([T, 5, 2])
    mask = torch.arange(T)[None] < lengths[:, None]
    y = layer(torch.where(mask[..., None], x, 1e6), mask)  # padded positions hold garbage
    assert y.shape == (B, T, 8) and torch.isfinite(y).all()
    assert y[~mask].abs().max() == 0
    for b, n in enumerate(lengths.tolist()):  # each row as if alone
        _close(y[b, :n], layer(x[b : b + 1, :n].detach())[0])
    y.pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    c = layer.config
    assert from_dict(SelfAttentionConfig, to_dict(c)) == c


def test_local_kind_blocked_equals_dense_reference_and_full_when_window_covers():
    dense, blocked, full = (
        _layer({"kind": "local", "window": 3, "global_tokens": 2, "backend": "naive"}),
        _layer({"kind": "local", "window": 3, "global_tokens": 2}),
        _layer({"kind": "full"}),
    )
    blocked.load_state_dict(dense.state_dict())
    x = torch.randn(2, 11, 8, dtype=f64, requires_grad=True)
    mask = torch.arange(11)[None] < torch.tensor([11, 7])[:, None]
    y_blocked, y_dense = blocked(x, mask), dense(x, mask)
    _assert_same(y_blocked, y_dense, (x,))
    w = torch.randn_like(y_dense)
    g_blocked = torch.autograd.grad((y_blocked * w).sum(), list(blocked.parameters()))
    g_dense = torch.autograd.grad((y_dense * w).sum(), list(dense.parameters()))
    for a, b in zip(g_blocked, g_dense, strict=True):
        _close(a, b)
    wide = _layer({"kind": "local", "window": 11})
    full.load_state_dict(wide.state_dict())
    _close(wide(x, mask), full(x, mask))


def test_performer_kind_is_deterministic_until_redrawn():
    layer = _layer({"kind": "performer", "num_features": 8}).train()
    x = torch.randn(2, 5, 8, dtype=f64)
    y = layer(x)
    _close(layer(x), y)
    _close(layer.eval()(x), y)  # no redraw in train or eval unless asked
    copy = _layer({"kind": "performer", "num_features": 8})
    copy.redraw_features()
    assert not torch.allclose(copy(x), y)
    copy.load_state_dict(layer.state_dict())  # the features travel with the weights
    _close(copy(x), y)
    layer.redraw_features(torch.Generator().manual_seed(5))
    y5 = layer(x)
    assert not torch.allclose(y5, y)
    layer.redraw_features(torch.Generator().manual_seed(5))
    _close(layer(x), y5)


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"kind": "local", "window": 0}, "window: expected a positive number"),
        ({"kind": "local", "global_tokens": -1}, "global_tokens: expected a non-negative number"),
        ({"kind": "performer", "num_features": 0}, "num_features: expected a positive number"),
        ({"kind": "linformer", "proj_len": 0}, "proj_len: expected a positive number"),
        ({"kind": "linformer", "max_len": 0}, "max_len: expected a positive number"),
    ],
)
def test_self_attention_config_validation(bad, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(SelfAttentionConfig, bad)


def test_self_attention_kinds_registered():
    assert SELF_ATTENTION.names() == ["full", "linformer", "local", "performer"]
    with pytest.raises(UnknownNameError, match="choose from: full, linformer, local, performer"):
        SelfAttentionConfig(kind="longformer")


# ---------------------------------------------------------------------------------------------
# attention mixer: grouped-query heads and the sliding window


def _mixer(name, config, d_model=8):
    torch.manual_seed(0)
    return build_mixer(name, d_model, config).double().eval()


def test_default_mixer_keys_unchanged_and_equal_to_torch_multihead_attention():
    D, H, T = 8, 2, 6
    default = _mixer("attention", {"num_heads": H, "positional": "none", "bias": True})
    explicit = _mixer("attention", {"num_heads": H, "positional": "none", "bias": True, "num_kv_heads": H})
    shapes = {k: tuple(v.shape) for k, v in default.state_dict().items()}
    assert shapes == {"qkv.weight": (3 * D, D), "qkv.bias": (3 * D,), "out.weight": (D, D), "out.bias": (D,)}
    assert {k: tuple(v.shape) for k, v in explicit.state_dict().items()} == shapes
    ref = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=f64).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(default.qkv.weight)
        ref.in_proj_bias.copy_(default.qkv.bias)
        ref.out_proj.weight.copy_(default.out.weight)
        ref.out_proj.bias.copy_(default.out.bias)
    x = torch.randn(2, T, D, dtype=f64)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)  # torch: True = masked
    expected, _ = ref(x, x, x, attn_mask=future, need_weights=False)
    for m in (default, explicit):
        _close(m(x)[0], expected)


def _as_mha(gqa):
    """An H-head mixer whose key/value heads are the GQA heads repeated for their groups."""
    c = gqa.config
    H, G, K, D = c.num_heads, c.kv_heads, gqa.head_dim, gqa.d_model
    mha = _mixer("attention", to_dict(c) | {"num_kv_heads": None}, D)
    wq, wk, wv = gqa.qkv.weight.split([H * K, G * K, G * K])
    repeat = [w.view(G, K, D).repeat_interleave(H // G, 0).reshape(H * K, D) for w in (wk, wv)]
    with torch.no_grad():
        mha.qkv.weight.copy_(torch.cat([wq, *repeat]))
        mha.out.weight.copy_(gqa.out.weight)
    return mha


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
@pytest.mark.parametrize("extra", [{}, {"positional": "alibi"}, {"window": 3}, {"num_kv_heads": 1}])
def test_grouped_query_attention_equals_mha_with_shared_heads(backend, extra):
    D, T = 16, 7
    config = {"num_heads": 4, "num_kv_heads": 2, "backend": backend} | extra
    gqa = _mixer("attention", config, D)
    mha = _as_mha(gqa)
    G = gqa.num_kv_heads
    x = torch.randn(2, T, D, dtype=f64, requires_grad=True)
    mask = torch.arange(T)[None] < torch.tensor([T, 4])[:, None]
    y, cache = gqa(x, mask=mask)
    y_ref, cache_ref = mha(x, mask=mask)
    _close(y, y_ref)
    assert cache.k.shape == (2, G, T, D // 4) and cache_ref.k.shape == (2, 4, T, D // 4)
    _close(cache.k.repeat_interleave(4 // G, 1), cache_ref.k)  # the cache holds G heads only
    assert gqa.state_size(10) == 2 * G * (D // 4) * 10
    # gradients: the shared W_k rows collect the gradients of their repeated copies
    w = torch.randn_like(y)
    (y * w).sum().backward()
    (y_ref * w).sum().backward()
    H, K = 4, D // 4
    g_ref = mha.qkv.weight.grad.split([H * K, H * K, H * K])
    g = gqa.qkv.weight.grad.split([H * K, G * K, G * K])
    _close(g[0], g_ref[0])
    for shared, repeated in zip(g[1:], g_ref[1:], strict=True):
        _close(shared, repeated.view(G, H // G, K, D).sum(1).reshape(G * K, D))


@pytest.mark.parametrize("config", [{}, {"positional": "none", "num_kv_heads": 2}, {"dropout": 0.5}])
def test_sdpa_causal_fast_path_equals_naive(config):
    """No cache and no padding: sdpa runs the kernel's is_causal mode; same outputs and gradients."""
    naive = _mixer("attention", config | {"backend": "naive"})
    fast = _mixer("attention", config | {"backend": "sdpa"})
    x = torch.randn(2, 7, 8, dtype=f64, requires_grad=True)
    y_fast, y_naive = fast(x)[0], naive(x)[0]  # eval mode: no dropout
    _assert_same(y_fast, y_naive, (x,))
    w = torch.randn_like(y_fast)
    for a, b in zip(
        torch.autograd.grad((y_fast * w).sum(), list(fast.parameters())),
        torch.autograd.grad((y_naive * w).sum(), list(naive.parameters())),
        strict=True,
    ):
        _close(a, b)


def test_bad_num_kv_heads_is_a_clear_error():
    with pytest.raises(ConfigError, match="num_kv_heads: 3 must divide num_heads=4"):
        build_mixer("attention", 8, {"num_heads": 4, "num_kv_heads": 3})
    with pytest.raises(ConfigError, match="window: expected a non-negative number"):
        build_mixer("attention", 8, {"window": -1})


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_window_one_attends_to_itself_only(backend):
    m = _mixer("attention", {"window": 1, "positional": "none", "backend": backend})
    x = torch.randn(2, 5, 8, dtype=f64)
    v = x @ m.qkv.weight[16:].T  # the value rows of W_qkv
    _close(m(x)[0], m.out(v))


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_window_covering_the_sequence_is_full_attention(backend):
    full = _mixer("attention", {"backend": backend})
    wide = _mixer("attention", {"backend": backend, "window": 9})
    x = torch.randn(2, 9, 8, dtype=f64)
    _close(wide(x)[0], full(x)[0])
    narrow = _mixer("attention", {"backend": backend, "window": 4})
    assert not torch.allclose(narrow(x)[0], full(x)[0])


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
def test_window_counts_real_tokens_across_holes_and_cache(backend):
    """Padding in the middle and a cache with padded slots: each row equals its real tokens alone."""
    m = _mixer("attention", {"backend": backend, "window": 3, "positional": "alibi"})
    x = torch.randn(2, 10, 8, dtype=f64)
    mask = torch.tensor([[1, 1, 0, 0, 1, 1, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    _, cache = m(x[:, :5], mask=mask[:, :5])
    y, _ = m(x[:, 5:], cache, mask=mask[:, 5:])
    y_all, _ = m(x, mask=mask)
    _close(y, y_all[:, 5:])
    for b in range(2):
        alone, _ = m(x[b : b + 1, mask[b]])
        _close(y_all[b, mask[b]], alone[0])


# ---------------------------------------------------------------------------------------------
# performer mixer


def test_performer_mixer_is_the_quadratic_reference_and_has_a_constant_state():
    m = _mixer("performer", {"num_heads": 2, "num_features": 6})
    B, T, H, K = 2, 7, 2, 4
    x = torch.randn(B, T, 8, dtype=f64)
    mask = torch.arange(T)[None] < torch.tensor([T, 5])[:, None]
    y, state = m(x, mask=mask)
    q, k, v = (m.qkv(x) * mask[..., None]).view(B, T, 3, H, K).permute(2, 0, 3, 1, 4)
    allowed = causal_mask(T, T)[None, None] & mask[:, None, None, :]
    ref = performer_attention_quadratic(q, k, v, m.omega, allowed)  # (B, H, T, K)
    _close(y, m.out(ref.transpose(1, 2).reshape(B, T, 8)) * mask[..., None])
    _, later = m(torch.randn(B, 40, 8, dtype=f64), state)
    assert [t.shape for t in later] == [t.shape for t in state]  # constant size
    assert m.state_size(10) == m.state_size(10_000) == H * (6 * (K + 1) + 1)


def test_performer_mixer_approximates_softmax_attention_with_many_features():
    """Same weights; M = 1024 features: close to exact causal softmax attention (rel. error < 10 %)."""
    exact = _mixer("attention", {"num_heads": 2, "positional": "none"}, 16)
    approx = _mixer("performer", {"num_heads": 2, "num_features": 1024}, 16)
    approx.load_state_dict(exact.state_dict() | {"omega": approx.omega})
    x = torch.randn(2, 12, 16, dtype=f64) * 0.5
    y_exact, y_approx = exact(x)[0], approx(x)[0]
    assert ((y_approx - y_exact).norm() / y_exact.norm()).item() < 0.1
    few = _mixer("performer", {"num_heads": 2, "num_features": 4}, 16)
    few.load_state_dict(exact.state_dict() | {"omega": few.omega})
    assert (few(x)[0] - y_exact).norm() > (y_approx - y_exact).norm()


# ---------------------------------------------------------------------------------------------
# complexity: the largest tensor allocated, forward and backward, grows linearly in T


class LargestAllocation(TorchDispatchMode):
    """Records the largest new storage (in elements) any op outputs; views and inputs excluded."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        seen = {
            t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)
        }
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen:
                self.largest = max(self.largest, t.untyped_storage().nbytes() // t.element_size())
        return out


def _largest(fn, T):
    q, k, v = (t.float() for t in _qkv(1, 2, T, T, K=8, V=8))
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    with LargestAllocation() as meter:
        fn(q, k, v).sum().backward()
    return meter.largest


OMEGA = random_features(16, 8, generator=torch.Generator().manual_seed(0))
PROJ = torch.randn(8, 2048)
FORMS = {
    "local": lambda q, k, v: local_attention(q, k, v, 16, 2, causal=False, backend="naive"),
    "local causal": lambda q, k, v: local_attention(q, k, v, 16, causal=True, backend="naive"),
    "performer": lambda q, k, v: performer_attention(q, k, v, OMEGA),
    "performer causal": lambda q, k, v: performer_attention_causal(q, k, v, OMEGA, chunk_size=16)[0],
    "linformer": lambda q, k, v: linformer_attention(q, k, v, PROJ, PROJ),
    "sdpa, no mask": lambda q, k, v: attention_sdpa(q, k, v),
}


@pytest.mark.parametrize("name", FORMS)
def test_efficient_forms_allocate_linearly_in_T(name):
    small, large = _largest(FORMS[name], 256), _largest(FORMS[name], 1024)
    assert large <= 4.2 * small, (small, large)
    assert large < 1024 * 1024 / 4  # far from one (T, T) score matrix
    naive_small = _largest(lambda q, k, v: attention_naive(q, k, v)[0], 256)
    naive_large = _largest(lambda q, k, v: attention_naive(q, k, v)[0], 1024)
    assert naive_large == 16 * naive_small  # the meter does see quadratic growth
