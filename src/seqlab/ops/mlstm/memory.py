"""The chunkwise mLSTM's matrix memory, carried from chunk to chunk, with a hand-written backward.

Shape legend: N chunks · M = B·H (batch × heads) · L chunk length · K key dim · V value dim.

Per chunk c, given the scaled queries q̃_c (L, K), the weighted keys k̃_c (L, K), the values
v_c (L, V), the memory's decay d_c over the chunk and the normalised intra-chunk weights P_c
(L, L), all from :func:`seqlab.ops.mlstm.chunkwise._chunk_scales`:

    h_c     = q̃_c C_c + P_c v_c                  (the chunk's outputs, L × V)
    C_{c+1} = d_c C_c + k̃_cᵀ v_c                 (the memory after the chunk, K × V)

The backward runs the recurrence in reverse with G_c = ∂ℓ/∂C_c, starting from G_N = the
gradient of the final memory:

    δq̃_c = δh_c C_cᵀ       δP_c = δh_c v_cᵀ       δv_c = P_cᵀ δh_c + k̃_c G_{c+1}
    δk̃_c = v_c G_{c+1}ᵀ     δd_c = ⟨G_{c+1}, C_c⟩    G_c = d_c G_{c+1} + q̃_cᵀ δh_c     δC_0 = G_0

Autograd over the same loop also spends time on copies (unbinding the inputs per chunk, stacking
the gradients back) and on many small products. Here only what depends on the carried C or G
runs chunk by chunk (one product per chunk forward, three backward); the other products run once
over all N·M blocks, and every product writes in place into a preallocated output. With
``onednn`` they run in oneDNN's matmul (:func:`seqlab.ops.compiled_layers.bmm_into`): on the
CPUs where torch's float32 bmm reaches half of oneDNN's speed that is most of the gain
(``seqlab bench --cases mlstm-block mlstm-block-compiled``). Memory: when a gradient is needed
the N memories C_c (N·M·K·V numbers) are kept for the backward, as autograd kept them; without
one (inference, a prompt's prefill) the loop holds one C at a time. Under autocast the products
run in the memory's dtype (the state stays float32). Tested against the autograd loop and the
step recurrence (outputs, final state and every gradient).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

# out = a b (+ out when accumulate), a (M, i, j), b (M, j, k), out (M, i, k) contiguous
Products = Callable[..., None]


def torch_bmm_into(a: Tensor, b: Tensor, out: Tensor, accumulate: bool = False) -> None:
    """``out = a b`` (or ``out += a b``) with torch's bmm."""
    if accumulate:
        out.baddbmm_(a, b)
    else:
        torch.bmm(a, b, out=out)


def chunk_memory(
    q_u: Tensor, k_w: Tensor, v: Tensor, decay: Tensor, P: Tensor, C: Tensor, onednn: bool = False
) -> tuple[Tensor, Tensor]:
    """q̃, k̃ (N, M, L, K), v (N, M, L, V), decay (N, M), P (N, M, L, L), C (M, K, V) ->
    (h (N, M, L, V), the memory after the last chunk (M, K, V)); see the module docstring."""
    bmm = torch_bmm_into
    if onednn and onednn_ready(C):
        from seqlab.ops.compiled_layers import bmm_into as bmm
    inputs = (q_u, k_w, v, decay, P, C)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return _ChunkMemory.apply(*inputs, bmm)
    with torch.no_grad():
        return _scan_without_grad(*inputs, bmm)


def onednn_ready(like: Tensor) -> bool:
    """Whether oneDNN's batched product (:func:`seqlab.ops.compiled_layers.bmm_into`) can take
    tensors like ``like`` here: float32 on CPU, outside autocast, with the extension built and
    torch exporting the product (builds the extension on first call)."""
    if like.device.type != "cpu" or like.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
        return False
    from seqlab.ops.compiled_layers import onednn_bmm_available

    return onednn_bmm_available()


