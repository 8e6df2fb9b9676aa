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

(k scaled by 1/√K as in the step.) The states before each chunk come from a short loop over the
N chunks (each chunk's own sum is formed for all chunks in one batched product, with its own
stabiliser); the intra-chunk part then runs for all chunks at once. Cost O(T·L·K + T·K·V) time
and O(T·L + N·K·V) memory: linear in T for fixed L. With one chunk of length T this is the
stabilised parallel (D-matrix) form of the paper's appendix, quadratic in T — :func:`mlstm_parallel`.
T need not divide by L: the tail is padded with steps that leave the memory unchanged.
"""

from __future__ import annotations

import math

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
    k = k * K**-0.5
    i_pre, log_f = i_pre.unflatten(2, (N, L)), log_f.unflatten(2, (N, L))  # (B, H, N, L)
    b = log_f.cumsum(-1)  # (B, H, N, L)
    # 2. the memory before every chunk, and after the last
    starts, final = _chunk_states(k, v, i_pre, b, state)
    # 3. every chunk's outputs at once
    h = _intra_chunk(q, k, v, i_pre, b, starts, eps)  # (B, H, N, L, V)
    return h.flatten(2, 3)[:, :, :T], final


def mlstm_parallel(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, state: MLSTMCellState, eps: float = EPS
) -> tuple[Tensor, MLSTMCellState]:
    """The quadratic parallel form: :func:`mlstm_chunkwise` with a single chunk of length T."""
    return mlstm_chunkwise(q, k, v, i_pre, log_f, state, chunk_size=max(q.shape[2], 1), eps=eps)


def _chunk_states(
    k: Tensor, v: Tensor, i_pre: Tensor, b: Tensor, state: MLSTMCellState
) -> tuple[MLSTMCellState, MLSTMCellState]:
    """Memory before each chunk (each field with an N axis after H) and the final memory."""
    g = b[..., -1]  # (B, H, N) total log decay of each chunk
    a = g[..., None] - b + i_pre  # (B, H, N, L)
    # 1. each chunk's own sum, stabilised by its own max (−∞ for an all-padding chunk: sum 0)
    a_max = a.amax(-1).detach()  # (B, H, N)
    a_safe = torch.where(torch.isfinite(a_max), a_max, torch.zeros_like(a_max))
    w = torch.exp(a - a_safe[..., None])  # (B, H, N, L)
    S = torch.einsum("bhnl,bhnlk,bhnlv->bhnkv", w, k, v)  # (B, H, N, K, V)
    s = torch.einsum("bhnl,bhnlk->bhnk", w, k)  # (B, H, N, K)
    # 2. carry across chunks (unbind once: indexing per chunk would make each backward step
    #    write a full-size gradient, O(N²) memory traffic)
    C, n, m = state
    Cs, ns, ms = [], [], []
    for g_c, a_c, S_c, s_c in zip(g.unbind(2), a_max.unbind(2), S.unbind(2), s.unbind(2), strict=True):
        Cs.append(C), ns.append(n), ms.append(m)
        m_new = torch.maximum(g_c + m, a_c).detach()  # (B, H) no gradient, as in the step
        decay = torch.exp(g_c + m - m_new)  # (B, H)
        scale = torch.exp(a_c - m_new)  # (B, H): S was scaled by e^{−a_safe}, 0 if a_max = −∞
        C = decay[..., None, None] * C + scale[..., None, None] * S_c  # (B, H, K, V)
        n = decay[..., None] * n + scale[..., None] * s_c  # (B, H, K)
        m = m_new
    starts = MLSTMCellState(torch.stack(Cs, 2), torch.stack(ns, 2), torch.stack(ms, 2))
    return starts, MLSTMCellState(C, n, m)


def _intra_chunk(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, b: Tensor, starts: MLSTMCellState, eps: float
) -> Tensor:
    """Outputs of every chunk from its own steps (D-matrix form) and the memory before it."""
    C, n, m = starts  # (B, H, N, K, V), (B, H, N, K), (B, H, N)
    L = q.shape[3]
    # 1. log weights of step j at step t, and of the memory at step t
    D = b[..., :, None] - b[..., None, :] + i_pre[..., None, :]  # (B, H, N, L, L)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    D = D.masked_fill(~causal, -math.inf)
    inter = b + m[..., None]  # (B, H, N, L)
    m_t = torch.maximum(inter, D.amax(-1)).detach()  # (B, H, N, L)
    # 2. stabilised weights and the two contributions
    scores = (q @ k.transpose(-1, -2)) * torch.exp(D - m_t[..., None])  # (B, H, N, L, L)
    w_inter = torch.exp(inter - m_t)[..., None]  # (B, H, N, L, 1)
    num = scores @ v + w_inter * (q @ C)  # (B, H, N, L, V)
    den = scores.sum(-1) + w_inter[..., 0] * (q @ n[..., None])[..., 0]  # (B, H, N, L)
    # 3. normalise (the lower bound e^{−m} is the stabilised form of 1)
    den = torch.maximum(den.abs(), torch.exp(-m_t)) + eps
    return num / den[..., None]
