"""mLSTM: the three forms agree, a hand-worked example, stability, the official layer, bad input.

(The mixer contract — causality, state carry, padding, step == forward — is in
test_mixer_contract.py for every mode.)
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqlab.errors import ConfigError, InvalidInputError
from seqlab.mixers import build_mixer
from seqlab.ops.mlstm import (
    MLSTMCellState,
    mlstm_chunkwise,
    mlstm_parallel,
    mlstm_recurrent,
    mlstm_step,
    zero_state,
)


def _rel_close(a, b, tol):
    scale = b.abs().max().clamp(min=1e-6)
    assert (a - b).abs().max() / scale <= tol, float((a - b).abs().max() / scale)


def test_hand_worked_two_steps():
    """One head, K = V = 1, sigmoid forget gate, zero state; every number from the equations.

    k is scaled by 1/√K = 1. Step 1: ĩ = 0, f̃ = 0 (log f = −ln 2): m_1 = max(−ln 2 + 0, 0) = 0,
    f' = 1/2, i' = 1, C_1 = k v = 2·3 = 6, n_1 = 2, h̃_1 = q C / max(|q n|, e^0) = (1·6)/2 = 3.
    Step 2: ĩ = ln 4, f̃ = +∞ (log f = 0): m_2 = max(0, ln 4) = ln 4, f' = e^{−ln 4} = 1/4, i' = 1,
    C_2 = 6/4 + 1·(1·(−1)) = 0.5, n_2 = 2/4 + 1 = 1.5, q = 2: h̃_2 = 2·0.5 / max(3, 1/4) = 1/3.
    """
    d = torch.float64
    q = torch.tensor([1.0, 2.0], dtype=d).view(1, 1, 2, 1)
    k = torch.tensor([2.0, 1.0], dtype=d).view(1, 1, 2, 1)
    v = torch.tensor([3.0, -1.0], dtype=d).view(1, 1, 2, 1)
    i_pre = torch.tensor([0.0, math.log(4)], dtype=d).view(1, 1, 2)
    log_f = torch.tensor([-math.log(2), 0.0], dtype=d).view(1, 1, 2)
    for fn in (mlstm_recurrent, mlstm_parallel):
        h, (C, n, m) = fn(q, k, v, i_pre, log_f, zero_state(1, 1, 1, 1, q), eps=0.0)
        torch.testing.assert_close(h.flatten(), torch.tensor([3.0, 1 / 3], dtype=d))
        torch.testing.assert_close((C.item(), n.item(), m.item()), (0.5, 1.5, math.log(4)))


def test_stabiliser_cancels():
    """h̃ is the unstabilised C q / max(|n q|, 1) whatever m is: the same step from a state scaled
    by e^{−m} with m = 0 and m = 7 gives the same output."""
    torch.manual_seed(0)
    d = torch.float64
    q, k = torch.randn(2, 3, 4, dtype=d), torch.randn(2, 3, 4, dtype=d)
    v, i, f = torch.randn(2, 3, 5, dtype=d), torch.randn(2, 3, dtype=d), torch.randn(2, 3, dtype=d)
    C, n = torch.randn(2, 3, 4, 5, dtype=d), torch.randn(2, 3, 4, dtype=d)
    m = torch.full((2, 3), 7.0, dtype=d)
    h1, _ = mlstm_step(q, k, v, i, F.logsigmoid(f), MLSTMCellState(C, n, torch.zeros_like(m)), eps=0)
    h2, _ = mlstm_step(
        q, k, v, i, F.logsigmoid(f), MLSTMCellState(C * math.exp(-7), n * math.exp(-7), m), eps=0
    )
    torch.testing.assert_close(h1, h2)


def _layer_inputs(B=3, T=100, D=16, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(B, T, D)
    lengths = torch.tensor([T, T - 37, 5])
    return x, torch.arange(T)[None] < lengths[:, None]


@pytest.mark.parametrize("chunk_size", [16, 64])
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_three_modes_agree_fp32(chunk_size, forget_gate):
    """Outputs, input and parameter gradients, and final states of recurrent, parallel and
    chunkwise agree to 1e-4 (relative, float32), T = 100 (not a multiple of the chunk), padding."""
    x, mask = _layer_inputs()
    mixers = {}
    for mode in ("recurrent", "parallel", "chunkwise"):
        torch.manual_seed(1)
        cfg = {"mode": mode, "chunk_size": chunk_size, "forget_gate": forget_gate, "num_heads": 2}
        mixers[mode] = build_mixer("mlstm", 16, cfg)
    results = {}
    for mode, m in mixers.items():
        xi = x.clone().requires_grad_()
        y, state = m(xi, mask=mask)
        (y.pow(2).sum() + state.C.sum() + state.n.sum()).backward()
        results[mode] = (y, state, xi.grad, {n: p.grad for n, p in m.named_parameters()})
    ref = results["recurrent"]
    for mode in ("parallel", "chunkwise"):
        y, state, gx, grads = results[mode]
        _rel_close(y, ref[0], 1e-4)
        for a, b in zip(state, ref[1], strict=True):
            _rel_close(a, b, 1e-4)
        _rel_close(gx, ref[2], 1e-4)
        for name, g in grads.items():
            _rel_close(g, ref[3][name], 1e-4)


def test_chunkwise_handles_an_all_padding_chunk():
    """A chunk with no real step at all (−∞ input gates throughout) leaves the memory unchanged."""
    torch.manual_seed(0)
    B, H, T, K = 2, 2, 12, 3
    q, k, v = (torch.randn(B, H, T, K, dtype=torch.float64) for _ in range(3))
    i_pre, log_f = torch.randn(B, H, T, dtype=torch.float64), -torch.rand(B, H, T, dtype=torch.float64)
    i_pre[:, :, 4:8], log_f[:, :, 4:8] = -math.inf, 0.0
    state = zero_state(B, H, K, K, q)
    h_ref, s_ref = mlstm_recurrent(q, k, v, i_pre, log_f, state)
    h, s = mlstm_chunkwise(q, k, v, i_pre, log_f, state, chunk_size=4)
    torch.testing.assert_close(h, h_ref)
    for a, b in zip(s, s_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_ten_thousand_steps_with_extreme_gates_stay_finite():
    """Gate pre-activations of ±1000 (exp input gate, exponential forget gate) over 10k steps: the
    stabiliser keeps every exp() in range, in the step loop and in the chunkwise form."""
    torch.manual_seed(0)
    B, H, T, K = 1, 2, 10_000, 2
    q, k, v = (torch.randn(B, H, T, K) for _ in range(3))
    i_pre = torch.randn(B, H, T) * 1000
    log_f = torch.randn(B, H, T) * 1000  # exponential forget gate: log f = f̃
    h, (C, n, _) = mlstm_chunkwise(q, k, v, i_pre, log_f, zero_state(B, H, K, K, q), chunk_size=64)
    assert torch.isfinite(h).all() and torch.isfinite(C).all() and torch.isfinite(n).all()
    state = zero_state(B, H, K, K, q)
    with torch.no_grad():
        for t in range(T):
            h_t, state = mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], i_pre[:, :, t], log_f[:, :, t], state)
            assert torch.isfinite(h_t).all()
    assert all(torch.isfinite(s).all() for s in state)


def test_layer_with_huge_inputs_stays_finite():
    m = build_mixer("mlstm", 8, {"forget_gate": "exp"})
    with torch.no_grad():
        m.igate.weight.normal_(std=10.0)
        m.fgate.weight.normal_(std=10.0)
    y, state = m(torch.randn(2, 300, 8) * 1e3)
    assert torch.isfinite(y).all() and all(torch.isfinite(s).all() for s in state)


def test_initialisation_as_the_paper():
    m = build_mixer("mlstm", 32, {"num_heads": 4})
    torch.testing.assert_close(m.fgate.bias.detach(), torch.tensor([3.0, 4.0, 5.0, 6.0]))
    assert m.fgate.weight.abs().sum() == 0 and m.igate.weight.abs().sum() == 0
    assert m.inner == 64 and m.q_proj.weight.shape == (16, 4, 4)  # blocks of 4 channels
    assert m.state_size() == 4 * (16 * 16 + 16 + 1) + 3 * 64


def test_any_length_works_in_every_mode():
    """No fixed context length (the official parallel form needs one, NX-AI/xlstm #1, #94)."""
    m = build_mixer("mlstm", 8, {"mode": "parallel"})
    for T in (1, 7, 300):
        assert m(torch.randn(2, T, 8))[0].shape == (2, T, 8)


def test_bad_settings_and_inputs_fail_clearly():
    with pytest.raises(ConfigError, match="num_heads=3 must divide the inner width 64"):
        build_mixer("mlstm", 8, {"num_heads": 3})
    with pytest.raises(ConfigError, match="chunk_size"):
        build_mixer("mlstm", 8, {"chunk_size": 0})
    with pytest.raises(ConfigError, match="chunk_size"):
        q = torch.randn(1, 1, 3, 2)
        mlstm_chunkwise(q, q, q, q[..., 0], q[..., 0], zero_state(1, 1, 2, 2, q), chunk_size=0)
    m = build_mixer("mlstm", 8)
    x = torch.randn(2, 5, 8)
    x[1, 2, 3] = math.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        m(x)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 2] = False  # NaN only at a padded step is fine
    assert torch.isfinite(m(x, mask=mask)[0]).all()


