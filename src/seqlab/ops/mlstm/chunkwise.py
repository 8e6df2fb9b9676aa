"""The mLSTM recurrence in chunks: linear in T, parallel inside each chunk of L steps.

Shape legend: B batch · H heads · T time · N chunks · L chunk length · K key dim · V value dim.

Within chunk c (positions 1..L), with b_t = Σ_{s≤t} log f_s (cumulative log forget inside the
chunk), g = b_L (the chunk's total decay) and (C, n, m) the memory before the chunk:

    inter-chunk:  a_j = g − b_j + ĩ_j                    (log weight of step j at the chunk end)
                  m⁺ = max(g + m, max_j a_j)
                  C⁺ = e^{g + m − m⁺} C + Σ_j e^{a_j − m⁺} k_j v_jᵀ,   n⁺ likewise with k_j
    intra-chunk:  D_tj = b_t − b_j + ĩ_j  (j ≤ t, else −∞)       (log weight of step j at t)
                  m_t = max(b_t + m, max_j D_tj)                  (= the step loop's m_t)
                  num_t = e^{b_t + m − m_t} Cᵀ q_t + Σ_j e^{D_tj − m_t} (q_t·k_j) v_j
                  den_t = e^{b_t + m − m_t} nᵀ q_t + Σ_j e^{D_tj − m_t} (q_t·k_j)
                  h̃_t = num_t / (max(|den_t|, e^{−m_t}) + ε)

(k scaled by 1/√K as in the step.) Everything but the matrix memory is formed for all chunks at
once (:func:`_chunk_scales`: stabilisers and n by short loops over N on small tensors, then the
intra-chunk weights already divided by the normaliser); one loop over the chunks then carries C
with two products per chunk and reads it with the scaled queries (:func:`_outputs`), so no
(N, K, V) stack of memories and no division of the (T, V) outputs is ever written. Cost
O(T·L·K + T·K·V) time and O(T·(L + K + V) + N·K·V) memory (autograd keeps each chunk's C):
linear in T for fixed L. With one chunk of
length T this is the stabilised parallel (D-matrix) form of the paper's appendix, quadratic in
T — :func:`mlstm_parallel`.
T need not divide by L: the tail is padded with steps that leave the memory unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ConfigError
from seqlab.ops.mlstm.recurrent import EPS, MLSTMCellState


def mlstm_chunkwise(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: MLSTMCellState,
    chunk_size: int = 64,
    eps: float = EPS,
) -> tuple[Tensor, MLSTMCellState]:
    """q, k (B, H, T, K), v (B, H, T, V), i_pre, log_f (B, H, T) -> (h̃ (B, H, T, V), state)."""
    if chunk_size < 1:
        raise ConfigError(f"mLSTM chunk_size must be a positive int, got {chunk_size}")
    T, K = q.shape[2:]
    L = min(chunk_size, T)
    N = math.ceil(T / L)
    # 1. pad the tail with no-op steps (log f = 0, ĩ = −∞) and split into chunks
    pad = N * L - T
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        i_pre = F.pad(i_pre, (0, pad), value=-math.inf)
        log_f = F.pad(log_f, (0, pad))
    q, k, v = (t.unflatten(2, (N, L)) for t in (q, k, v))  # (B, H, N, L, ·)
    i_pre, log_f = i_pre.unflatten(2, (N, L)), log_f.unflatten(2, (N, L))  # (B, H, N, L)
    b = log_f.cumsum(-1)  # (B, H, N, L)
    # 2. stabilisers and normalisers of every chunk (everything but the matrix memory)
    chunks = _chunk_scales(q, k, i_pre, b, state, K**-0.5, eps)
    # 3. the matrix memory, chunk by chunk, and the outputs
    h, C = _outputs(q, v, chunks, state.C)  # (B, H, N, L, V), (B, H, K, V)
    return h.flatten(2, 3)[:, :, :T], MLSTMCellState(C, chunks.n_final, chunks.m_final)


def mlstm_parallel(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, state: MLSTMCellState, eps: float = EPS
) -> tuple[Tensor, MLSTMCellState]:
    """The quadratic parallel form: :func:`mlstm_chunkwise` with a single chunk of length T."""
    return mlstm_chunkwise(q, k, v, i_pre, log_f, state, chunk_size=max(q.shape[2], 1), eps=eps)


class _Chunks(NamedTuple):
    """What the chunks need besides the matrix memory: P (B, H, N, L, L) the normalised
    intra-chunk weights, u (B, H, N, L) the normalised weight of the memory at each step,
    k̃ (B, H, N, L, K) the keys as they enter the memory after their chunk, decay (B, H, N)
    of the memory over each chunk, and the final n, m."""

    P: Tensor
    u: Tensor
    k_w: Tensor
    decay: Tensor
    n_final: Tensor
    m_final: Tensor


def _chunk_scales(
    q: Tensor, k: Tensor, i_pre: Tensor, b: Tensor, state: MLSTMCellState, scale: float, eps: float
) -> _Chunks:
    """Stabilisers, the normaliser recurrence and the intra-chunk weights for all chunks.

    With a_j = g − b_j + ĩ_j and m_c the stabiliser before chunk c (m_{c+1} = max(g_c + m_c,
    max_j a_cj), no gradient, as in the step), the memory after chunk c is
    C_{c+1} = e^{g_c + m_c − m_{c+1}} C_c + Σ_j k̃_j v_jᵀ with k̃_j = e^{a_j − m_{c+1}} k_j / √K
    (n likewise with k̃_j); then h_t = P_t v + u_t C_cᵀ q_t with P = (q kᵀ/√K) ⊙ e^{D − m_t} / den
    and u = e^{b_t + m_c − m_t} / den: the division by den is done on the (L, L) weights and the
    (L,) memory weights instead of on the (L, V) outputs."""
    n, m = state.n, state.m
    L = q.shape[3]
    g = b[..., -1]  # (B, H, N) total log decay of each chunk
    a = g[..., None] - b + i_pre  # (B, H, N, L)
    # 1. stabilisers: a loop over N on (B, H) numbers
    a_max, g_d = a.amax(-1).detach(), g.detach()  # (B, H, N)
    ms, m_run = [], m.detach()
    for g_c, a_c in zip(g_d.unbind(-1), a_max.unbind(-1), strict=True):
        m_run = torch.maximum(g_c + m_run, a_c)  # (B, H)
        ms.append(m_run)
    m_next = torch.stack(ms, -1)  # (B, H, N) after each chunk
    m_prev = torch.cat([m[..., None], m_next[..., :-1]], -1)  # (B, H, N) before each chunk
    decay = torch.exp(g + m_prev - m_next)  # (B, H, N)
    k_w = k * (torch.exp(a - m_next[..., None]) * scale)[..., None]  # (B, H, N, L, K): 0 if padded
    # 2. the normaliser before each chunk (a loop over N on (B, H, K))
    n_add, ns = k_w.sum(-2), []  # (B, H, N, K)
    for d_c, n_c in zip(decay.unbind(-1), n_add.unbind(2), strict=True):
        ns.append(n)
        n = d_c[..., None] * n + n_c  # (B, H, K)
    qn = (q @ torch.stack(ns, 2)[..., None])[..., 0]  # (B, H, N, L)
    # 3. intra-chunk log weights D_tj = b_t − b_j + ĩ_j (j ≤ t) and the stabiliser m_t
    D = b[..., :, None] - b[..., None, :] + i_pre[..., None, :]  # (B, H, N, L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    D = D.masked_fill(~causal, -math.inf)
    inter = b + m_prev[..., None]  # (B, H, N, L)
    m_t = torch.maximum(inter, D.amax(-1)).detach()  # (B, H, N, L)
    # 4. weights, normaliser (the lower bound e^{−m} is the stabilised form of 1)
    S = (q @ k.transpose(-1, -2)).mul_(scale) * torch.exp(D - m_t[..., None])  # (B, H, N, L, L)
    w_inter = torch.exp(inter - m_t)  # (B, H, N, L)
    den = S.sum(-1) + w_inter * qn
    den = torch.maximum(den.abs(), torch.exp(-m_t)) + eps  # (B, H, N, L)
    return _Chunks(S / den[..., None], w_inter / den, k_w, decay, n, m_next[..., -1])


def _outputs(q: Tensor, v: Tensor, chunks: _Chunks, C: Tensor) -> tuple[Tensor, Tensor]:
    """h = P v + (u ⊙ q) C_c for every chunk, carrying C (unbind once: indexing per chunk would
    make each backward step write a full-size gradient, O(N²) memory traffic)."""
    q_u = q * chunks.u[..., None]  # (B, H, N, L, K)
    from_memory = []
    for qu_c, kw_c, v_c, d_c in zip(
        q_u.unbind(2), chunks.k_w.unbind(2), v.unbind(2), chunks.decay.unbind(-1), strict=True
    ):
        from_memory.append(qu_c @ C)  # (B, H, L, V)
        C = d_c[..., None, None] * C + kw_c.transpose(-1, -2) @ v_c  # (B, H, K, V)
    inter = torch.stack(from_memory, 2)  # (B, H, N, L, V)
    return torch.baddbmm(inter.flatten(0, 2), chunks.P.flatten(0, 2), v.flatten(0, 2)).view_as(inter), C
