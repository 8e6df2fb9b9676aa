"""The sequence-mixer contract (DESIGN.md §2), for every registered mixer × backend × variant.

A new mixer gets all of this by registering; extra variant configs can be listed in VARIANTS.
"""

from __future__ import annotations

import pytest
import torch

from seqlab.config import from_dict, to_dict
from seqlab.errors import ShapeError
from seqlab.mixers import MIXERS, build_mixer

B, T, D = 3, 9, 8
VARIANTS = {  # extra configurations beyond one per backend
    "lstm": [
        {"backend": "naive", "layer_norm": True},
        {"backend": "naive", "recurrent_dropout": 0.3},
        {"backend": "fused", "recurrent_dropout": 0.3},
        {"learnable_init_state": True},
        {"backend": "fused", "learnable_init_state": True},
        {"forget_bias": None},
    ],
    "gru": [{"backend": "naive", "recurrent_dropout": 0.3}, {"learnable_init_state": True}],
    "rnn": [{"nonlinearity": "relu"}, {"learnable_init_state": True}],
    "attention": [
        {"backend": "sdpa", "positional": "none"},
        {"backend": "sdpa", "positional": "alibi"},
        {"backend": "naive", "num_heads": 1},
        {"backend": "sdpa", "window": 3},
        {"backend": "sdpa", "window": 1, "positional": "none"},
        {"backend": "sdpa", "window": 2, "positional": "alibi"},
        {"backend": "sdpa", "num_kv_heads": 2},
        {"backend": "sdpa", "num_kv_heads": 1, "positional": "alibi"},
        {"backend": "sdpa", "num_kv_heads": 2, "window": 4},
        {"backend": "naive", "num_kv_heads": 2, "window": 3},
    ],
    "mlstm": [
        {"backend": "naive", "mode": "recurrent"},
        {"backend": "naive", "mode": "parallel"},
        {"backend": "naive", "mode": "chunkwise", "chunk_size": 4},
        {"backend": "naive", "forget_gate": "exp", "chunk_size": 2, "conv_kernel_size": 0},
        {"backend": "naive", "num_heads": 2, "bias": True, "mode": "parallel"},
    ],
    "slstm": [
        {"backend": "naive", "forget_gate": "exp"},
        {"backend": "fused", "forget_gate": "exp", "conv_kernel_size": 0},
        {"conv_kernel_size": 0},
        {"num_heads": 1, "recurrent_init": "standard", "bias_init": "standard"},
        {"num_heads": 2, "recurrent_init": "standard", "dropout": 0.2, "bias_init": "small_init"},
        {"backend": "naive", "num_heads": 4, "conv_kernel_size": 2, "recurrent_init": "standard"},
    ],
    "xl-attention": [
        {"backend": "sdpa", "positional": "alibi", "mem_len": 9},
        {"backend": "naive", "positional": "none", "mem_len": 64},
        {"backend": "sdpa", "num_kv_heads": 2, "mem_len": 16},
        {"backend": "sdpa", "window": 3, "mem_len": 2},
        {"backend": "naive", "window": 3, "mem_len": 2},
        {"backend": "sdpa", "window": 2, "positional": "alibi", "mem_len": 1},
        {"backend": "sdpa", "window": 4, "num_kv_heads": 1, "mem_len": 5},
        {"backend": "sdpa", "window": 1, "positional": "none", "mem_len": 0},
    ],
    "performer": [
        {"backend": "chunked", "chunk_size": 2},
        {"backend": "chunked", "num_features": 5, "orthogonal": False, "bias": True},
        {"backend": "naive", "num_heads": 2, "num_features": 3},
    ],
}


def _cases():
    for name in MIXERS.names():
        cls = MIXERS.get(name)
        for backend in cls.BACKENDS:
            yield name, {"backend": backend}
        yield from ((name, v) for v in VARIANTS.get(name, []))


CASES = list(_cases())
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in c.items())}" for n, c in CASES]


def _mixer(name, config):
    torch.manual_seed(0)
    m = build_mixer(name, D, config).double().eval()
    with torch.no_grad():  # make learnable initial states non-trivial
        for pname, p in m.named_parameters():
            if "h0" in pname or "c0" in pname:
                p.normal_()
    return m


def _x(b=B, t=T):
    return torch.randn(b, t, D, dtype=torch.float64)


def _close(a, b, tol=1e-9):
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def _close_states(s1, s2, tol=1e-9):
    assert type(s1) is type(s2)
    for a, b in zip(s1, s2, strict=True):
        _close(a, b, tol)


def _close_rows(m, batched, b, alone):
    """Row b of a batched state equals the state of that row run alone (padding slots aside)."""
    for x, y in zip(m.state_row(batched, b), m.state_row(alone, 0), strict=True):
        _close(x, y)


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    return request.param