def test_matches_the_official_layer():
    """Our mLSTM layer with the weights of the official ``xlstm.mLSTMLayer`` (xlstm 2.0.6,
    ``pip install --no-deps xlstm packaging``; its pure-PyTorch parallel form, which needs the
    context length fixed at construction) gives the same outputs within 1e-4, and our step loop
    matches its ``step``. Official settings: embedding_dim 32, 4 heads, proj_factor 2, qkv blocks
    of 4, conv kernel 4, no biases, context_length 24."""
    xlstm = pytest.importorskip("xlstm")
    from seqlab.interop.xlstm_mlstm import load_official_mlstm_layer

    torch.manual_seed(0)
    cfg = xlstm.mLSTMLayerConfig(embedding_dim=32, num_heads=4, context_length=24)
    official = xlstm.mLSTMLayer(cfg).eval()
    with torch.no_grad():  # move every parameter away from its special init
        for p in official.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ours = load_official_mlstm_layer(build_mixer("mlstm", 32, {"num_heads": 4, "chunk_size": 8}), official)
    x = torch.randn(2, 24, 32)
    with torch.no_grad():
        _rel_close(ours(x)[0], official(x), 1e-4)
        state, official_state = None, {}
        y_ours, y_official = [], []
        for t in range(5):
            y_t, state = ours.step(x[:, t], state)
            y_o, official_state = official.step(x[:, t : t + 1], **official_state)
            y_ours.append(y_t)
            y_official.append(y_o[:, 0])
        _rel_close(torch.stack(y_ours, 1), torch.stack(y_official, 1), 1e-4)


