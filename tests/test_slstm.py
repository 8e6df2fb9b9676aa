"""sLSTM: a hand-worked example, fused == naive, gradcheck, stability, the official layer, bad input.

(The mixer contract — causality, state carry, padding, step == forward — is in
test_mixer_contract.py, which covers every registered mixer; importing the module registers it.)
"""

from __future__ import annotations

import math

import pytest
import torch

import seqlab.mixers.slstm  # noqa: F401  (registers "slstm")
from seqlab.errors import ConfigError, InvalidInputError
from seqlab.mixers import build_mixer
from seqlab.ops.slstm import SLSTMCellState, slstm_fused, slstm_naive, zero_state

F64 = torch.float64


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("exp_forget", [False, True])
@pytest.mark.parametrize("op", [slstm_naive, slstm_fused])
def test_hand_worked_three_steps(op, exp_forget):
    """One head, one unit, recurrent weights r = (r_i, r_f, r_z, r_o), from a fresh state.

    Step 1 (h_0 = 0, so the recurrence adds nothing): ĩ = 0, f̃ = 0, z̃ = 0.5, õ = 0 gives
    i = 1, f = σ(0) = 1/2 (or e^0 = 1), z = tanh 0.5 = 0.4621, o = 1/2; c = 0.4621, n = 1,
    h = o c / n = 0.2311; the stabiliser starts at m_1 = ĩ_1 = 0, so the stored c and n are the
    plain ones. Steps 2 and 3 add r·h_{t−1} to the pre-activations; the expected values below are
    the unstabilised recurrence c̄ = f c̄ + i z, n̄ = f n̄ + i, h = o c̄ / n̄ in plain floats, and the
    state is checked as c = c̄ e^{−m}, n = n̄ e^{−m} with m_t = max(log f_t + m_{t−1}, ĩ_t).
    """
    gx = [(0.0, 0.0, 0.5, 0.0), (math.log(2), 1.0, -1.0, 1.0), (-1.0, 2.0, 2.0, -0.5)]
    r = (0.5, -0.5, 1.0, 0.25)
    h = c_bar = n_bar = 0.0
    m = -math.inf
    hs = []
    for step in gx:
        i_pre, f_pre, z_pre, o_pre = (g + rg * h for g, rg in zip(step, r))
        log_f = f_pre if exp_forget else math.log(_sigmoid(f_pre))
        m = max(log_f + m, i_pre)
        c_bar = math.exp(log_f) * c_bar + math.exp(i_pre) * math.tanh(z_pre)
        n_bar = math.exp(log_f) * n_bar + math.exp(i_pre)
        h = _sigmoid(o_pre) * c_bar / n_bar
        hs.append(h)
    assert hs[0] == pytest.approx(0.5 * math.tanh(0.5))  # the step-1 numbers of the docstring

    x = torch.tensor(gx, dtype=F64).view(1, 3, 1, 4, 1)
    R = torch.tensor(r, dtype=F64).view(1, 1, 4, 1)
    out, state = op(x, R, zero_state(1, 1, 1, x), exp_forget=exp_forget)
    torch.testing.assert_close(out.flatten(), torch.tensor(hs, dtype=F64))
    got = [t.item() for t in state]
    assert got == pytest.approx([h, c_bar * math.exp(-m), n_bar * math.exp(-m), m])


def _random_case(B=3, T=7, NH=2, DH=3, seed=0, fresh_row=True):
    """Inputs, R and a state whose row 1 is fresh (n = 0) and rows 0, 2 carry memory."""
    g = torch.Generator().manual_seed(seed)
    gx = 2 * torch.randn(B, T, NH, 4, DH, dtype=F64, generator=g)
    R = 0.5 * torch.randn(NH, DH, 4, DH, dtype=F64, generator=g)
    h, c, m = (torch.randn(B, NH, DH, dtype=F64, generator=g) for _ in range(3))
    n = torch.rand(B, NH, DH, dtype=F64, generator=g) + 1
    fresh = torch.tensor([False, fresh_row, False])[:B, None, None]
    state = SLSTMCellState(*(torch.where(fresh, 0.0, t) for t in (h, c, n, m)))
    return gx, R, state


def _run(op, gx, R, state, mask, exp_forget, w):
    gx, R = gx.clone().requires_grad_(), R.clone().requires_grad_()
    state = SLSTMCellState(*(s.clone().requires_grad_() for s in state))
    out, final = op(gx, R, state, mask, exp_forget)
    loss = (out * w).sum() + final.h.sum() + 0.7 * final.c.sum() + 0.1 * final.n.pow(2).sum()
    loss.backward()
    grads = [gx.grad, R.grad, state.h.grad, state.c.grad, state.n.grad]
    return out.detach(), [s.detach() for s in final], grads


