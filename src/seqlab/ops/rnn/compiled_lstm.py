"""An LSTM layer whose whole time loop, forward and BPTT, runs in a small C++ extension.

Shape legend: B batch · T time · H hidden width · G = 4H the four gate blocks (i, f, g, o).

The per-step Python loops (:func:`~seqlab.ops.rnn.scan` with :func:`~seqlab.ops.rnn.lstm_cell`,
or :mod:`~seqlab.ops.rnn.fused_lstm`) spend most of their time dispatching ~20 small kernels
per step. ``csrc/lstm.cpp`` keeps the same math and does, per step, one GEMM for the recurrent
product and one pass over each row of the (B, G) buffer for everything else::

    r_t  = (h_{t−1} ⊙ m) W_hhᵀ                       m: recurrent-dropout mask (or 1)
    z_t  = gx_t + r_t             or  gx_t + LN(r_t) ⊙ γ_hh  (layer norm, Ba et al. 2016)
    i, f, o = σ(z_i, z_f, z_o)     g = tanh(z_g)
    c_t  = f ⊙ c_{t−1} + i ⊙ g
    h_t  = o ⊙ tanh(c_t)          or  o ⊙ tanh(LN(c_t) ⊙ γ_c + β_c)

``gx`` (the hoisted input projection, with the input layer norm and biases) stays in Python
under autograd. The backward pass is the hand-written BPTT of :mod:`~seqlab.ops.rnn.fused_lstm`
plus the layer-norm backward ``δx = (γ·δy − mean(γ·δy) − x̂ · mean(γ·δy·x̂)) / σ``, one pass
per row and one GEMM ``δh_{t−1} = δr_t W_hh`` per step; ``∂L/∂W_hh = Σ_t δr_tᵀ (h_{t−1} ⊙ m)``
is one GEMM over all B·T rows after the loop. Padded steps (mask False) keep the state and pass
gradients through. float32 uses a polynomial exp (relative error ~1e-7) that the compiler
vectorises; float64 uses libm. First-order gradients only. With ``ln_ih`` the loop also applies
the input layer norm ``γ_ih ⊙ LN(x W_ihᵀ) + b`` (and its backward) row by row, which saves
three passes over (T, B, G) that F.layer_norm and the bias addition would make.

float32 GEMMs go through oneDNN (``torch.ops.mkldnn._linear_pointwise``): the per-step products
with prepacked weights, the W_hh gradient after the loop, and :func:`linear`, the input
projection with both its gradients. torch's float32 ``mm`` uses MKL, which on AMD CPUs reaches
about half of oneDNN's speed on these shapes; float64 keeps ``mm`` (oneDNN has no float64).
The big (T, B, ·) buffers come from a pool and are reused once nothing references them any
more (see ``pooled_empty`` in ``csrc/lstm.cpp``; ``$SEQLAB_LSTM_POOL_MB``, default 1024, caps
it and :func:`release_buffers` empties it), which saves mapping and faulting in fresh pages.

The extension is built on first use and cached (:mod:`seqlab.ops.extension`: ~1 min, needs a C++
compiler and ninja); when it cannot be built :func:`load_extension` warns once and returns None,
and callers run the Python path. Tested against the naive reference (outputs, gradients, final
states).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from seqlab.ops.extension import LazyExtension, build
from seqlab.ops.extension import extension_dir as extension_dir
from seqlab.ops.gemm import linear  # noqa: F401 (linear: API)
from seqlab.ops.gemm import onednn as _onednn
from seqlab.ops.gemm import packed as _packed

_SOURCE = Path(__file__).with_name("csrc") / "lstm.cpp"
_HEADER = Path(__file__).parents[1] / "csrc" / "fast_math.h"  # shared with the compiled layers
LN_EPS = 1e-5  # F.layer_norm's default, as in the naive backend


def _build() -> ModuleType:
    """Compile (or load the cached build of) ``csrc/lstm.cpp``; raises when that is impossible."""
    return build("seqlab_lstm", [_SOURCE], [_HEADER])


_EXTENSION = LazyExtension(lambda: _build(), "compiled LSTM backend")
_STATE = _EXTENSION.state


def load_extension() -> ModuleType | None:
    """The compiled module, building it on first call; None (after one warning) if it cannot be built."""
    return _EXTENSION.load()


def supports(x: Tensor) -> bool:
    """Whether the extension can run on tensors like ``x`` (CPU, float32 or float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def release_buffers() -> int:
    """Free the extension's reusable big buffers (kept between calls); returns the bytes freed."""
    return int(_STATE["module"].release_buffers()) if _STATE["module"] is not None else 0


class CompiledLSTMFunction(torch.autograd.Function):
    """``(gx, h0, c0, w_hh, ln_hh, ln_cw, ln_cb, ln_ih, bias, mask, drop, reverse) -> (out, h_n, c_n)``.

    Shapes: gx (T, B, G) time-major and contiguous (biases included, or the raw ``x W_ihᵀ`` when
    ln_ih is given), h0/c0 (B, H), w_hh (G, H), ln_hh (G,) / ln_cw, ln_cb (H,) or all None,
    ln_ih (G,) and bias (G,) or None, mask (B, T) bool or None, drop (B, H) or None.
    Returns out (B, T, H) (zero at padded steps), h_n, c_n (B, H).
    """

    @staticmethod
    def forward(ctx, gx, h0, c0, w_hh, ln_hh, ln_cw, ln_cb, ln_ih, bias, mask, drop, reverse):
        ext = load_extension()
        B = gx.shape[1]
        w = w_hh.detach().contiguous()
        out, hs, cs, gates, tc, xh, rh, xc, rc, xi, ri = ext.lstm_forward(
            gx, h0, c0, w, _packed(w, B), mask, drop, ln_hh, ln_cw, ln_cb, ln_ih, bias, reverse, LN_EPS
        )
        ctx.save_for_backward(hs, cs, gates, tc, xh, rh, xc, rc, xi, ri, w, ln_hh, ln_cw, ln_ih, mask, drop)
        ctx.reverse, ctx.layer_norm = reverse, ln_hh is not None
        ctx.ln_ih, ctx.has_bias = ln_ih is not None, bias is not None
        T = gx.shape[0]
        return out, hs[T].clone(), cs[T].clone()

    @staticmethod
    @once_differentiable  # hand-written BPTT: first-order gradients only
    def backward(ctx, d_out, d_hn, d_cn):
        hs, cs, gates, tc, xh, rh, xc, rc, xi, ri, w, ln_hh, ln_cw, ln_ih, mask, drop = ctx.saved_tensors
        if not ctx.layer_norm:
            xh = rh = xc = rc = None  # saved as undefined tensors
        if not ctx.ln_ih:
            xi = ri = None
        B, H = hs.shape[1], hs.shape[2]
        d_hn = d_hn if d_hn is not None else hs.new_zeros(B, H)
        d_cn = d_cn if d_cn is not None else hs.new_zeros(B, H)
        d_out = d_out.contiguous() if d_out is not None else None
        dgx, dh0, dc0, dw, d_ln_hh, d_cw, d_cb, d_ln_ih, d_bias = load_extension().lstm_backward(
            d_out, d_hn, d_cn, hs, cs, gates, tc, xh, rh, xc, rc, w, _packed(w.t(), B), mask, drop,
            ln_hh, ln_cw, xi, ri, ln_ih, ctx.has_bias, ctx.reverse, _onednn(w),
        )  # fmt: skip
        if not ctx.layer_norm:
            d_ln_hh = d_cw = d_cb = None
        if not ctx.ln_ih:
            d_ln_ih = None
        if not ctx.has_bias:
            d_bias = None
        return dgx, dh0, dc0, dw, d_ln_hh, d_cw, d_cb, d_ln_ih, d_bias, None, None, None


def compiled_lstm(
    gx: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    mask: Tensor | None = None,
    drop: Tensor | None = None,
    reverse: bool = False,
    ln_hh: Tensor | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
    *,
    ln_ih: Tensor | None = None,
    bias: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run one LSTM direction in C++; call only when :func:`load_extension` returned a module.

    Args:
        gx: input part of the pre-activations, time-major (T, B, 4H), biases folded in; with
            ``ln_ih``, the raw ``x W_ihᵀ`` instead, and the loop adds ``γ_ih ⊙ LN(gx) + bias``
            (what the naive backend's input projection does, one pass fewer over (T, B, 4H)).
        h0, c0: initial state, each (B, H). w_hh: (4H, H).
        mask: (B, T) bool, True at real tokens. drop: (B, H) recurrent-dropout mask (scaled).
        reverse: run right to left.
        ln_hh: layer-norm gain on ``h W_hhᵀ`` (4H,); ln_c: (gain, bias) on c, each (H,).
            Both or neither.
        ln_ih: layer-norm gain on ``x W_ihᵀ`` (4H,), only together with ln_hh and ln_c.
        bias: (4H,) added after that layer norm (``b_ih + b_hh``); only with ln_ih.

    Returns:
        ``(out (B, T, H), (h_n, c_n))``; out is zero at padded steps.
    """
    if (ln_hh is None) != (ln_c is None):
        raise ValueError("compiled_lstm: pass both ln_hh and ln_c, or neither")
    if ln_ih is not None and ln_hh is None:
        raise ValueError("compiled_lstm: ln_ih needs ln_hh and ln_c too")
    if bias is not None and ln_ih is None:
        raise ValueError("compiled_lstm: bias only with ln_ih (else fold it into gx)")
    ln_cw, ln_cb = ln_c if ln_c is not None else (None, None)
    mask = mask.contiguous() if mask is not None else None
    drop = drop.contiguous() if drop is not None else None
    out, h_n, c_n = CompiledLSTMFunction.apply(
        gx.contiguous(), h0.contiguous(), c0.contiguous(), w_hh, ln_hh, ln_cw, ln_cb, ln_ih, bias, mask, drop,
        reverse,
    )  # fmt: skip
    return out, (h_n, c_n)
