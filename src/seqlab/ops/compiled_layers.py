"""The xLSTM blocks' small layers as one-pass C++ loops (``csrc/``), with gradients:
the head-wise linear map, the causal conv and the mLSTM's gated output norm (:func:`gated_norm`);
and a batched matrix product through oneDNN for the chunkwise mLSTM (:func:`bmm_into`).

Shape legend: N rows · NB blocks · I / O in / out features per block · B batch · T time ·
C channels · k kernel size.

Head-wise (block-diagonal) linear map, :class:`seqlab.layers.HeadwiseLinear`::

    y[n, h, o] = Σ_i W[h, o, i] x[n, h, i]      δx[n, h, i] = Σ_o W[h, o, i] δy[n, h, o]
    δW[h, o, i] = Σ_n δy[n, h, o] x[n, h, i]

Causal depthwise convolution over u = [state; x] (the k − 1 inputs before x, then x),
:class:`seqlab.layers.CausalConv1d`::

    y[b, t, c] = β_c + Σ_j w[c, j] u[b, t + j, c]     δu[b, s, c] = Σ_j w[c, j] δy[b, s − j, c]
    δw[c, j] = Σ_{b,t} δy[b, t, c] u[b, t + j, c]     δβ_c = Σ_{b,t} δy[b, t, c]

The mLSTM layer's output, per row and head g of V features (:func:`gated_norm`)::

    x̂ = (h − μ_g) r_g,  r_g = (σ_g² + ε)^{−1/2}      a = γ x̂ + s c      out = a silu(z)
    δa = δout silu(z)   δz = δout a σ(z)(1 + z(1 − σ(z)))   δc = s δa   δγ = Σ_n δa x̂   δs = Σ_n δa c
    δh = r_g (γ δa − mean_g(γ δa) − x̂ mean_g(γ δa x̂))

torch runs the first as a batched matmul of tiny blocks between two layout copies, the second as
a grouped convolution over transposed copies and the third as five passes (norm, products, SiLU);
all are a few operations per element read, so memory traffic is the cost, and one pass each moves
much less of it. The layers use these when built with ``compiled=True`` (the mLSTM / sLSTM
``backend="compiled"``; the mLSTM mixer calls :func:`gated_norm` and passes ``onednn`` to its
chunkwise op), on CPU in float32 / float64, and fall back to their torch code (one warning) when
the extension cannot be built (:mod:`seqlab.ops.extension`). With all of it an mLSTM block at
B=8, T=1,024, D=256 trains about 1.6x faster than with the default backend when freed memory is
kept (``seqlab train``'s CPU default), less under glibc's defaults (``seqlab bench --cases
mlstm-block mlstm-block-compiled [--malloc keep]``, BENCHMARKS.md). First-order gradients only; tested
against the torch code.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from seqlab.ops.extension import LazyExtension, build

_CSRC = Path(__file__).with_name("csrc")
_SOURCES = [_CSRC / name for name in ("layers.cpp", "mlstm_output.cpp", "onednn_bmm.cpp")]
_HEADERS = [_CSRC / "layers.h", _CSRC / "fast_math.h"]
_EXTENSION = LazyExtension(lambda: build("seqlab_layers", _SOURCES, _HEADERS), "compiled xLSTM layers")


def load_extension() -> ModuleType | None:
    """The compiled module, built on first call; None (after one warning) if it cannot be built."""
    return _EXTENSION.load()


def available(x: Tensor) -> bool:
    """Whether the compiled layers can take tensors like ``x`` here (CPU float32/64, built)."""
    return (
        x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and load_extension() is not None
    )


class _Headwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2: Tensor, weight: Tensor) -> Tensor:  # x2 (N, NB·I), weight (NB, O, I)
        w = weight.detach().contiguous()
        ctx.save_for_backward(x2, w)
        return load_extension().headwise_forward(x2, w)  # (N, NB·O)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_y: Tensor):
        x2, w = ctx.saved_tensors
        d_y = d_y.contiguous()
        ext = load_extension()
        d_x = ext.headwise_forward(d_y, w.transpose(1, 2).contiguous()) if ctx.needs_input_grad[0] else None
        d_w = ext.headwise_weight_backward(d_y, x2, w.shape[0]) if ctx.needs_input_grad[1] else None
        return d_x, d_w


def headwise_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., NB·I), weight (NB, O, I), bias (NB·O,) or None -> (..., NB·O)."""
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    y = _Headwise.apply(x2, weight).view(*x.shape[:-1], -1)
    return y if bias is None else y + bias


