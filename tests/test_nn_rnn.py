"""seqlab.nn.RNN/LSTM/GRU against torch.nn with copied weights: outputs, states, gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import seqlab.nn as snn

B, T, D, H = 3, 7, 5, 6
CASES = [
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
    ("LSTM", {}),
    ("LSTM", {"proj_size": 4}),
    ("GRU", {}),
]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _pair(kind, kw, layers, bidir, backend, dtype):
    ref = getattr(torch.nn, kind)(D, H, num_layers=layers, bidirectional=bidir, batch_first=True, **kw)
    ours = getattr(snn, kind)(D, H, num_layers=layers, bidirectional=bidir, backend=backend, **kw)
    ref, ours = ref.to(dtype), ours.to(dtype)
    assert list(ours.state_dict()) == list(ref.state_dict())  # same keys, same order
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run_ref(ref, x, lengths, hx):
    if lengths is None:
        return ref(x, hx)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = ref(packed, hx)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], state


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


BACKEND_CASES = [
    (kind, kw, backend)
    for kind, kw in CASES
    for backend in ["naive", "torch", "fused"]
    if backend != "fused" or (kind == "LSTM" and not kw)  # fused: LSTM without projection
]


@pytest.mark.parametrize("kind,kw,backend", BACKEND_CASES, ids=lambda v: v if isinstance(v, str) else str(v))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("use_lengths", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_nn(kind, kw, backend, layers, bidir, use_lengths, dtype):
    ref, ours = _pair(kind, kw, layers, bidir, backend, dtype)
    x = torch.randn(B, T, D, dtype=dtype)
    lengths = torch.tensor([T, 3, 5]) if use_lengths else None
    K = 2 if bidir else 1
    h0 = torch.randn(layers * K, B, kw.get("proj_size") or H, dtype=dtype)
    hx = (h0, torch.randn(layers * K, B, H, dtype=dtype)) if kind == "LSTM" else h0

    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, st_ref = _run_ref(ref, x_ref, lengths, hx)
    out_ours, st_ours = ours(x_ours, hx, lengths=lengths)
    tol = TOL[dtype]
    torch.testing.assert_close(out_ours, out_ref, atol=tol, rtol=tol)
    for a, b in zip(_flat(st_ours), _flat(st_ref), strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)

    # gradients through outputs and final states, w.r.t. input and every weight
    w = torch.randn_like(out_ref)
    loss_ref = (out_ref * w).sum() + sum(s.pow(2).sum() for s in _flat(st_ref))
    loss_ours = (out_ours * w).sum() + sum(s.pow(2).sum() for s in _flat(st_ours))
    loss_ref.backward()
    loss_ours.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=tol * 10, rtol=tol * 10)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=tol * 10, rtol=tol * 10, msg=name)


def test_unbatched_input_like_torch():
    ref, ours = _pair("GRU", {}, 2, True, "naive", torch.float64)
    x = torch.randn(T, D, dtype=torch.float64)
    out_ref, h_ref = ref(x)
    out, h = ours(x)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)


def test_batch_first_false_like_torch():
    ref = torch.nn.LSTM(D, H, batch_first=False)
    ours = snn.LSTM(D, H, batch_first=False, backend="naive")
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, D)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["naive", "torch"])
def test_zero_length_rows_keep_the_initial_state(backend):
    lstm = snn.LSTM(D, H, backend=backend)
    x = torch.randn(B, T, D)
    h0, c0 = torch.randn(1, B, H), torch.randn(1, B, H)
    out, (h, c) = lstm(x, (h0, c0), lengths=torch.tensor([0, T, 2]))
    assert torch.equal(out[0], torch.zeros(T, H))
    torch.testing.assert_close(h[:, 0], h0[:, 0])
    torch.testing.assert_close(c[:, 0], c0[:, 0])


def test_naive_accepts_any_mask_but_torch_backend_needs_right_padding():
    x = torch.randn(2, 4, D)
    holes = torch.tensor([[True, False, True, True], [True, True, True, True]])
    naive = snn.GRU(D, H, backend="naive")
    out, h = naive(x, mask=holes)
    # a masked step is skipped: same as running the sequence without it
    _, h_alone = naive(x[:1, [0, 2, 3]])
    torch.testing.assert_close(h[:, :1], h_alone)
    assert torch.equal(out[0, 1], torch.zeros(H))
    fused = snn.GRU(D, H, backend="torch")
    with pytest.raises(ValueError, match="right-padded"):
        fused(x, mask=holes)
