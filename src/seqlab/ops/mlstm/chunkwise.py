"""The mLSTM recurrence in chunks: linear in T, parallel inside each chunk of L steps.

Shape legend: B batch · H heads · T time · N chunks · L chunk length · K key dim · V value dim ·
M = B·H.

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

(k scaled by 1/√K as in the step.) The inputs are laid out chunk-major, (N, M, L, ·), so that
each chunk is one contiguous block. Everything but the matrix memory is formed for all chunks at
once (:func:`_chunk_scales`: stabilisers and n by short loops over N on small tensors, then the
intra-chunk weights already divided by the normaliser); one loop over the chunks then carries C
and reads it with the scaled queries, with a hand-written backward
(:func:`seqlab.ops.mlstm.memory.chunk_memory`; ``onednn`` runs its products in oneDNN), so no
division of the (T, V) outputs is ever written. Cost O(T·L·K + T·K·V) time and
O(T·(L + K + V) + N·K·V) memory (the backward keeps each chunk's C): linear in T for fixed L.
With one chunk of length T this is the stabilised parallel (D-matrix) form of the paper's
appendix, quadratic in T — :func:`mlstm_parallel`. T need not divide by L: the tail is padded
with steps that leave the memory unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ConfigError
from seqlab.ops.mlstm.memory import chunk_memory, onednn_ready
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
    onednn: bool = False,
) -> tuple[Tensor, MLSTMCellState]:
    """q, k (B, H, T, K), v (B, H, T, V), i_pre, log_f (B, H, T) -> (h̃ (B, H, T, V), state).

    ``onednn``: the memory's products through oneDNN's matmul where the compiled extension is
    built (:mod:`seqlab.ops.compiled_layers`; the mLSTM's ``backend="compiled"``), else torch's."""
    if chunk_size < 1:
        raise ConfigError(f"mLSTM chunk_size must be a positive int, got {chunk_size}")
    B, H, T, K = q.shape
    L = min(chunk_size, T)
    N = math.ceil(T / L)
    # 1. pad the tail with no-op steps (log f = 0, ĩ = −∞); chunk-major layout (one copy each)
    pad = N * L - T
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        i_pre = F.pad(i_pre, (0, pad), value=-math.inf)
        log_f = F.pad(log_f, (0, pad))
    q, k, v = (t.unflatten(2, (N, L)).permute(2, 0, 1, 3, 4).reshape(N, B * H, L, -1) for t in (q, k, v))
    i_pre, log_f = (t.unflatten(2, (N, L)).permute(2, 0, 1, 3).reshape(N, B * H, L) for t in (i_pre, log_f))
    b = log_f.cumsum(-1)  # (N, M, L)
    # 2. stabilisers and normalisers of every chunk (everything but the matrix memory)
    cell = MLSTMCellState(*(t.flatten(0, 1) for t in state))  # (M, K, V), (M, K), (M,)
    matmul = _onednn_matmul if onednn and onednn_ready(q) else torch.matmul
    chunks = _chunk_scales(q, k, i_pre, b, cell, K**-0.5, eps, matmul)
    # 3. the matrix memory, chunk by chunk, and the outputs
    q_u = q * chunks.u[..., None]  # (N, M, L, K)
    h, C = chunk_memory(q_u, chunks.k_w, v, chunks.decay, chunks.P, cell.C, onednn)  # (N, M, L, V)
    # one copy to (B, T, H, V), the layout the mixer reads on (its transpose back is a view)
    h = h.view(N, B, H, L, -1).permute(1, 0, 3, 2, 4).reshape(B, N * L, H, -1)[:, :T].transpose(1, 2)
    final = (C, chunks.n_final, chunks.m_final)
    return h, MLSTMCellState(*(t.unflatten(0, (B, H)) for t in final))


def mlstm_parallel(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: MLSTMCellState,
    eps: float = EPS,
    onednn: bool = False,
) -> tuple[Tensor, MLSTMCellState]:
    """The quadratic parallel form: :func:`mlstm_chunkwise` with a single chunk of length T."""
    return mlstm_chunkwise(q, k, v, i_pre, log_f, state, max(q.shape[2], 1), eps, onednn)


class _Chunks(NamedTuple):
    """What the chunks need besides the matrix memory: P (N, M, L, L) the normalised
    intra-chunk weights, u (N, M, L) the normalised weight of the memory at each step,
    k̃ (N, M, L, K) the keys as they enter the memory after their chunk, decay (N, M)
    of the memory over each chunk, and the final n, m."""

    P: Tensor
    u: Tensor
    k_w: Tensor
    decay: Tensor
    n_final: Tensor
    m_final: Tensor


def _onednn_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` for (N, M, ·, ·) tensors through oneDNN, with gradients."""
    from seqlab.ops.compiled_layers import bmm

    return bmm(a.flatten(0, 1), b.flatten(0, 1)).unflatten(0, a.shape[:2])


def _chunk_scales(
    q: Tensor,
    k: Tensor,
    i_pre: Tensor,
    b: Tensor,
    state: MLSTMCellState,
    scale: float,
    eps: float,
    matmul=torch.matmul,
) -> _Chunks:
    """Stabilisers, the normaliser recurrence and the intra-chunk weights for all chunks
    (q, k (N, M, L, K), i_pre, b (N, M, L), state (M, ·)).

    With a_j = g − b_j + ĩ_j and m_c the stabiliser before chunk c (m_{c+1} = max(g_c + m_c,
    max_j a_cj), no gradient, as in the step), the memory after chunk c is
    C_{c+1} = e^{g_c + m_c − m_{c+1}} C_c + Σ_j k̃_j v_jᵀ with k̃_j = e^{a_j − m_{c+1}} k_j / √K
    (n likewise with k̃_j); then h_t = P_t v + u_t C_cᵀ q_t with P = (q kᵀ/√K) ⊙ e^{D − m_t} / den
    and u = e^{b_t + m_c − m_t} / den: the division by den is done on the (L, L) weights and the
    (L,) memory weights instead of on the (L, V) outputs."""
    n, m = state.n, state.m
    L = q.shape[2]
    g = b[..., -1]  # (N, M) total log decay of each chunk
    a = g[..., None] - b + i_pre  # (N, M, L)
    # 1. stabilisers: a loop over N on (M,) numbers
    a_max, g_d = a.amax(-1).detach(), g.detach()  # (N, M)
    ms, m_run = [], m.detach()
    for g_c, a_c in zip(g_d, a_max, strict=True):
        m_run = torch.maximum(g_c + m_run, a_c)  # (M,)
        ms.append(m_run)
    m_next = torch.stack(ms)  # (N, M) after each chunk
    m_prev = torch.cat([m[None], m_next[:-1]])  # (N, M) before each chunk
    decay = torch.exp(g + m_prev - m_next)  # (N, M)
    k_w = k * (torch.exp(a - m_next[..., None]) * scale)[..., None]  # (N, M, L, K): 0 if padded
    # 2. the normaliser before each chunk (a loop over N on (M, K))
    n_add, ns = k_w.sum(-2), []  # (N, M, K)
    for d_c, n_c in zip(decay, n_add, strict=True):
        ns.append(n)
        n = d_c[..., None] * n + n_c  # (M, K)
    qn = (q @ torch.stack(ns)[..., None])[..., 0]  # (N, M, L)
    # 3. intra-chunk log weights D_tj = b_t − b_j + ĩ_j (j ≤ t) and the stabiliser m_t
    D = b[..., :, None] - b[..., None, :] + i_pre[..., None, :]  # (N, M, L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    D = D.masked_fill(~causal, -math.inf)
    inter = b + m_prev[..., None]  # (N, M, L)
    m_t = torch.maximum(inter, D.amax(-1)).detach()  # (N, M, L)
    # 4. weights, normaliser (the lower bound e^{−m} is the stabilised form of 1)
    S = matmul(q, k.transpose(-1, -2)).mul_(scale) * torch.exp(D - m_t[..., None])  # (N, M, L, L)
    w_inter = torch.exp(inter - m_t)  # (N, M, L)
    den = S.sum(-1) + w_inter * qn
    den = torch.maximum(den.abs(), torch.exp(-m_t)) + eps  # (N, M, L)
    return _Chunks(S / den[..., None], w_inter / den, k_w, decay, n, m_next[-1])
