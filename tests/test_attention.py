"""Attention ops and seqlab.nn.MultiheadAttention against torch.nn.MultiheadAttention."""

from __future__ import annotations

import pytest
import torch

import seqlab.nn as snn
from seqlab.errors import ConfigError, ShapeError
from seqlab.ops.attention import attention_naive, attention_sdpa, causal_mask

B, L, S, E, H = 2, 5, 7, 8, 2


def test_causal_mask_by_hand():
    assert causal_mask(3, 3).int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert causal_mask(1, 4).int().tolist() == [[1, 1, 1, 1]]  # one new token sees the whole cache


def test_attention_by_hand():
    # d = 4, one query, two keys with scores 0 and ln 3 after the 1/√4 scaling: weights 1/4, 3/4
    q = torch.tensor([[[[1.0, 0, 0, 0]]]])
    k = torch.tensor([[[[0.0, 0, 0, 0], [2 * torch.log(torch.tensor(3.0)).item(), 0, 0, 0]]]])
    v = torch.tensor([[[[1.0], [5.0]]]])
    out, w = attention_naive(q, k, v)
    torch.testing.assert_close(w[0, 0, 0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.25 * 1 + 0.75 * 5]))


@pytest.mark.parametrize("with_bias", [False, True])
def test_naive_and_sdpa_agree_on_outputs_and_gradients(with_bias):
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, n, 4, dtype=torch.float64, requires_grad=True) for n in (L, S, S))
    allowed = (
        causal_mask(L, S)[None, None] & torch.tensor([[True] * S, [True] * 3 + [False] * 4])[:, None, None]
    )
    allowed = allowed.clone()
    allowed[1, 0, 0] = False  # a fully masked row
    bias = torch.randn(1, H, L, S, dtype=torch.float64) if with_bias else None
    out1, _ = attention_naive(q, k, v, allowed, bias=bias)
    g1 = torch.autograd.grad(out1.pow(2).sum(), (q, k, v))
    out2 = attention_sdpa(q, k, v, allowed, bias=bias)
    g2 = torch.autograd.grad(out2.pow(2).sum(), (q, k, v))
    torch.testing.assert_close(out1, out2)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.isfinite(out2).all() and out2[1, 0, 0].abs().max() == 0  # no NaN, zeros


def _pair(**kw):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True, **kw)
    ours = snn.MultiheadAttention(E, H, **kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    return ref.eval(), ours.eval()


@pytest.mark.parametrize("backend", ["sdpa", "naive"])
@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"kdim": 6, "vdim": 3}])
def test_multihead_attention_matches_torch(kw, backend):
    ref, ours = _pair(**kw)
    ours.backend = backend
    q = torch.randn(B, L, E)
    k = torch.randn(B, S, kw.get("kdim", E))
    v = torch.randn(B, S, kw.get("vdim", E))
    pad = torch.tensor([[False] * S, [False] * 4 + [True] * 3])  # True = padding (torch convention)
    causal = torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=1 + S - L)
    for masks in [{}, {"key_padding_mask": pad}, {"attn_mask": causal, "key_padding_mask": pad}]:
        for need, avg in [(True, True), (True, False), (False, True)]:
            o_ref, w_ref = ref(q, k, v, need_weights=need, average_attn_weights=avg, **masks)
            o, w = ours(q, k, v, need_weights=need, average_attn_weights=avg, **masks)
            torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
            if need:
                torch.testing.assert_close(w, w_ref, atol=1e-5, rtol=1e-5)
            else:
                assert w is None and w_ref is None


def test_multihead_attention_float_masks_and_gradients():
    ref, ours = _pair()
    x = torch.randn(B, L, E, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    float_mask = torch.randn(B * H, L, L)
    o_ref, _ = ref(x, x, x, attn_mask=float_mask)
    o, _ = ours(x2, x2, x2, attn_mask=float_mask)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-5)
    o_ref.sum().backward()
    o.sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, atol=1e-5, rtol=1e-5)
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=1e-5)


def test_multihead_attention_bad_input():
    with pytest.raises(ConfigError, match="num_heads=3 must divide embed_dim=8"):
        snn.MultiheadAttention(8, 3)
    mha = snn.MultiheadAttention(E, H)
    x = torch.randn(B, L, E)
    with pytest.raises(ShapeError, match=r"expected key_padding_mask of shape \(2, 5\)"):
        mha(x, x, x, key_padding_mask=torch.zeros(B, L + 1, dtype=torch.bool))
    with pytest.raises(ShapeError, match=r"expected attn_mask of shape \(5, 5\) or \(4, 5, 5\)"):
        mha(x, x, x, attn_mask=torch.zeros(3, L, L, dtype=torch.bool))
    with pytest.raises(ShapeError, match="expected feature sizes"):
        mha(x, x[..., :4], x)
