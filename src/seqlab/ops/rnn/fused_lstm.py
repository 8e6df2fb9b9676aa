"""A whole-sequence LSTM layer with backpropagation through time written out by hand.

Shape legend: B batch · T time · H hidden width · 4H the four gate blocks (i, f, g, o).

Autograd on the per-step cell (:func:`seqlab.ops.rnn.lstm_cell`, the reference) records ~20
tiny operations per time step and their backward nodes; here the forward loop runs without
autograd on preallocated buffers, and the backward loop applies the BPTT equations directly:

    δh_t   = ∂L/∂y_t + (δz_{t+1} W_hh) ⊙ mask_drop        (gradient reaching h_t)
    δo_t   = δh_t ⊙ tanh(c_t)
    δc_t   = δc_{t+1} ⊙ f_{t+1} + δh_t ⊙ o_t ⊙ (1 − tanh²(c_t))
    δi_t   = δc_t ⊙ g_t        δg_t = δc_t ⊙ i_t        δf_t = δc_t ⊙ c_{t−1}
    δz_t   = [δi ⊙ i(1−i), δf ⊙ f(1−f), δg ⊙ (1−g²), δo ⊙ o(1−o)]
    ∂L/∂W_hh = Σ_t δz_tᵀ (h_{t−1} ⊙ mask_drop)          (one GEMM over all B·T steps)

``δz`` is also the gradient of the hoisted input projection ``gx``, so autograd finishes the
input weights, biases and inputs. Padded steps (mask False) pass state and gradients through
unchanged. Supports recurrent dropout (a fixed mask on h_{t−1}); no projection or layer norm.
Tested against the autograd reference (outputs, gradients, final states) and by gradcheck.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def prepacked_matmul(weight: Tensor, batch_size: int) -> Callable[[Tensor], Tensor]:
    """``x -> x @ weight^T`` for many small x of one batch size, with the weight packed once.

    A recurrence multiplies the same weight T times by a small (B, ·) matrix; a plain matmul
    re-packs the weight into the BLAS kernel's layout on every call. On x86 CPUs with oneDNN,
    float32 weights are reordered once into oneDNN's blocked layout (about 2× faster per call
    here); elsewhere (float64, CUDA, no oneDNN) this is a plain matmul. Same math either way.
    """
    w_t = weight.t()
    if weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), batch_size)
        except (RuntimeError, AttributeError):  # a build without the op: plain matmul
            return lambda x: x @ w_t
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
    return lambda x: x @ w_t


class FusedLSTMFunction(torch.autograd.Function):
    """``(gx, h0, c0, w_hh, mask, drop, reverse) -> (out, h_n, c_n)``; see the module docstring.

    Shapes: gx (T, B, 4H) *time-major* (biases included; each step's slice is contiguous),
    h0/c0 (B, H), w_hh (4H, H), mask (B, T) bool or None, drop (B, H) or None.
    Returns out (B, T, H) (zero at padded steps), h_n, c_n (B, H).
    """

    @staticmethod
    def forward(ctx, gx, h0, c0, w_hh, mask, drop, reverse):
        T, B, G = gx.shape
        H = G // 4
        order = range(T - 1, -1, -1) if reverse else range(T)
        gates = gx.new_empty(T, B, G)  # activated (i, f, g, o) per step, in processing order
        hs = gx.new_empty(T + 1, B, H)  # hs[k] = state before processing step k
        cs = gx.new_empty(T + 1, B, H)
        hs[0], cs[0] = h0, c0
        recurrent = prepacked_matmul(w_hh, B)  # h -> h W_hh^T
        for k, t in enumerate(order):
            h_in = hs[k] if drop is None else hs[k] * drop
            z = torch.add(gx[t], recurrent(h_in), out=gates[k])  # (B, 4H) pre-activations
            torch.sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])  # i, f
            torch.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])  # g
            torch.sigmoid(z[:, 3 * H :], out=z[:, 3 * H :])  # o
            i, f, g, o = z.chunk(4, dim=1)
            c = torch.addcmul(f * cs[k], i, g, out=cs[k + 1])
            h = torch.mul(o, torch.tanh(c), out=hs[k + 1])
            if mask is not None:  # padded rows keep their state
                m = mask[:, t, None]
                torch.where(m, c, cs[k], out=cs[k + 1])
                torch.where(m, h, hs[k], out=hs[k + 1])
        out = hs[1:].flip(0) if reverse else hs[1:]
        out = out.transpose(0, 1)  # (B, T, H) in time order
        if mask is not None:
            out = out * mask[..., None]
        ctx.save_for_backward(gates, hs, cs, w_hh, mask, drop)
        ctx.reverse = reverse
        return out.clone(memory_format=torch.contiguous_format), hs[T].clone(), cs[T].clone()

    @staticmethod
    @once_differentiable  # hand-written BPTT: first-order gradients only
    def backward(ctx, d_out, d_hn, d_cn):
        gates, hs, cs, w_hh, mask, drop = ctx.saved_tensors
        T, B, G = gates.shape
        H = G // 4
        order = list(range(T - 1, -1, -1) if ctx.reverse else range(T))
        d_gx = gates.new_empty(T, B, G)  # δz per step = ∂L/∂gx, time-major
        dh = d_hn.clone() if d_hn is not None else gates.new_zeros(B, H)
        dc = d_cn.clone() if d_cn is not None else gates.new_zeros(B, H)
        if d_out is not None and mask is not None:
            d_out = d_out * mask[..., None]
        back = prepacked_matmul(w_hh.t(), B)  # δz -> δz W_hh
        for k in range(T - 1, -1, -1):
            t = order[k]
            if d_out is not None:
                dh = dh + d_out[:, t]
            i, f, g, o = gates[k].chunk(4, dim=1)
            tc = torch.tanh(cs[k + 1])
            dc_t = torch.addcmul(dc, dh * o, 1 - tc * tc)  # δc_t
            dz = d_gx[t]
            torch.mul(dc_t * g, i * (1 - i), out=dz[:, :H])  # δi ⊙ σ'
            torch.mul(dc_t * cs[k], f * (1 - f), out=dz[:, H : 2 * H])  # δf ⊙ σ'
            torch.mul(dc_t * i, 1 - g * g, out=dz[:, 2 * H : 3 * H])  # δg ⊙ tanh'
            torch.mul(dh * tc, o * (1 - o), out=dz[:, 3 * H :])  # δo ⊙ σ'
            dh_prev = back(dz)  # (B, H)
            if drop is not None:
                dh_prev = dh_prev * drop
            dc_prev = dc_t * f
            if mask is not None:  # padded rows: no gradient into z, state gradients pass through
                m = mask[:, t, None]
                dz.mul_(m)
                dh_prev, dc_prev = torch.where(m, dh_prev, dh), torch.where(m, dc_prev, dc)
            dh, dc = dh_prev, dc_prev
        h_in = hs[:T] if drop is None else hs[:T] * drop  # (T, B, H): what each step multiplied
        if ctx.reverse:  # processing order -> time order, to pair with d_gx
            h_in = h_in.flip(0)
        d_w = d_gx.reshape(T * B, G).t() @ h_in.reshape(T * B, H)  # (4H, H)
        return d_gx, dh, dc, d_w, None, None, None


def fused_lstm(
    gx: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    mask: Tensor | None = None,
    drop: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run one LSTM direction over time-major ``gx`` (T, B, 4H); returns ``(out (B, T, H), (h_n, c_n))``."""
    out, h_n, c_n = FusedLSTMFunction.apply(gx, h0, c0, w_hh, mask, drop, reverse)
    return out, (h_n, c_n)
