"""Cells by hand: gradcheck, parameter counts, the course text's worked numbers."""

from __future__ import annotations

import math

import pytest
import torch

import seqlab.nn as snn
from seqlab.ops.rnn import gru_cell, lstm_cell, rnn_cell
from seqlab.ops.rnn.fused_lstm import fused_lstm


def _rand(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_gradcheck_rnn_cell():
    for nl in ("tanh", "relu"):
        assert torch.autograd.gradcheck(
            lambda g, h, w, nl=nl: rnn_cell(g, h, w, nl), (_rand(2, 3), _rand(2, 3), _rand(3, 3))
        )


def test_gradcheck_lstm_cell_plain_projected_and_layer_norm():
    B, H, P = 2, 3, 2
    assert torch.autograd.gradcheck(lstm_cell, (_rand(B, 4 * H), _rand(B, H), _rand(B, H), _rand(4 * H, H)))
    assert torch.autograd.gradcheck(
        lambda g, h, c, w, r: lstm_cell(g, h, c, w, w_hr=r),
        (_rand(B, 4 * H), _rand(B, P), _rand(B, H), _rand(4 * H, P), _rand(P, H)),
    )
    assert torch.autograd.gradcheck(
        lambda g, h, c, w, a, b, d: lstm_cell(g, h, c, w, ln_hh=a, ln_c=(b, d)),
        (_rand(B, 4 * H), _rand(B, H), _rand(B, H), _rand(4 * H, H), _rand(4 * H), _rand(H), _rand(H)),
    )


def test_gradcheck_gru_cell():
    B, H = 2, 3
    assert torch.autograd.gradcheck(gru_cell, (_rand(B, 3 * H), _rand(B, H), _rand(3 * H, H), _rand(H)))


def test_gradcheck_whole_naive_layer():
    lstm = snn.LSTM(3, 4, num_layers=2, bidirectional=True, backend="naive", layer_norm=True).double()
    x = _rand(2, 4, 3)
    assert torch.autograd.gradcheck(lambda x: lstm(x, lengths=torch.tensor([4, 2]))[0], (x,))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dropped", [False, True])
def test_gradcheck_fused_lstm_bptt(reverse, masked, dropped):
    B, T, H = 3, 5, 2
    mask = torch.arange(T)[None] < torch.tensor([5, 2, 0])[:, None] if masked else None
    drop = (torch.rand(B, H, dtype=torch.float64) > 0.3).double() / 0.7 if dropped else None

    def run(gx, h0, c0, w):
        out, (h, c) = fused_lstm(gx.transpose(0, 1), h0, c0, w, mask, drop, reverse)
        return out, h, c

    assert torch.autograd.gradcheck(run, (_rand(B, T, 4 * H), _rand(B, H), _rand(B, H), _rand(4 * H, H)))


def test_lstm_cell_by_hand():
    # z = 0 everywhere: every sigmoid gate is 1/2, candidate tanh(0) = 0
    H = 2
    c_prev = torch.tensor([[1.0, -2.0]])
    h, c = lstm_cell(torch.zeros(1, 4 * H), torch.zeros(1, H), c_prev, torch.zeros(4 * H, H))
    torch.testing.assert_close(c, 0.5 * c_prev)  # forget half, learn nothing
    torch.testing.assert_close(h, 0.5 * torch.tanh(0.5 * c_prev))  # use gate 1/2


def test_course_text_rnn_forward_example():
    """Course text §5.1: hidden 2, input 3; x_1 = [1, 0, 1] gives h_1 = tanh([1.1, 1.7]) ≈ [0.80, 0.94]."""
    rnn = snn.RNN(3, 2, backend="naive")
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.1]]))
        rnn.weight_ih_l0.copy_(torch.tensor([[0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]))
        rnn.bias_ih_l0.copy_(torch.tensor([0.1, 0.1]))
        rnn.bias_hh_l0.zero_()
    with torch.no_grad():
        out, _ = rnn(torch.tensor([[[1.0, 0.0, 1.0]]]))
    torch.testing.assert_close(out[0, 0], torch.tanh(torch.tensor([1.1, 1.7])))
    assert [round(v, 2) for v in out[0, 0].tolist()] == [0.80, 0.94]
    y = 0.5 * out[0, 0].sum() + 0.1  # W_hy = [0.5, 0.5], b_y = 0.1
    assert math.isclose(float(y), 0.968, abs_tol=5e-4)
    assert math.isclose((1 - float(y)) ** 2, 0.0010, abs_tol=1e-4)  # erratum: the text says 0.0009


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("d,h", [(100, 256), (7, 3), (32, 64)])
def test_parameter_counts_match_textbook_formulas(d, h):
    # torch/seqlab keep two bias vectors: G·h·(d + h) + 2·G·h
    assert _count(snn.LSTM(d, h)) == 4 * h * (d + h) + 2 * 4 * h
    assert _count(snn.GRU(d, h)) == 3 * h * (d + h) + 2 * 3 * h
    assert _count(snn.RNN(d, h)) == h * (d + h) + 2 * h
    # the textbook's single-bias count G·h·(d + h + 1) is what bias=False plus one vector gives
    assert _count(snn.LSTM(d, h, bias=False)) + 4 * h == 4 * h * (d + h + 1)
    assert _count(snn.GRU(d, h, bias=False)) + 3 * h == 3 * h * (d + h + 1)


def test_course_text_lstm_vs_gru_example():
    """hidden 256, input 100: LSTM 365,568 vs GRU 274,176 weights + single bias; torch: two biases."""
    lstm, gru = snn.LSTM(100, 256), snn.GRU(100, 256)
    assert _count(snn.LSTM(100, 256, bias=False)) + 4 * 256 == 365_568
    assert _count(snn.GRU(100, 256, bias=False)) + 3 * 256 == 274_176
    assert _count(lstm) == 366_592 == _count(torch.nn.LSTM(100, 256))
    assert _count(gru) == 274_944 == _count(torch.nn.GRU(100, 256))
