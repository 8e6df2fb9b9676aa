"""The ``backend="naive"``, ``"fused"`` and ``"compiled"`` paths of :class:`seqlab.nn.RNNBase`.

Shape legend: B batch · T time · D input width · H hidden · P projection · G gates · O output.

Both run the stack layer by layer and direction by direction, with the input projection of all
T steps hoisted into one matrix multiply. ``naive`` then drives the readable cells of
:mod:`seqlab.ops.rnn` through :func:`~seqlab.ops.rnn.scan` under autograd (the reference);
``fused`` (LSTM only) calls :func:`~seqlab.ops.rnn.fused_lstm.fused_lstm`, whose backward is
hand-written BPTT; ``compiled`` (LSTM, also with layer norm) runs the time loop and BPTT in C++
(:mod:`seqlab.ops.rnn.compiled_lstm`). Where the extension cannot run (not built, not CPU, not
float32/float64) ``compiled`` runs ``fused`` instead, or ``naive`` with layer norm: same math.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.ops.rnn import compiled_lstm as ext
from seqlab.ops.rnn import gru_cell, lstm_cell, rnn_cell, scan
from seqlab.ops.rnn.fused_lstm import fused_lstm
from seqlab.ops.rnn.scan import hoist_recurrent_weight_grad, no_record


def forward(module, x: Tensor, h0: Tensor, c0: Tensor | None, mask: Tensor | None):
    """x (B, T, D); h0/c0 (L·K, B, ·) -> (out (B, T, O), h_n (L·K, B, ·), c_n or None)."""
    backend = runtime_backend(module, x)
    layer_input = x  # (B, T, D)
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        outputs = []
        for direction in range(module.num_directions):
            k = layer * module.num_directions + direction
            p = module._layer_params(layer, direction)
            drop = recurrent_dropout_mask(module, layer_input)
            reverse = direction == 1
            if backend == "compiled":
                x_tm = layer_input.transpose(0, 1)  # (T, B, D)
                ln_c = None if p["ln_c_weight"] is None else (p["ln_c_weight"], p["ln_c_bias"])
                args = (mask, drop, reverse, p["ln_hh_weight"], ln_c)
                if p["ln_ih_weight"] is not None:  # the C++ loop applies LN(x W_ih^T) γ + b itself
                    gx = ext.linear(x_tm, p["weight_ih"])  # (T, B, G·H)
                    b = None if p["bias_ih"] is None else p["bias_ih"] + p["bias_hh"]
                    kw = {"ln_ih": p["ln_ih_weight"], "bias": b}
                else:
                    gx, kw = input_projection(module, p, x_tm, ext.linear), {}  # (T, B, G·H)
                out, state = ext.compiled_lstm(gx, h0[k], c0[k], p["weight_hh"], *args, **kw)
            elif backend == "fused":
                gx = input_projection(module, p, layer_input.transpose(0, 1))  # (T, B, G·H)
                out, state = fused_lstm(gx, h0[k], c0[k], p["weight_hh"], mask, drop, reverse)
            else:
                gx = input_projection(module, p, layer_input)  # (B, T, G·H)
                step, gx = make_step(module, p, gx, drop, reverse)
                out, state = scan(step, gx, (h0[k],) if c0 is None else (h0[k], c0[k]), mask, reverse)
            outputs.append(out)
            h_n.append(state[0])
            if c0 is not None:
                c_n.append(state[1])
        layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (B, T, O)
        if module.dropout and module.training and layer < module.num_layers - 1:
            layer_input = F.dropout(layer_input, module.dropout, training=True)
    return layer_input, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)


def runtime_backend(module, x: Tensor) -> str:
    """``module.backend``, except ``compiled`` where the extension cannot run: ``fused``/``naive``."""
    if module.backend != "compiled" or (ext.supports(x) and ext.load_extension() is not None):
        return module.backend
    return "naive" if module.layer_norm else "fused"


def input_projection(module, p: dict, x: Tensor, linear=F.linear) -> Tensor:
    """``x W_ih^T + b_ih`` for all steps at once, with the foldable parts of ``b_hh``: (B, T, G·H).

    ``linear`` computes ``x W^T (+ b)``: F.linear, or the compiled backend's oneDNN linear.
    """
    H, b_ih, b_hh = module.hidden_size, p["bias_ih"], p["bias_hh"]
    if p["ln_ih_weight"] is not None:
        ln = p["ln_ih_weight"]
        gx = F.layer_norm(linear(x, p["weight_ih"]), ln.shape, ln)  # LN(x W_ih^T)
        return gx if b_ih is None else gx + (b_ih + b_hh)
    if b_ih is None:
        return linear(x, p["weight_ih"])
    if module.mode == "GRU":  # b_hn stays inside the reset gate's product
        return linear(x, p["weight_ih"], b_ih + torch.cat([b_hh[: 2 * H], b_hh.new_zeros(H)]))
    return linear(x, p["weight_ih"], b_ih + b_hh)


def recurrent_dropout_mask(module, x: Tensor) -> Tensor | None:
    """One (B, P or H) mask per sequence, shared by all steps (Gal & Ghahramani 2016), or None."""
    if not (module.recurrent_dropout and module.training):
        return None
    keep = 1.0 - module.recurrent_dropout
    return torch.bernoulli(x.new_full((x.shape[0], module.output_size), keep)) / keep


def make_step(module, p: dict, gx: Tensor, drop: Tensor | None, reverse: bool):
    """Close over one cell step; returns ``(step, gx)`` (gx may be rewired for the W_hh gradient)."""
    H = module.hidden_size
    # additive cells (LSTM without layer norm, Elman RNN): W_hh's gradient as one GEMM
    w_hh, record = p["weight_hh"], no_record
    if module.mode != "GRU" and not module.layer_norm:
        gx, w_hh, record = hoist_recurrent_weight_grad(gx, w_hh, reverse)

    def rec(h: Tensor) -> Tensor:  # what the recurrent matmul reads: h_{t-1} (⊙ dropout mask)
        return record(h if drop is None else h * drop)

    if module.mode == "LSTM":
        ln_c = None if p["ln_c_weight"] is None else (p["ln_c_weight"], p["ln_c_bias"])
        kw = {"w_hr": p["weight_hr"], "ln_hh": p["ln_hh_weight"], "ln_c": ln_c}

        def step(g, s):
            return lstm_cell(g, rec(s[0]), s[1], w_hh, **kw)

    elif module.mode == "GRU":
        b_hn = None if p["bias_hh"] is None else p["bias_hh"][2 * H :]

        def step(g, s):
            return (gru_cell(g, s[0], w_hh, b_hn, h_rec=rec(s[0])),)

    else:
        nonlinearity = "tanh" if module.mode == "RNN_TANH" else "relu"

        def step(g, s):
            return (rnn_cell(g, rec(s[0]), w_hh, nonlinearity),)

    return step, gx
