"""One time step of the Elman RNN, LSTM and GRU cells, written to be read.

Shape legend: B batch · D input width · H hidden width · P projection width (LSTM ``proj_size``)
· G number of gates (RNN 1, GRU 3, LSTM 4).

Layout and gate order follow ``torch.nn`` so weights load unchanged:
``weight_ih`` (G·H, D), ``weight_hh`` (G·H, H or P); LSTM gates (i, f, g, o), GRU gates (r, z, n).

Every cell takes ``gx`` = ``x_t W_ih^T + b_ih`` (+ the parts of ``b_hh`` that may be folded in),
precomputed for all time steps at once by the caller: that hoists the input projection out of
the time loop into one large matrix multiply, which is what makes the per-step loop affordable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rnn_cell(gx: Tensor, h: Tensor, w_hh: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """Elman RNN step: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    Args:
        gx: ``x_t W_ih^T + b_ih + b_hh``, shape (B, H).
        h: previous hidden state h_{t-1}, shape (B, H).
        w_hh: recurrent weight W_hh, shape (H, H).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        h_t, shape (B, H).
    """
    pre = torch.addmm(gx, h, w_hh.t())  # (B, H)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_cell(
    gx: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    w_hr: Tensor | None = None,
    ln_hh: Tensor | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """LSTM step (Hochreiter & Schmidhuber 1997; gate order as in ``torch.nn.LSTM``).

    With ``z = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh`` split into four blocks of H::

        i_t = σ(z_i)                  learn gate (input gate): how much new content to write
        f_t = σ(z_f)                  forget gate: how much long-term memory to keep
        g_t = tanh(z_g)               candidate content C̃_t (N_t in the course text)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t   remember gate (cell update): the new long-term memory
        o_t = σ(z_o)                  use gate (output gate): how much memory to expose
        h_t = o_t ⊙ tanh(c_t)          the new short-term memory (hidden state)
        h_t = h_t W_hr^T               only with a projection (``proj_size > 0``)

    Layer-norm variant (Ba et al. 2016), enabled by ``ln_hh`` / ``ln_c``: the recurrent
    pre-activation is normalised, ``z = LN(x W_ih^T) + LN(h W_hh^T) + b`` (the caller normalises
    the input part), and ``h_t = o_t ⊙ tanh(LN(c_t))``.

    Args:
        gx: input part of z (bias folded in), shape (B, 4H).
        h: short-term memory h_{t-1}, shape (B, H) or (B, P) with a projection.
        c: long-term memory c_{t-1}, shape (B, H).
        w_hh: (4H, H or P). w_hr: (P, H) or None.
        ln_hh: gain of the layer norm on ``h W_hh^T``, shape (4H,), or None.
        ln_c: (gain, bias) of the layer norm on c_t, each (H,), or None.

    Returns:
        (h_t, c_t): shapes (B, H or P) and (B, H).
    """
    # 1. pre-activations of all four gates in one matrix multiply
    if ln_hh is None:
        z = torch.addmm(gx, h, w_hh.t())  # (B, 4H)
    else:
        rec = F.layer_norm(h @ w_hh.t(), ln_hh.shape, ln_hh)  # (B, 4H)
        z = gx + rec
    # 2. gates: one sigmoid over all four blocks (the g block's is unused) costs less than three calls
    H = c.shape[1]
    i, f, _, o = torch.sigmoid(z).chunk(4, dim=1)  # each (B, H)
    g = torch.tanh(z[:, 2 * H : 3 * H])
    # 3. remember gate: new long-term memory c_t = f ⊙ c_{t-1} + i ⊙ g
    c = torch.addcmul(f * c, i, g)
    # 4. use gate: new short-term memory
    c_out = c if ln_c is None else F.layer_norm(c, c.shape[1:], ln_c[0], ln_c[1])
    h = o * torch.tanh(c_out)
    if w_hr is not None:
        h = h @ w_hr.t()  # (B, P)
    return h, c


def gru_cell(gx: Tensor, h: Tensor, w_hh: Tensor, b_hn: Tensor | None, h_rec: Tensor | None = None) -> Tensor:
    """GRU step (Cho et al. 2014; gate order and conventions as in ``torch.nn.GRU``).

    With ``a = x_t W_ih^T + b_ih`` and ``b = h_{t-1} W_hh^T + b_hh`` split into (r, z, n)::

        r_t = σ(a_r + b_r)                 reset gate: how much of h_{t-1} the candidate sees
        z_t = σ(a_z + b_z)                 update gate
        n_t = tanh(a_n + r_t ⊙ b_n)        candidate h̃_t
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Note the convention: in torch (and here) z_t ≈ 1 *keeps* the old state, whereas the course
    text writes ``h_t = (1 − z_t) h_{t-1} + z_t h̃_t`` (z_t ≈ 1 takes the new one). The two are the
    same model with z ↦ 1 − z. The reset gate multiplies ``h W_hn^T + b_hn`` (after the matmul),
    as cuDNN and torch do, not h before it as in the original paper.

    Args:
        gx: ``a`` with ``b_hr, b_hz`` folded in, shape (B, 3H).
        h: h_{t-1}, shape (B, H). w_hh: (3H, H). b_hn: the n-part of b_hh, (H,), or None.
        h_rec: what the gates read instead of h (recurrent dropout: ``h ⊙ mask``); the carry
            ``z_t ⊙ h_{t-1}`` always uses the clean h. Default: h.

    Returns:
        h_t, shape (B, H).
    """
    H = h.shape[1]
    # 1. recurrent projection; the n-part keeps its own bias because r multiplies it
    rec = (h if h_rec is None else h_rec) @ w_hh.t()  # (B, 3H)
    a_rz, a_n = gx[:, : 2 * H], gx[:, 2 * H :]
    rec_rz, rec_n = rec[:, : 2 * H], rec[:, 2 * H :]
    if b_hn is not None:
        rec_n = rec_n + b_hn
    # 2. gates
    r, z = torch.sigmoid(a_rz + rec_rz).chunk(2, dim=1)  # each (B, H)
    n = torch.tanh(a_n + r * rec_n)
    # 3. interpolate between the candidate and the old state
    return n + z * (h - n)
