"""LSTM variants torch lacks, each against an independent, explicit reference written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seqlab.nn as snn
from seqlab.errors import ConfigError, ShapeError

B, T, D, H = 3, 6, 4, 5


def _ln(v, gain, bias=None):
    mu, var = v.mean(-1, keepdim=True), v.var(-1, unbiased=False, keepdim=True)
    out = (v - mu) / torch.sqrt(var + 1e-5) * gain
    return out if bias is None else out + bias


def test_layer_norm_lstm_matches_ba_et_al_equations():
    lstm = snn.LSTM(D, H, layer_norm=True).double()
    with torch.no_grad():  # non-trivial gains/biases
        for name, p in lstm.named_parameters():
            if name.startswith("ln_"):
                p.uniform_(0.5, 1.5)
    x = torch.randn(B, T, D, dtype=torch.float64)
    out, (h_n, c_n) = lstm(x)
    p = dict(lstm.named_parameters())
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    h = c = torch.zeros(B, H, dtype=torch.float64)
    for t in range(T):
        # (i, f, g, o) = LN(W_x x) + LN(W_h h) + b ;  c = f c + i g ;  h = o tanh(LN(c))
        z = (
            _ln(x[:, t] @ p["weight_ih_l0"].T, p["ln_ih_weight_l0"])
            + _ln(h @ p["weight_hh_l0"].T, p["ln_hh_weight_l0"])
            + b
        )
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(_ln(c, p["ln_c_weight_l0"], p["ln_c_bias_l0"]))
        torch.testing.assert_close(out[:, t], h)
    torch.testing.assert_close(h_n[0], h)
    torch.testing.assert_close(c_n[0], c)


@pytest.mark.parametrize(
    "kind,backend", [("LSTM", "naive"), ("LSTM", "fused"), ("GRU", "naive"), ("RNN", "naive")]
)
def test_recurrent_dropout_uses_one_mask_per_sequence(kind, backend):
    layer = getattr(snn, kind)(D, H, recurrent_dropout=0.4, backend=backend).double().train()
    plain = getattr(torch.nn, kind)(D, H, batch_first=True).double()
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(B, T, D, dtype=torch.float64)
    torch.manual_seed(123)
    out, _ = layer(x)
    torch.manual_seed(123)  # the layer draws exactly one (B, H) mask
    mask = torch.bernoulli(torch.full((B, H), 0.6, dtype=torch.float64)) / 0.6
    cell = getattr(torch.nn, kind + "Cell")(D, H).double()
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in plain.state_dict().items()})
    h = torch.zeros(B, H, dtype=torch.float64)
    c = torch.zeros_like(h)
    for t in range(T):
        if kind == "LSTM":
            h, c = cell(x[:, t], (h * mask, c))  # the recurrent input is dropped; the carry is not
        elif kind == "GRU":
            # GRU: gates read h ⊙ mask, the interpolation z ⊙ h uses the clean h
            gi, gh = x[:, t] @ cell.weight_ih.T + cell.bias_ih, (h * mask) @ cell.weight_hh.T + cell.bias_hh
            r, z = torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, 1)
            n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            h = (1 - z) * n + z * h
        else:
            h = cell(x[:, t], h * mask)
        torch.testing.assert_close(out[:, t], h)
    layer.eval()  # no dropout at evaluation: identical to torch.nn
    torch.testing.assert_close(layer(x)[0], plain(x)[0])


def test_forget_bias_init():
    lstm = snn.LSTM(D, H, num_layers=2, bidirectional=True, forget_bias=1.0)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(p[H : 2 * H] == 1.0), name
        if name.startswith("bias_hh"):
            assert torch.all(p[H : 2 * H] == 0.0), name  # effective forget bias 1.0, not 2.0
    bound = 1 / H**0.5
    torch_init = snn.LSTM(D, H, forget_bias=None)
    assert all(p.abs().max() <= bound for p in torch_init.parameters())


def test_learnable_initial_state_is_used_and_trained():
    lstm = snn.LSTM(D, H, learnable_init_state=True)
    with torch.no_grad():
        lstm.h0_l0.fill_(0.5)
        lstm.c0_l0.fill_(-0.3)
    x = torch.randn(B, T, D)
    h0 = torch.full((1, B, H), 0.5)
    c0 = torch.full((1, B, H), -0.3)
    torch.testing.assert_close(lstm(x)[0], lstm(x, (h0, c0))[0])
    lstm(x)[0].sum().backward()
    assert lstm.h0_l0.grad.abs().sum() > 0 and lstm.c0_l0.grad.abs().sum() > 0


def test_variants_need_the_naive_backend():
    with pytest.raises(ConfigError, match="layer_norm needs backend='naive'"):
        snn.LSTM(D, H, layer_norm=True, backend="torch")
    assert snn.LSTM(D, H, layer_norm=True).backend == "naive"  # auto picks it
    assert snn.LSTM(D, H, recurrent_dropout=0.1).backend == "fused"
    assert snn.GRU(D, H, recurrent_dropout=0.1).backend == "naive"
    assert snn.LSTM(D, H).backend == "torch"
    with pytest.raises(ConfigError, match="recurrent_dropout needs backend='naive' or 'fused'"):
        snn.LSTM(D, H, recurrent_dropout=0.1, backend="torch")
    with pytest.raises(ConfigError, match="backend='fused' supports LSTM without layer_norm or proj_size"):
        snn.LSTM(D, H, proj_size=2, backend="fused")
    with pytest.raises(ConfigError, match="backend='fused' supports LSTM"):
        snn.GRU(D, H, backend="fused")
    with pytest.raises(ConfigError, match="only implemented for LSTM"):
        snn.RNNBase("GRU", D, H, layer_norm=True)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: snn.LSTM(-1, H), "input_size: expected an integer >= 1, got -1"),
        (lambda: snn.GRU(D, 0), "hidden_size: expected an integer >= 1, got 0"),
        (lambda: snn.RNN(D, H, num_layers=0), "num_layers: expected an integer >= 1"),
        (lambda: snn.LSTM(D, H, proj_size=H), "proj_size: expected < hidden_size"),
        (lambda: snn.LSTM(D, H, dropout=1.5), r"dropout: expected a probability in \[0, 1\]"),
        (lambda: snn.LSTM(D, H, backend="cuda"), "backend: expected one of auto, naive, torch, fused"),
        (lambda: snn.RNN(D, H, nonlinearity="sigmoid"), "nonlinearity: expected 'tanh' or 'relu'"),
    ],
)
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize("backend", ["naive", "torch", "fused"])
def test_bad_forward_inputs(backend):
    lstm = snn.LSTM(D, H, num_layers=2, backend=backend)
    with pytest.raises(
        ShapeError, match=r"expected input of rank 3 \(B, T, D\) or 2 \(T, D\), got shape \(3,\)"
    ):
        lstm(torch.randn(3))
    with pytest.raises(ShapeError, match="expected input.size\\(-1\\) == input_size=4, got 7"):
        lstm(torch.randn(B, T, 7))
    with pytest.raises(ShapeError, match=r"expected h_0 of shape \(2, 3, 5\), got \(1, 3, 5\)"):
        lstm(torch.randn(B, T, D), (torch.zeros(1, B, H), torch.zeros(2, B, H)))
    with pytest.raises(ShapeError, match="expected hx to be a tuple"):
        lstm(torch.randn(B, T, D), torch.zeros(2, B, H))
    with pytest.raises(ShapeError, match=r"expected every length in \[0, 6\]"):
        lstm(torch.randn(B, T, D), lengths=torch.tensor([7, 1, 1]))
    with pytest.raises(ShapeError, match=r"expected mask of shape \(3, 6\)"):
        lstm(torch.randn(B, T, D), mask=torch.ones(B, T + 1, dtype=torch.bool))
    with pytest.raises(ShapeError, match="either lengths or mask"):
        lstm(torch.randn(B, T, D), lengths=torch.tensor([1, 1, 1]), mask=torch.ones(B, T, dtype=torch.bool))
    gru = snn.GRU(D, H, backend="naive" if backend == "fused" else backend)
    with pytest.raises(ShapeError, match="expected hx to be a single tensor"):
        gru(torch.randn(B, T, D), (torch.zeros(1, B, H), torch.zeros(1, B, H)))


def test_ln_lstm_fwd_uses_F_layer_norm_semantics():
    # sanity for the reference helper above
    v = torch.randn(4, 10, dtype=torch.float64)
    torch.testing.assert_close(_ln(v, torch.ones(10)), F.layer_norm(v, (10,)))


@pytest.mark.parametrize("backend", ["naive", "fused"])
def test_second_order_gradients_raise_instead_of_being_wrong(backend):
    lstm = snn.LSTM(D, H, backend=backend)
    x = torch.randn(B, T, D, requires_grad=True)
    (g,) = torch.autograd.grad(lstm(x)[0].sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|not have been used in the graph"):
        torch.autograd.grad(g.sum(), lstm.weight_hh_l0)


def test_fused_output_can_be_modified_in_place():
    lstm = snn.LSTM(D, H, backend="fused")
    out, _ = lstm(torch.randn(1, T, D))
    out.mul_(2).sum().backward()