@pytest.mark.parametrize("exp_forget", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_fused_matches_naive(exp_forget, padded):
    """Outputs, final states (m included) and gradients of inputs, R and the initial state."""
    gx, R, state = _random_case()
    T = gx.shape[1]
    mask = None
    if padded:  # padding at the end, in the middle, and a row that never starts
        mask = torch.arange(T)[None] < torch.tensor([T, 4, 0])[:, None]
        mask[0, 2] = False
    w = torch.randn(3, T, 2, 3, dtype=F64)
    ref = _run(slstm_naive, gx, R, state, mask, exp_forget, w)
    fast = _run(slstm_fused, gx, R, state, mask, exp_forget, w)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-12, rtol=1e-10)
    for a, b in zip(fast[1] + fast[2], ref[1] + ref[2], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    if padded:  # the row that never started keeps its initial state, m included
        for s_final, s0 in zip(fast[1], state, strict=True):
            torch.testing.assert_close(s_final[2], s0[2])


def test_fused_long_sequence_matches_naive():
    """Several backward chunks (T > the chunk of 32 steps) with padding across chunk borders."""
    gx, R, state = _random_case(B=2, T=75, NH=1, DH=2, seed=3)
    mask = torch.arange(75)[None] < torch.tensor([75, 40])[:, None]
    mask[0, 30:35] = False
    w = torch.randn(2, 75, 1, 2, dtype=F64)
    state = SLSTMCellState(*(s[:2] for s in state))
    ref = _run(slstm_naive, gx, R, state, mask, False, w)
    fast = _run(slstm_fused, gx, R, state, mask, False, w)
    for a, b in zip([fast[0], *fast[1], *fast[2]], [ref[0], *ref[1], *ref[2]], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("exp_forget", [False, True])
def test_fused_gradcheck(exp_forget):
    """Against finite differences, for what does not depend on the stabiliser m: the outputs,
    the final h and c/n. (c and n alone are stored scaled by e^{−m}, and m gets no gradient by
    design — the outputs are m-invariant, so their gradients are exact.) No fresh row here:
    n = 0 marks a fresh state, so n is not differentiable there."""
    gx, R, state = _random_case(B=3, T=3, NH=2, DH=2, seed=1, fresh_row=False)
    mask = torch.tensor([[True, True, True], [True, False, True], [False, True, True]])

    def f(gx, R, h, c, n):
        out, final = slstm_fused(gx, R, SLSTMCellState(h, c, n, state.m), mask, exp_forget)
        return out, final.h, final.c / final.n

    inputs = [t.clone().requires_grad_() for t in (gx, R, state.h, state.c, state.n)]
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
def test_ten_thousand_steps_with_extreme_gates_stay_finite(forget_gate):
    """Inputs ×1000 and gate biases ±50: the stabilised state never overflows, |h| ≤ 1, n ≥ 1."""
    torch.manual_seed(0)
    m = build_mixer("slstm", 4, {"num_heads": 2, "forget_gate": forget_gate, "recurrent_init": "standard"})
    with torch.no_grad():
        m.bias.copy_(50 * torch.sign(torch.randn_like(m.bias)))
        m.recurrent.mul_(100)
    x = 1e3 * torch.randn(2, 10_000, 4)
    x.requires_grad_()
    y, state = m(x)
    assert torch.isfinite(y).all() and all(torch.isfinite(s).all() for s in state)
    assert (state.n >= 1 - 1e-6).all() and (state.h.abs() <= 1).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


CONFIGS = [
    {},
    {"forget_gate": "exp"},
    {"conv_kernel_size": 0, "num_heads": 2},
    {"num_heads": 1, "recurrent_init": "standard", "bias_init": "small_init", "dropout": 0.3},
    {"forget_gate": "exp", "recurrent_init": "standard", "bias_init": "standard", "conv_kernel_size": 2},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_mixer_backends_agree(config):
    """The whole layer, fused vs naive: outputs, states and the gradient of every parameter."""
    torch.manual_seed(0)
    ref = build_mixer("slstm", 8, config | {"backend": "naive"}).double()
    fast = build_mixer("slstm", 8, config | {"backend": "fused"}).double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(3, 9, 8, dtype=F64)
    mask = torch.arange(9)[None] < torch.tensor([9, 5, 2])[:, None]
    results = []
    for m in (ref, fast):
        torch.manual_seed(1)  # the same dropout masks
        y, state = m(x, mask=mask)
        (y.pow(2).sum() + state.h.sum() + state.c.sum()).backward()
        results.append((y, state, {n: p.grad for n, p in m.named_parameters()}))
    (y1, s1, g1), (y2, s2, g2) = results
    torch.testing.assert_close(y2, y1)
    for a, b in zip(s2, s1, strict=True):
        torch.testing.assert_close(a, b)
    for name, grad in g1.items():
        torch.testing.assert_close(g2[name], grad, msg=name)


def test_init_and_state_size():
    m = build_mixer("slstm", 8, {"num_heads": 2})  # DH = 4: units at 0, 1/3, 2/3, 1
    pos = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    torch.testing.assert_close(m.bias[:, 1], (5 - 12 * pos**0.3).expand(2, 4))
    assert (m.bias[:, [0, 2, 3]] == 0).all() and (m.recurrent == 0).all()
    e = build_mixer("slstm", 8, {"num_heads": 2, "forget_gate": "exp"})
    torch.testing.assert_close(e.bias[:, 1], torch.nn.functional.logsigmoid(m.bias[:, 1]))
    assert m.state_size() == (4 + 3) * 8
    assert build_mixer("slstm", 8, {"conv_kernel_size": 0}).state_size() == 4 * 8


def test_bad_config_and_input_say_what_was_wrong():
    with pytest.raises(ConfigError, match=r"num_heads=3 must divide d_model=8"):
        build_mixer("slstm", 8, {"num_heads": 3})
    with pytest.raises(ConfigError, match=r"one unit per head"):
        build_mixer("slstm", 4, {"num_heads": 4})
    m = build_mixer("slstm", 8)
    x = torch.randn(2, 5, 8)
    x[1, 3, 2] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        m(x)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False  # the NaN sits at a padded step: fine
    y, _ = m(x, mask=mask)
    assert torch.isfinite(y).all()


# ---------------------------------------------------------------------------------------------
# the official implementation


def _official(D, NH, kernel):
    """The official layer as configured here: ``sLSTMLayerConfig(embedding_dim=D, num_heads=NH,
    conv1d_kernel_size=kernel, backend="vanilla", dtype="float32")`` — the pure-PyTorch CPU
    backend (the default "cuda" needs a GPU), float32 parameters — with recurrent kernel and
    biases drawn at random ("standard" inits, then perturbed) so every path carries signal."""
    xlstm = pytest.importorskip("xlstm")
    cfg = xlstm.sLSTMLayerConfig(
        embedding_dim=D,
        num_heads=NH,
        conv1d_kernel_size=kernel,
        backend="vanilla",
        dtype="float32",
        recurrent_weight_init="standard",
        bias_init="standard",
    )
    layer = xlstm.sLSTMLayer(cfg)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("kernel", [4, 0])
def test_matches_official_layer(kernel):
    from seqlab.interop.xlstm_slstm import load_official_slstm_layer

    torch.manual_seed(0)
    official = _official(16, 4, kernel)
    ours = load_official_slstm_layer(build_mixer("slstm", 16, {"conv_kernel_size": kernel}), official)
    x = 2 * torch.randn(3, 20, 16)
    y_ref, last = official(x, return_last_state=True)
    y, state = ours(x)
    assert (y - y_ref).abs().max() <= 1e-4
    h, c, n, m = last["slstm_state"]  # the official final state: the same stabiliser rule
    for a, b in zip((state.h, state.c, state.n, state.m), (h, c, n, m), strict=True):
        assert (a - b).abs().max() <= 1e-4
    if kernel:
        torch.testing.assert_close(state.conv, last["conv_state"])
    y_naive, _ = load_official_slstm_layer(
        build_mixer("slstm", 16, {"conv_kernel_size": kernel, "backend": "naive"}), official
    )(x)
    assert (y_naive - y_ref).abs().max() <= 1e-4


def test_default_init_matches_official():
    """Default powerlaw forget bias and zero R equal the official cell's (block 0 of 1)."""
    xlstm = pytest.importorskip("xlstm")
    cfg = xlstm.sLSTMLayerConfig(embedding_dim=16, num_heads=2, backend="vanilla", dtype="float32")
    cell = xlstm.sLSTMLayer(cfg).slstm_cell
    ours = build_mixer("slstm", 16, {"num_heads": 2})
    torch.testing.assert_close(ours.bias, cell._bias_int2ext(cell._bias))
    torch.testing.assert_close(ours.recurrent, cell._recurrent_kernel_int2ext(cell._recurrent_kernel))


def test_interop_refuses_a_mismatch():
    from seqlab.interop.xlstm_slstm import load_official_slstm_layer

    official = _official(16, 4, 4)
    with pytest.raises(ConfigError, match="does not fit"):
        load_official_slstm_layer(build_mixer("slstm", 16, {"num_heads": 2}), official)
    with pytest.raises(ConfigError, match="no official value|ours does not"):
        load_official_slstm_layer(build_mixer("slstm", 16, {"conv_kernel_size": 0}), official)


@pytest.mark.parametrize("backend", ["fused", "naive"])
def test_bf16_autocast_keeps_the_recurrence_in_float32(backend):
    # the gate projections run in bf16, the exponential-gated recurrence and its state in float32
    torch.manual_seed(0)
    mixer = build_mixer("slstm", 32, {"backend": backend})
    x = torch.randn(2, 6, 32, requires_grad=True)
    reference, _ = mixer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = mixer(x)
    assert all(s.dtype == torch.float32 for s in state[:4])
    torch.testing.assert_close(y.float(), reference, atol=0.1, rtol=0.1)
    y.float().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(mixer.recurrent.grad).all()
