"""The mLSTM cell, one step at a time: the reference every other form is tested against.

Shape legend: B batch · H heads · T time · K key/query dim · V value dim.

Per head, with scalar gates (Beck et al. 2024, eqs. 19–27; the official code's stabilised step):

    k_t ← k_t / √K
    m_t  = max(log f_t + m_{t−1}, ĩ_t)                      (stabiliser, log space)
    f'_t = exp(log f_t + m_{t−1} − m_t),  i'_t = exp(ĩ_t − m_t)
    C_t  = f'_t C_{t−1} + i'_t k_t v_tᵀ                      (matrix memory, K × V)
    n_t  = f'_t n_{t−1} + i'_t k_t                           (normaliser)
    h̃_t = C_tᵀ q_t / (max(|n_tᵀ q_t|, exp(−m_t)) + ε)

(C, n) are the unstabilised sums scaled by e^{−m}, so h̃ is the same for any m (up to ε): m only
keeps exp() in range, and gets no gradient. ``log f`` is ``logsigmoid(f̃)`` (sigmoid forget gate)
or ``f̃`` (exponential); the caller passes it. A padded step has ``log f = 0`` and ``ĩ = −∞``,
which leaves (C, n, m) exactly unchanged. The zero state is C = 0, n = 0, m = 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

EPS = 1e-6


class MLSTMCellState(NamedTuple):
    C: Tensor  # (B, H, K, V) matrix memory
    n: Tensor  # (B, H, K) normaliser
    m: Tensor  # (B, H) stabiliser (log scale of C and n)


def zero_state(B: int, H: int, K: int, V: int, like: Tensor) -> MLSTMCellState:
    """The empty memory: C = 0, n = 0, m = 0."""
    return MLSTMCellState(like.new_zeros(B, H, K, V), like.new_zeros(B, H, K), like.new_zeros(B, H))


def mlstm_step(
    q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, state: MLSTMCellState, eps: float = EPS
) -> tuple[Tensor, MLSTMCellState]:
    """One token: q, k (B, H, K), v (B, H, V), i_pre, log_f (B, H) -> (h̃ (B, H, V), state)."""
    C, n, m = state
    k = k * k.shape[-1] ** -0.5
    # 1. stabilised gates (m carries no gradient: h̃ does not depend on it)
    m_new = torch.maximum(log_f + m, i_pre).detach()  # (B, H)
    f = torch.exp(log_f + m - m_new)[..., None]  # (B, H, 1)
    i = torch.exp(i_pre - m_new)[..., None]  # (B, H, 1)
    # 2. memory update
    C = f[..., None] * C + (i * k)[..., :, None] * v[..., None, :]  # (B, H, K, V)
    n = f * n + i * k  # (B, H, K)
    # 3. read out with the query
    num = torch.einsum("bhk,bhkv->bhv", q, C)  # (B, H, V)
    den = torch.maximum((q * n).sum(-1).abs(), torch.exp(-m_new)) + eps  # (B, H)
    return num / den[..., None], MLSTMCellState(C, n, m_new)


def mlstm_recurrent(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    state: MLSTMCellState,
    eps: float = EPS,
) -> tuple[Tensor, MLSTMCellState]:
    """The step loop: q, k (B, H, T, K), v (B, H, T, V), i_pre, log_f (B, H, T) -> (h̃ (B, H, T, V), state).

    O(T·K·V) time, O(K·V) state per head: the form for generation and the reference for tests.
    """
    hs = []
    for t in range(q.shape[2]):
        h, state = mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], i_pre[:, :, t], log_f[:, :, t], state, eps)
        hs.append(h)
    return torch.stack(hs, 2), state  # (B, H, T, V)