def test_head_norm_is_group_norm_with_one_group_per_head():
    """MultiHeadNorm (layer norm over each head's features, then γ, β) equals ``F.group_norm``
    with NH groups — its definition — in outputs and every gradient (float64)."""
    from seqlab.layers import MultiHeadNorm

    torch.manual_seed(0)
    norm = MultiHeadNorm(4, 12, bias=True).double()
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = (torch.randn(2, 5, 12, dtype=torch.float64) * 3 + 1).requires_grad_()
    ref = F.group_norm(x.reshape(-1, 12), 4, norm.weight, norm.bias, norm.eps).view(2, 5, 12)
    g = torch.randn_like(ref)
    ours_grads = torch.autograd.grad(norm(x), (x, norm.weight, norm.bias), g)
    ref_grads = torch.autograd.grad(ref, (x, norm.weight, norm.bias), g)
    torch.testing.assert_close(norm(x), ref)
    for a, b in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_gates_equal_the_two_linears_on_the_concatenation():
    """The stacked-slice gate products give the igate / fgate linears of cat([q, k, v]) (the
    official layer's form), values and gradients."""
    torch.manual_seed(0)
    m = build_mixer("mlstm", 16, {"num_heads": 2, "bias": True}).double()
    with torch.no_grad():
        for lin in (m.igate, m.fgate):
            lin.weight.normal_(), lin.bias.normal_()
    q, k, v = (torch.randn(2, 3, m.inner, dtype=torch.float64, requires_grad=True) for _ in range(3))
    qkv = torch.cat([q, k, v], -1)
    ref = torch.cat([m.igate(qkv), m.fgate(qkv)], -1)
    ours = m._gates(q, k, v)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    params = (q, k, v, m.igate.weight, m.fgate.weight, m.igate.bias, m.fgate.bias)
    for a, b in zip(torch.autograd.grad(ours, params, g), torch.autograd.grad(ref, params, g), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 7, 11])
