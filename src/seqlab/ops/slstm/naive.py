"""The sLSTM recurrence (Beck et al. 2024) as a plain step loop with autograd: the reference.

Shape legend: B batch · T time · NH heads · DH = D / NH units per head · 4 gates (i, f, z, o).

Per head, with a block-diagonal recurrent matrix R (memory mixing inside a head only):

    [ĩ, f̃, z̃, õ]_t = gx_t + h_{t−1} R                  (gx: input projections + biases)
    z_t = tanh(z̃_t)          cell input ("learn" candidate)
    o_t = σ(õ_t)             output gate ("use")
    log f_t = log σ(f̃_t)  (sigmoid forget gate)  or  f̃_t  (exponential forget gate)
    i_t = exp(ĩ_t)           exponential input gate ("learn")

stabilised by m (the log of the largest term so far) so no exp overflows:

    m_t  = max(log f_t + m_{t−1}, ĩ_t)
    i'_t = exp(ĩ_t − m_t),   f'_t = exp(log f_t + m_{t−1} − m_t)      (both ≤ 1)
    c_t  = f'_t c_{t−1} + i'_t z_t      (cell state, long-term memory, scaled by e^{−m_t})
    n_t  = f'_t n_{t−1} + i'_t          (normaliser, scaled alike)
    h_t  = o_t ⊙ c_t / n_t              (hidden state, short-term memory)

The scale e^{−m_t} cancels in c_t / n_t, so h is exactly the unstabilised o ⊙ c̄ / n̄ and m is
treated as a constant: it gets no gradient (and the gradient of h is still exact).

First step and the official clamps. A fresh state (n = 0, nothing seen yet) is given
m_0 = −∞, so its first real step has m_1 = ĩ_1, i' = 1, f' = 0, c_1 = z_1, n_1 = 1: the
official vanilla code does the same with ``m = ĩ if all(n == 0)``, but over the whole batch at
once; here it holds per row (rows of a batch may start at different steps under padding).
Afterwards n_t ≥ 1 (one of the two terms of n_t is ≥ 1 by the max), so h never divides by 0,
and i', f' ≤ 1 by construction: the official ``min(·, 1)`` clamps never act, and are left out.

Padded steps (mask False) leave (h, c, n, m) unchanged and output 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class SLSTMCellState(NamedTuple):
    h: Tensor  # (B, NH, DH) hidden state (short-term memory)
    c: Tensor  # (B, NH, DH) cell state (long-term memory), scaled by e^{−m}
    n: Tensor  # (B, NH, DH) normaliser, scaled by e^{−m}; 0 = nothing seen yet
    m: Tensor  # (B, NH, DH) stabiliser (log scale of c and n)


def zero_state(batch_size: int, num_heads: int, head_dim: int, like: Tensor) -> SLSTMCellState:
    """A fresh state: all zeros (n = 0 marks it as fresh)."""
    z = like.new_zeros(batch_size, num_heads, head_dim)
    return SLSTMCellState(z, z.clone(), z.clone(), z.clone())


def fresh_stabiliser(n: Tensor, m: Tensor) -> Tensor:
    """m, with −∞ where n = 0 (a fresh state): the first real step then sets m = ĩ."""
    return torch.where(n == 0, -math.inf, m)


def slstm_step(raw: Tensor, state: SLSTMCellState, exp_forget: bool = False) -> SLSTMCellState:
    """One step from the pre-activations ``raw`` (B, NH, 4, DH) = gx_t + h_{t−1} R.

    ``state.m`` must already hold −∞ for fresh rows (see :func:`fresh_stabiliser`).
    """
    i_pre, f_pre, z_pre, o_pre = raw.unbind(-2)  # each (B, NH, DH)
    # 1. gates in log space; the stabiliser is a constant for autograd
    log_f = f_pre if exp_forget else F.logsigmoid(f_pre)
    m = torch.maximum(log_f.detach() + state.m, i_pre.detach())
    i = torch.exp(i_pre - m)
    f = torch.exp(log_f + state.m - m)
    # 2. memory, normaliser, output
    c = f * state.c + i * torch.tanh(z_pre)
    n = f * state.n + i
    h = torch.sigmoid(o_pre) * c / n
    return SLSTMCellState(h, c, n, m)


def slstm_naive(
    gx: Tensor,
    recurrent: Tensor,
    state: SLSTMCellState,
    mask: Tensor | None = None,
    exp_forget: bool = False,
) -> tuple[Tensor, SLSTMCellState]:
    """Run the sLSTM over time, one autograd-recorded step at a time.

    Args:
        gx: (B, T, NH, 4, DH) input pre-activations of the gates (i, f, z, o), biases included.
        recurrent: (NH, DH, 4, DH) R; ``R[h, j, g, k]`` maps unit j of head h to unit k of gate g.
        state: the state before the first step, each tensor (B, NH, DH).
        mask: (B, T) bool, True at real steps; None = all real.
        exp_forget: exponential forget gate (log f = f̃) instead of sigmoid (log f = log σ(f̃)).

    Returns:
        h (B, T, NH, DH), zero at padded steps, and the state after the last real step
        (m carries no gradient).
    """
    h, c, n, m0 = state
    s = SLSTMCellState(h, c, n, fresh_stabiliser(n, m0.detach()))
    outs = []
    for t, gx_t in enumerate(gx.unbind(1)):  # unbind: one gradient buffer, not one per step
        raw = gx_t + torch.einsum("bhj,hjgk->bhgk", s.h, recurrent)  # (B, NH, 4, DH)
        new = slstm_step(raw, s, exp_forget)
        if mask is not None:  # padded rows keep their state
            keep = mask[:, t, None, None]  # (B, 1, 1)
            new = SLSTMCellState(*(torch.where(keep, a, b) for a, b in zip(new, s, strict=True)))
            outs.append(torch.where(keep, new.h, 0.0))
        else:
            outs.append(new.h)
        s = new
    m = torch.where(torch.isneginf(s.m), m0, s.m).detach()  # rows that saw no real step
    return torch.stack(outs, 1), SLSTMCellState(s.h, s.c, s.n, m)
