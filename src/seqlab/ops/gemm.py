"""Matrix products through oneDNN on CPU, with the gradients (float32).

Shape legend: N rows (all leading dimensions of x flattened) · I input features · O output features.

torch's float32 ``mm`` / ``F.linear`` on CPU go to MKL; on AMD CPUs MKL's generic kernels reach
about half of oneDNN's speed (on the 2-core EPYC of BENCHMARKS.md ~190 vs ~420 GFLOP/s for
square products: ``seqlab bench`` writes both in ``peak.json``; a Transformer LM trains 1.5x faster
on oneDNN: ``seqlab bench --cases model-transformer-onednn``), while torch's own LSTM
kernel is oneDNN. :func:`linear` is ``F.linear`` whose forward and both gradients run in oneDNN
(``torch.ops.mkldnn._linear_pointwise``, the weight prepacked for the batch size):

    y = x Wᵀ + b          δx = δy W          δW = δyᵀ x          δb = Σ_n δy

float64, other devices, or a torch build without the op fall back to ``F.linear`` (the same
math; results differ by float rounding only). First-order gradients only.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def onednn(t: Tensor) -> bool:
    """Whether GEMMs on tensors like ``t`` go through oneDNN (float32 CPU with oneDNN ops)."""
    return (
        t.dtype == torch.float32
        and t.device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def packed(weight: Tensor, batch_size: int) -> Tensor | None:
    """oneDNN's prepacked layout of a linear weight (x ↦ x weightᵀ) for float32 CPU, else None."""
    if not onednn(weight):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), batch_size)
    except (RuntimeError, AttributeError):  # a build without the op: the extension uses mm
        return None


def mm_onednn(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` (2-D) through oneDNN: its linear reads ``bᵀ`` as the weight, any strides."""
    return torch.ops.mkldnn._linear_pointwise(a.contiguous(), b.t(), None, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    """``x wᵀ (+ b)`` whose forward and both gradients run in oneDNN (float32 CPU only)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        w = packed(weight, x2.shape[0])
        out = torch.ops.mkldnn._linear_pointwise(x2, weight if w is None else w, bias, "none", [], "")
        ctx.save_for_backward(x2, weight)
        ctx.has_bias = bias is not None
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out):
        x2, weight = ctx.saved_tensors
        # contiguous: a broadcast gradient (stride 0, e.g. from .sum()) sends oneDNN to a
        # reference kernel orders of magnitude slower than its GEMM
        d2 = d_out.reshape(-1, d_out.shape[-1]).contiguous()
        dx = dw = db = None
        if ctx.needs_input_grad[0]:  # δx = δy w, with w prepacked as a linear weight
            w_t = packed(weight.t(), d2.shape[0])
            dx = torch.ops.mkldnn._linear_pointwise(d2, weight.t() if w_t is None else w_t,
                                                    None, "none", [], "")  # fmt: skip
            dx = dx.view(*d_out.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[1]:  # δw = δyᵀ x: the operand with fewer columns is the one
            # copied transposed (as the product's input); the other is read in place as its weight
            dw = mm_onednn(d2.t(), x2) if d2.shape[1] < x2.shape[1] else mm_onednn(x2.t(), d2).t()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = d2.sum(0)
        return dx, dw, db


# oneDNN only pays for its per-call weight reorder on big enough products: at least this many
# rows (a decoding step has one) and weight entries (below it, e.g. a Transformer LM of width 56,
# oneDNN was a few % slower than F.linear; with these limits ``seqlab bench --cases
# model-transformer-onednn --d-model 56`` gives 1.00x, ``--d-model 128`` 1.18x)
MIN_ROWS = 1024
MIN_WEIGHT = 16384


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``; float32 on CPU with ≥ ``MIN_ROWS`` rows and ≥
    ``MIN_WEIGHT`` weight entries runs forward and backward in oneDNN.

    torch's float32 ``mm`` goes to MKL, whose kernels on AMD CPUs reach about half of oneDNN's
    speed on the LSTM's big projections. float64, autocast regions (bf16 belongs to autocast's
    own kernels), small products (a decoding step: prepacking the weight would dominate) and
    anything oneDNN cannot take are F.linear.
    """
    fits = x.dtype == weight.dtype and (bias is None or bias.dtype == x.dtype)
    rows = x.numel() // max(x.shape[-1], 1)
    big = rows >= MIN_ROWS and weight.numel() >= MIN_WEIGHT
    if not (fits and big and onednn(x) and not torch.is_autocast_enabled("cpu")):
        return torch.nn.functional.linear(x, weight, bias)
    return _OneDNNLinear.apply(x, weight, bias)