class _CausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, state: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        w = weight.detach().contiguous()  # (C, k)
        ctx.save_for_backward(x, state, w)
        ctx.has_bias = bias is not None
        return load_extension().causal_conv_forward(x, state, w, None if bias is None else bias.detach())

    @staticmethod
    @once_differentiable
    def backward(ctx, d_y: Tensor):
        x, state, w = ctx.saved_tensors
        grads = load_extension().causal_conv_backward(d_y.contiguous(), x, state, w, ctx.has_bias)
        return grads[0], grads[1], grads[2], grads[3] if ctx.has_bias else None


def causal_conv(x: Tensor, state: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (B, T, C), state (B, k − 1, C), weight (C, k), bias (C,) or None -> y (B, T, C)."""
    return _CausalConv.apply(x.contiguous(), state.contiguous(), weight, bias)


class _GatedNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, skip, c, z, heads: int, eps: float):
        out, mean, rstd = load_extension().gated_norm_forward(h, weight, skip, c, z, heads, eps)
        ctx.save_for_backward(h, weight, skip, c, z, mean, rstd)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        grads = load_extension().gated_norm_backward(d_out.contiguous(), *ctx.saved_tensors)
        return *grads, None, None


def gated_norm(
    h: Tensor, weight: Tensor, skip: Tensor, c: Tensor, z: Tensor, heads: int, eps: float
) -> Tensor:
    """The mLSTM layer's output in one pass: ``(LN_heads(h) ⊙ γ + s ⊙ c) ⊙ silu(z)``.

    h, c, z (..., I) with I = heads·V; the layer norm (no bias) is over each head's V features,
    as :class:`seqlab.layers.MultiHeadNorm` computes it; weight γ and skip s (I,). z may be a
    strided view (e.g. a half of the up-projection's output): it is read in place. CPU tensors
    of one floating dtype."""
    I = h.shape[-1]
    z2 = z.reshape(-1, I)
    if z2.stride(-1) != 1:
        z2 = z2.contiguous()
    h2, c2 = h.reshape(-1, I).contiguous(), c.reshape(-1, I).contiguous()
    w, s = weight.contiguous(), skip.contiguous()
    return _GatedNorm.apply(h2, w, s, c2, z2, heads, eps).view(h.shape)


def onednn_bmm_available() -> bool:
    """Whether :func:`bmm_into` runs oneDNN here (the extension built, torch exporting its
    oneDNN matmul, oneDNN enabled)."""
    ext = load_extension()
    return ext is not None and ext.has_onednn_bmm()


def bmm_into(a: Tensor, b: Tensor, out: Tensor, accumulate: bool = False) -> None:
    """``out = a b`` (``out += a b`` when ``accumulate``) for a (M, i, j), b (M, j, k) and a
    contiguous out (M, i, k): oneDNN's matmul for float32 CPU tensors (a and b contiguous or
    transposed in their last two dimensions, else copied), torch's bmm otherwise (other dtypes
    or devices, no extension). No autograd."""
    ext = load_extension()
    if ext is None:
        from seqlab.ops.mlstm.memory import torch_bmm_into

        torch_bmm_into(a, b, out, accumulate)
    else:
        ext.bmm_onednn(a, b, out, accumulate)


class _BMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        out = a.new_empty(a.shape[0], a.shape[1], b.shape[2])
        bmm_into(a, b, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor):
        a, b = ctx.saved_tensors
        d_out = d_out.contiguous()
        d_a = d_b = None
        if ctx.needs_input_grad[0]:  # δa = δout bᵀ
            d_a = a.new_empty(a.shape)
            bmm_into(d_out, b.transpose(1, 2), d_a)
        if ctx.needs_input_grad[1]:  # δb = aᵀ δout
            d_b = b.new_empty(b.shape)
            bmm_into(a.transpose(1, 2), d_out, d_b)
        return d_a, d_b


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """``torch.bmm(a, b)`` (a (M, i, j), b (M, j, k)) whose forward and both gradients run in
    :func:`bmm_into`; float32 CPU tensors with the extension built (else use torch.bmm)."""
    return _BMM.apply(a, b)
