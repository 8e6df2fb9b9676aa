"""The sLSTM recurrence with backpropagation through time written out by hand (the fast path).

Shape legend: B batch · T time · NH heads · DH units per head · 4 gates (i, f, z, o).

Same math as :mod:`seqlab.ops.slstm.naive` (the reference it is tested against). The forward
loop runs without autograd on preallocated buffers, one batched matmul per step for the
block-diagonal R; the backward loop applies the BPTT equations (m is a constant, see there):

    δc_t  ← δc_t + δh_t ⊙ o_t / n_t            δn_t ← δn_t − δh_t ⊙ h_t / n_t
    δĩ_t  = (δc_t ⊙ z_t + δn_t) ⊙ i'_t         δf̃_t = (δc_t ⊙ c_{t−1} + δn_t ⊙ n_{t−1}) ⊙ f'_t ⊙ g_t
    δz̃_t  = δc_t ⊙ i'_t ⊙ (1 − z_t²)           δõ_t = δh_t ⊙ (c_t / n_t) ⊙ o_t (1 − o_t)
    δc_{t−1} = δc_t ⊙ f'_t     δn_{t−1} = δn_t ⊙ f'_t     δh_{t−1} = ∂L/∂y_{t−1} + δraw_t Rᵀ
    ∂L/∂R = Σ_t h_{t−1}ᵀ δraw_t     (per head, one batched GEMM over all B·T steps at the end)

with g_t = σ(−f̃_t) (sigmoid forget gate: d log σ(f̃)/df̃) or 1 (exponential forget gate). The
factors that do not depend on the carried gradients are computed for a chunk of steps at once
(small enough to stay in cache), so the loop itself is about nine small operations per step.
Padded steps (mask False) pass state and gradients through unchanged (f' := 1, no gradient
into the gates). The gradients are those of the outputs with m held fixed, which are exact
because h does not depend on m; the stored c and n (scaled by e^{−m}) are not m-free.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from seqlab.ops.slstm.naive import SLSTMCellState, fresh_stabiliser


class FusedSLSTMFunction(torch.autograd.Function):
    """``(gx, h0, c0, n0, m0, R, mask, exp_forget) -> (out, h_T, c_T, n_T, m_T)``, head-major.

    Shapes: gx (NH, T, B, 4·DH) head- and time-major (the layout of a batched input projection;
    its gradient comes back in the same layout, ready for the projection's backward), states
    (NH, B, DH) with m0 already −∞ for fresh rows, R (NH, DH, 4·DH), mask (T, 1, B, 1) bool or
    None. Returns out (B, T, NH, DH) batch-first (zero at padded steps) and the final states; m_T (−∞ for
    rows that saw no real step) carries no gradient.
    """

    @staticmethod
    def forward(ctx, gx, h0, c0, n0, m0, R, mask, exp_forget):
        NH, T, B, G = gx.shape
        DH = G // 4
        act = gx.new_empty(T, NH, B, 4, DH)  # pre-activations, then in place [i', f', z, o]
        hs, cs, ns, ms = (gx.new_empty(T + 1, NH, B, DH) for _ in range(4))  # [t] = before step t
        hs[0], cs[0], ns[0], ms[0] = h0, c0, n0, m0
        log_f = []  # log f per step (the sigmoid gate's backward needs it)
        # views per step, made once: indexing inside the loop costs as much as the arithmetic
        a_flat, a_if = act.view(T, NH, B, G).unbind(0), act[:, :, :, :2].unbind(0)
        a_i, a_f, a_z, a_o = (g.unbind(0) for g in act.unbind(3))
        h_, c_, n_, m_ = (x.unbind(0) for x in (hs, cs, ns, ms))
        m_col = ms[:, :, :, None].unbind(0)  # (NH, B, 1, DH) views of ms
        gx_ = gx.unbind(1)
        for t in range(T):
            torch.baddbmm(gx_[t], h_[t], R, out=a_flat[t])  # [ĩ, f̃, z̃, õ]
            # 1. log f + m_{t−1} in the f slot, the stabiliser, then i' and f' with one exp
            if exp_forget:
                a_f[t].add_(m_[t])
            else:
                log_f.append(F.logsigmoid(a_f[t]))
                torch.add(log_f[t], m_[t], out=a_f[t])
            m = torch.maximum(a_f[t], a_i[t], out=m_[t + 1])
            a_if[t].sub_(m_col[t + 1]).exp_()
            a_z[t].tanh_()
            a_o[t].sigmoid_()
            i, f, z, o = a_i[t], a_f[t], a_z[t], a_o[t]
            # 2. c = f' c + i' z;  n = f' n + i';  h = o c / n
            c = torch.mul(f, c_[t], out=c_[t + 1]).addcmul_(i, z)
            n = torch.addcmul(i, f, n_[t], out=n_[t + 1])
            h = torch.div(c, n, out=h_[t + 1]).mul_(o)
            if mask is not None:  # padded rows keep their state
                keep = mask[t]  # (1, B, 1)
                for new, old in ((h, h_[t]), (c, c_[t]), (n, n_[t]), (m, m_[t])):
                    torch.where(keep, new, old, out=new)
        out = hs[1:] * mask if mask is not None else hs[1:]
        out = out.permute(2, 0, 1, 3).contiguous()  # (B, T, NH, DH)
        m_T = ms[T].clone()
        ctx.mark_non_differentiable(m_T)
        log_f = torch.stack(log_f) if log_f else None
        ctx.save_for_backward(act, log_f, hs, cs, ns, R, mask)
        return out, hs[T].clone(), cs[T].clone(), ns[T].clone(), m_T

    @staticmethod
    @once_differentiable  # hand-written BPTT: first-order gradients only
    def backward(ctx, d_out, d_h, d_c, d_n, _d_m):
        act, log_f, hs, cs, ns, R, mask = ctx.saved_tensors
        T, NH, B, _, DH = act.shape
        if d_out is None:
            d_out = act.new_zeros(T, NH, B, DH)
        else:
            d_out = d_out.permute(1, 2, 0, 3)  # (T, NH, B, DH)
            d_out = d_out * mask if mask is not None else d_out
        d_raw = act.new_empty(NH, T, B, 4, DH)  # δ of the pre-activations = ∂L/∂gx
        carried = _Carried(
            d_out[T - 1] + d_h if d_h is not None else d_out[T - 1].clone(),
            d_c.clone()[:, :, None] if d_c is not None else act.new_zeros(NH, B, 1, DH),
            d_n.clone()[:, :, None] if d_n is not None else act.new_zeros(NH, B, 1, DH),
        )
        R_t = R.transpose(1, 2).contiguous()  # (NH, 4·DH, DH)
        for t1 in range(T, 0, -_CHUNK):  # coefficients a chunk at a time: they stay in cache
            t0 = max(t1 - _CHUNK, 0)
            k = _coefficients(
                act[t0:t1],
                log_f[t0:t1] if log_f is not None else None,
                (hs[t0 : t1 + 1], cs[t0 : t1 + 1], ns[t0 : t1 + 1]),
                mask[t0:t1] if mask is not None else None,
            )
            d_prev = (
                d_out[t0 - 1 : t1 - 1] if t0 else torch.cat([torch.zeros_like(d_out[:1]), d_out[: t1 - 1]])
            )
            carried = _bptt_chunk(k, d_prev, d_raw[:, t0:t1], R_t, carried)
        h_in = hs[:T].permute(1, 3, 0, 2).reshape(NH, DH, T * B)  # (NH, DH, T·B)
        d_R = torch.bmm(h_in, d_raw.view(NH, T * B, 4 * DH))  # (NH, DH, 4·DH): one GEMM per head
        dh, dc, dn = carried
        return d_raw.view(NH, T, B, 4 * DH), dh, dc[:, :, 0], dn[:, :, 0], None, d_R, None, None


class _Coefficients(NamedTuple):
    """Per-step factors of the backward loop that do not depend on the carried gradients."""

    o_n: Tensor  # (L, NH, B, 1, DH) o / n: δh -> δc
    h_n: Tensor  # (L, NH, B, 1, DH) −h / n: δh -> δn
    by_c: Tensor  # (L, NH, B, 3, DH) δc -> δĩ, δf̃, δz̃
    by_n: Tensor  # (L, NH, B, 2, DH) δn -> δĩ, δf̃
    by_h: Tensor  # (L, NH, B, 1, DH) δh -> δõ
    carry: Tensor  # (L, NH, B, 1, DH) f' (1 at padded steps): δc_t, δn_t -> δc_{t−1}, δn_{t−1}
    pad: Tensor | None  # (L, 1, B, 1) 1 at padded steps: δh_t -> δh_{t−1}


_CHUNK = 32  # steps per block of backward coefficients


class _Carried(NamedTuple):
    """Gradients carried backwards through time: at h_t (NH, B, DH), at c_t and n_t (NH, B, 1, DH)."""

    dh: Tensor
    dc: Tensor
    dn: Tensor


def _bptt_chunk(k: _Coefficients, d_prev: Tensor, d_raw: Tensor, R_t: Tensor, carried: _Carried) -> _Carried:
    """BPTT over one chunk of L steps, last to first; fills d_raw (NH, L, B, 4, DH) in place.

    ``d_prev[j]`` (L, NH, B, DH) is the output gradient of the step before step j.
    """
    NH, L, B, _, DH = d_raw.shape
    g_flat, g_c, g_n, g_h = (  # per-step views: indexing inside the loop costs like arithmetic
        d_raw.view(NH, L, B, 4 * DH).unbind(1),
        d_raw[..., :3, :].unbind(1),
        d_raw[..., :2, :].unbind(1),
        d_raw[..., 3:, :].unbind(1),
    )
    o_n, h_n, by_c, by_n, by_h, carry = (x.unbind(0) for x in k[:6])
    pad = k.pad.unbind(0) if k.pad is not None else None
    d_prev = d_prev.contiguous().unbind(0)
    dh, dc, dn = carried
    for j in range(L - 1, -1, -1):
        dh_ = dh[:, :, None]  # (NH, B, 1, DH)
        # 1. what h_t feeds into c_t and n_t; then the gates' pre-activations
        dc.addcmul_(dh_, o_n[j])
        dn.addcmul_(dh_, h_n[j])
        torch.mul(dc, by_c[j], out=g_c[j])  # ĩ, f̃, z̃
        g_n[j].addcmul_(dn, by_n[j])  # ĩ, f̃
        torch.mul(dh_, by_h[j], out=g_h[j])  # õ
        # 2. carry to step t − 1: through f' and through R (plus that step's output gradient)
        dc.mul_(carry[j])
        dn.mul_(carry[j])
        dh_next = torch.baddbmm(d_prev[j], g_flat[j], R_t)
        if pad is not None:  # a padded step passed h_{t−1} straight through
            dh_next.addcmul_(pad[j], dh)
        dh = dh_next
    return _Carried(dh, dc, dn)


def _coefficients(act, log_f, states, mask) -> _Coefficients:
    """For L steps at once: o/n, −h/n, the factors of δc, δn, δh in δraw, f' (1 at padding).

    act (L, NH, B, 4, DH), log_f (L, NH, B, DH) or None, states (hs, cs, ns) each
    (L + 1, NH, B, DH) from the state before the first step, mask (L, 1, B, 1) or None.
    """
    hs, cs, ns = states
    i, f, z, o = act.split(1, 3)  # each (L, NH, B, 1, DH)
    c, n, h, c_prev, n_prev = (x[:, :, :, None] for x in (cs[1:], ns[1:], hs[1:], cs[:-1], ns[:-1]))
    # ∂f'/∂f̃ = f' · d log f / df̃ (m held fixed): σ(−f̃) = −expm1(log σ(f̃)), or 1 for exp(f̃)
    g = f if log_f is None else f * -torch.expm1(log_f[:, :, :, None])
    by_c = torch.cat([z * i, c_prev * g, i * (1 - z * z)], 3)  # (T, NH, B, 3, DH)
    by_n = torch.cat([i, n_prev * g], 3)  # (T, NH, B, 2, DH)
    by_h = c / n * o * (1 - o)
    o_n, h_n, carry, pad = o / n, -h / n, f, None
    if mask is not None:  # padded steps: no gradient into the gates, state gradients pass
        keep = mask[..., None].to(act.dtype)  # (T, 1, B, 1, 1)
        o_n, h_n, by_h, by_c, by_n = (x * keep for x in (o_n, h_n, by_h, by_c, by_n))
        carry = torch.where(mask[..., None], f, 1.0)
        pad = 1.0 - keep[..., 0]  # (L, 1, B, 1)
    return _Coefficients(o_n, h_n, by_c, by_n, by_h, carry, pad)


def slstm_fused(
    gx: Tensor,
    recurrent: Tensor,
    state: SLSTMCellState,
    mask: Tensor | None = None,
    exp_forget: bool = False,
) -> tuple[Tensor, SLSTMCellState]:
    """Same arguments and results as :func:`seqlab.ops.slstm.slstm_naive`, much faster.

    Shapes: gx (B, T, NH, 4, DH), recurrent (NH, DH, 4, DH), state tensors (B, NH, DH), mask
    (B, T) bool; returns h (B, T, NH, DH) and the final state.
    """
    B, T, NH, _, DH = gx.shape
    gx_h = gx.permute(2, 1, 0, 3, 4).reshape(NH, T, B, 4 * DH)  # (NH, T, B, 4·DH); a view if so laid out
    h0, c0, n0, m0 = (s.transpose(0, 1).contiguous() for s in state)  # each (NH, B, DH)
    m0 = fresh_stabiliser(n0, m0.detach())
    mask_t = mask.t()[:, None, :, None].contiguous() if mask is not None else None  # (T, 1, B, 1)
    out, h, c, n, m = FusedSLSTMFunction.apply(
        gx_h, h0, c0, n0, m0, recurrent.reshape(NH, DH, 4 * DH), mask_t, exp_forget
    )
    m = torch.where(torch.isneginf(m), state.m.detach().transpose(0, 1), m)  # rows never started
    final = SLSTMCellState(*(s.transpose(0, 1) for s in (h, c, n, m)))  # each (B, NH, DH)
    return out, final