def _scan_without_grad(q_u, k_w, v, decay, P, C, bmm: Products) -> tuple[Tensor, Tensor]:
    """The forward of :class:`_ChunkMemory` holding one memory at a time (nothing to keep)."""
    q_u, k_w, v, decay, P = (t.to(C.dtype).contiguous() for t in (q_u, k_w, v, decay, P))
    with torch.autocast(C.device.type, enabled=False):
        h = v.new_empty(*q_u.shape[:3], v.shape[-1])  # (N, M, L, V)
        C = C.contiguous()
        buffers = (torch.empty_like(C), torch.empty_like(C))  # alternate: the caller's C stays as is
        for c in range(q_u.shape[0]):
            bmm(q_u[c], C, h[c])
            bmm(P[c], v[c], h[c], accumulate=True)
            C_next = buffers[c % 2]
            torch.mul(C, decay[c, :, None, None], out=C_next)
            bmm(k_w[c].transpose(1, 2), v[c], C_next, accumulate=True)
            C = C_next
    return h, C


def _flat(t: Tensor) -> Tensor:
    """(N, M, ·, ·) -> (N·M, ·, ·): one product over every chunk."""
    return t.flatten(0, 1)


class _ChunkMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q_u, k_w, v, decay, P, C, bmm: Products):
        dtype = C.dtype
        ctx.dtypes = [t.dtype for t in (q_u, k_w, v, decay, P)]
        q_u, k_w, v, decay, P = (t.to(dtype).contiguous() for t in (q_u, k_w, v, decay, P))
        N, M, L, _ = q_u.shape
        with torch.autocast(C.device.type, enabled=False):
            Cs = C.new_empty(N, *C.shape)  # (N, M, K, V) the memory before each chunk
            Cs[0] = C
            for c in range(N):
                C_next = Cs[c + 1] if c + 1 < N else torch.empty_like(C)
                torch.mul(Cs[c], decay[c, :, None, None], out=C_next)
                bmm(k_w[c].transpose(1, 2), v[c], C_next, accumulate=True)
            h = v.new_empty(N, M, L, v.shape[-1])
            bmm(_flat(q_u), _flat(Cs), _flat(h))
            bmm(_flat(P), _flat(v), _flat(h), accumulate=True)
        ctx.save_for_backward(q_u, k_w, v, decay, P, Cs)
        ctx.bmm = bmm
        return h, C_next

    @staticmethod
    @once_differentiable
    def backward(ctx, d_h, d_C):
        q_u, k_w, v, decay, P, Cs = ctx.saved_tensors
        bmm = ctx.bmm
        N = Cs.shape[0]
        d_h = d_h.to(Cs.dtype).contiguous()
        G = torch.zeros_like(Cs[0]) if d_C is None else d_C.to(Cs.dtype).contiguous().clone()  # G_{c+1}
        G_prev = torch.empty_like(G)
        d_qu, d_kw, d_v, d_P = (torch.empty_like(t) for t in (q_u, k_w, v, P))
        d_decay = torch.empty_like(decay)
        bmm(_flat(d_h), _flat(Cs).transpose(1, 2), _flat(d_qu))
        bmm(_flat(d_h), _flat(v).transpose(1, 2), _flat(d_P))
        bmm(_flat(P).transpose(1, 2), _flat(d_h), _flat(d_v))
        for c in range(N - 1, -1, -1):
            bmm(k_w[c], G, d_v[c], accumulate=True)
            bmm(v[c], G.transpose(1, 2), d_kw[c])
            torch.sum(G * Cs[c], (1, 2), out=d_decay[c])
            torch.mul(G, decay[c, :, None, None], out=G_prev)
            bmm(q_u[c].transpose(1, 2), d_h[c], G_prev, accumulate=True)
            G, G_prev = G_prev, G
        grads = (g.to(t) for g, t in zip((d_qu, d_kw, d_v, d_decay, d_P), ctx.dtypes, strict=True))
        return *grads, G, None