def test_shapes_and_state_type(case):
    name, config = case
    m = _mixer(name, config)
    y, state = m(_x())
    assert y.shape == (B, T, D)
    assert isinstance(state, m.State)
    assert all(t.shape[0] == B for t in state)
    init = m.init_state(B)
    assert isinstance(init, m.State) and len(init) == len(state)
    assert [t.dim() for t in init] == [t.dim() for t in state]  # a KV cache grows along time


def test_causality(case):
    m = _mixer(*case)
    x = _x()
    y, _ = m(x)
    x2 = x.clone()
    x2[:, 5:] += torch.randn_like(x2[:, 5:])
    y2, _ = m(x2)
    _close(y2[:, :5], y[:, :5])
    assert not torch.allclose(y2[:, 5:], y[:, 5:])


def test_step_loop_equals_forward(case):
    m = _mixer(*case)
    x = _x()
    y, final = m(x)
    state = m.init_state(B)
    ys = []
    for t in range(T):
        y_t, state = m.step(x[:, t], state)
        ys.append(y_t)
    _close(torch.stack(ys, 1), y)
    _close_states(state, final)


def test_split_forward_with_carried_state(case):
    m = _mixer(*case)
    x = _x()
    y, final = m(x)
    y1, s1 = m(x[:, :4])
    y2, s2 = m(x[:, 4:], s1)
    _close(torch.cat([y1, y2], 1), y)
    _close_states(s2, final)


def test_batch_independence(case):
    m = _mixer(*case)
    x = _x()
    y, state = m(x)
    for b in range(B):
        yb, sb = m(x[b : b + 1])
        _close(yb, y[b : b + 1])
        _close_rows(m, state, b, sb)


def test_padding_invariance(case):
    m = _mixer(*case)
    x = _x()
    lengths = torch.tensor([T, 4, 1])
    mask = torch.arange(T)[None] < lengths[:, None]
    y, state = m(x, mask=mask)
    garbage = torch.where(mask[..., None], x, torch.full_like(x, 1e6))  # pads hold huge values
    y_g, state_g = m(garbage, mask=mask)
    _close(y_g, y)
    _close_states(state_g, state)
    assert torch.isfinite(y).all()
    for b, n in enumerate(lengths.tolist()):
        alone, s_alone = m(x[b : b + 1, :n])
        _close(y[b : b + 1, :n], alone)
        _close_rows(m, state, b, s_alone)


def test_finite_gradients_reach_every_parameter(case):
    m = _mixer(*case).train()
    x = _x().requires_grad_()
    mask = torch.arange(T)[None] < torch.tensor([T, 5, 2])[:, None]
    y, state = m(x, mask=mask)
    (y.pow(2).sum() + sum(s.pow(2).sum() for s in state)).backward()
    assert torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"zero gradient for {pname}"


FAST_CASES = [(n, c) for n, c in CASES if c.get("backend", "auto") != "naive"]  # naive is the reference


@pytest.mark.parametrize(
    "name,config", FAST_CASES, ids=[i for i, c in zip(IDS, CASES, strict=True) if c in FAST_CASES]
)
def test_backends_agree_with_naive(name, config):
    ref = _mixer(name, config | {"backend": "naive"})
    fast = _mixer(name, config)
    fast.load_state_dict(ref.state_dict())
    x1 = _x().requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    lengths = torch.tensor([T, 6, 3])
    mask = torch.arange(T)[None] < lengths[:, None]
    y1, s1 = ref(x1, mask=mask)
    y2, s2 = fast(x2, mask=mask)
    _close(y2, y1)
    _close_states(s2, s1)
    w = torch.randn_like(y1)
    ((y1 * w).sum() + s1[0].sum()).backward()
    ((y2 * w).sum() + s2[0].sum()).backward()
    _close(x2.grad, x1.grad)
    grads = dict(ref.named_parameters())
    for pname, p in fast.named_parameters():
        _close(p.grad, grads[pname].grad)


def test_config_round_trip(case):
    name, config = case
    m = _mixer(name, config)
    data = to_dict(m.config)
    assert from_dict(type(m.config), data) == m.config
    rebuilt = build_mixer(name, D, data)
    assert list(rebuilt.state_dict()) == list(m.state_dict())


def test_bad_inputs_say_what_was_expected(case):
    m = _mixer(*case)
    with pytest.raises(ShapeError, match=r"expected x of shape \(B, T, 8\)"):
        m(torch.randn(T, D, dtype=torch.float64))
    with pytest.raises(ShapeError, match="expected x of shape"):
        m(_x()[..., :5])
    state = m.init_state(B)
    bad = type(state)(*(t[:2] for t in state))
    with pytest.raises(ShapeError, match="expected state"):
        m(_x(), bad)


def test_unknown_mixer_lists_choices():
    with pytest.raises(
        KeyError, match="choose from: attention, gru, lstm, mlstm, performer, rnn, slstm, xl-attention"
    ):
        build_mixer("lstn", D)