def test_chunkwise_op_equals_the_step_loop_from_a_carried_state_float64(chunk_size):
    """The op on its own, float64: from a non-zero carried state (C, n and a stabiliser m ≠ 0),
    with chunk sizes that do and do not divide T, the outputs, the final (C, n, m) and the
    gradients of every input and of the initial C and n equal the step loop's."""
    torch.manual_seed(chunk_size)
    B, H, T, K, V = 2, 3, 11, 4, 5
    d = torch.float64
    q, k = torch.randn(B, H, T, K, dtype=d), torch.randn(B, H, T, K, dtype=d)
    v, i_pre = torch.randn(B, H, T, V, dtype=d), torch.randn(B, H, T, dtype=d) * 3
    log_f = F.logsigmoid(torch.randn(B, H, T, dtype=d) + 2)
    C0, n0 = torch.randn(B, H, K, V, dtype=d), torch.randn(B, H, K, dtype=d)
    m0 = torch.randn(B, H, dtype=d)
    leaves = [t.requires_grad_() for t in (q, k, v, i_pre, log_f, C0, n0)]
    g = torch.randn(B, H, T, V, dtype=d)
    results = []
    for fn in (mlstm_recurrent, lambda *a: mlstm_chunkwise(*a, chunk_size=chunk_size)):
        h, (C, n, m) = fn(q, k, v, i_pre, log_f, MLSTMCellState(C0, n0, m0))
        loss = (h * g).sum() + C.pow(2).sum() + n.sum()
        results.append((h, C, n, m, torch.autograd.grad(loss, leaves)))
    (h1, C1, n1, m1, g1), (h2, C2, n2, m2) = results[0], results[1][:4]
    for a, b in zip((h2, C2, n2, m2), (h1, C1, n1, m1), strict=True):
        torch.testing.assert_close(a, b)
    for a, b in zip(results[1][4], g1, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("backend", ["naive", "compiled"])
def test_bf16_autocast_keeps_the_memory_in_float32(backend):
    """Under bf16 autocast the projections and q·kᵀ run in bf16 but the memory (C, n, m) is carried,
    and its products run, in float32 across 640 steps (10 chunks): the final memory stays within
    2 % of the float32 run's."""
    torch.manual_seed(0)
    mixer = build_mixer("mlstm", 32, {"num_heads": 2, "backend": backend})
    x = torch.randn(2, 640, 32, requires_grad=True)
    reference, ref_state = mixer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = mixer(x)
    assert all(s.dtype == torch.float32 for s in state[:3])
    for a, b in zip(state[:3], ref_state[:3], strict=True):
        assert (a - b).norm() <= 0.02 * b.norm()
    assert (y.float() - reference).norm() <= 0.05 * reference.norm()
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all()
