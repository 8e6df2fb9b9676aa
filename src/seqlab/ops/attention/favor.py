"""Efficient attention, part 2: Performer / FAVOR+ (Choromanski et al. 2021), softmax attention
approximated with positive orthogonal random features, in time and memory linear in T.

Shape legend: B batch · H heads · L query length · S key length · T time · K key dim ·
V value dim · M random features · C chunk.

    exp(q·k / √K) = E_ω[φ(q)·φ(k)],   ω_1..ω_M ~ N(0, I_K) (orthogonal blocks)
    φ(x) = exp(ω_i·x' − ‖x'‖²/2)_{i=1..M} / √M,   x' = x / K^{1/4}
    Att(q, k, v)_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / φ(q_i)ᵀ Σ_j φ(k_j)       (causal: j ≤ i)

The estimate of each kernel value is unbiased and positive; the normalised attention is a ratio
of estimates, hence biased, with an error that falls like 1/√M and grows with ‖q‖, ‖k‖.

Stabilisation: a factor that is constant along one normalised sum cancels. Queries subtract their
own max_i(ω_i·x'); keys subtract a shared m: non-causal, the max over all real keys; causal, the
running max over the keys so far, so a result depends on the past only and the recurrent state
is (S, z, m) with Σ_j φ(k_j) v_jᵀ = e^m S and Σ_j φ(k_j) = e^m z (as mLSTM's (C, n, m)).
Stabilisers are detached: they cancel, so the gradient through them is zero anyway.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ShapeError

FavorState = tuple[Tensor, Tensor, Tensor]  # S (B, H, M, V), z (B, H, M), m (B, H)


def random_features(
    num_features: int,
    head_dim: int,
    *,
    orthogonal: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> Tensor:
    """ω (M, K): Gaussian rows; ``orthogonal`` makes each block of K rows exactly orthogonal
    (QR of a Gaussian matrix, signs fixed so the directions are uniform) with lengths drawn from
    the norms of Gaussian vectors, so every row is still marginally N(0, I_K) (ORF)."""
    if num_features < 1 or head_dim < 1:
        raise ShapeError(f"random features: expected M ≥ 1 and K ≥ 1, got {num_features}, {head_dim}")
    gauss = torch.randn(num_features, head_dim, generator=generator, dtype=torch.float64)  # (M, K)
    if orthogonal:
        blocks = []
        for _ in range(math.ceil(num_features / head_dim)):
            g = torch.randn(head_dim, head_dim, generator=generator, dtype=torch.float64)
            q, r = torch.linalg.qr(g)  # (K, K)
            blocks.append((q * torch.sign(torch.diagonal(r))).T)  # rows orthonormal
        gauss = torch.cat(blocks)[:num_features] * gauss.norm(dim=1, keepdim=True)  # (M, K)
    return gauss.to(dtype=dtype, device=device)


def favor_logits(x: Tensor, omega: Tensor) -> Tensor:
    """a = ω x' − ‖x'‖²/2 with x' = x / K^{1/4}: x (..., K) -> (..., M); φ(x) = exp(a) / √M."""
    x = x * x.shape[-1] ** -0.25
    return x @ omega.to(x).T - 0.5 * x.pow(2).sum(-1, keepdim=True)  # (..., M)


def _query_features(q: Tensor, omega: Tensor) -> Tensor:
    a = favor_logits(q, omega)  # (B, H, L, M)
    return torch.exp(a - a.amax(-1, keepdim=True).detach()) / math.sqrt(omega.shape[0])


def _safe(m: Tensor) -> Tensor:
    """A stabiliser with −∞ (no real key yet) replaced by 0, so differences stay finite."""
    return m.masked_fill(torch.isinf(m), 0.0)


def _normalise(num: Tensor, den: Tensor) -> Tensor:
    """num / den with den (...,) > 0, or zeros where den = 0 (no real key); finite gradients."""
    return num / torch.where(den > 0, den, torch.ones_like(den))[..., None]


def performer_attention(q: Tensor, k: Tensor, v: Tensor, omega: Tensor, key_valid: Tensor | None = None):
    """Non-causal FAVOR+: (B, H, L, K), (B, H, S, K), (B, H, S, V) -> (B, H, L, V).

    Time O((L + S)·M·(K + V)), memory O((L + S)·M + M·V). Rows with no real key are zeros.
    """
    # 1. key features, stabilised by the max over all real keys and features (per b, h)
    a_k = favor_logits(k, omega)  # (B, H, S, M)
    if key_valid is not None:
        a_k = a_k.masked_fill(~key_valid[:, None, :, None], float("-inf"))
    m = _safe(a_k.amax(dim=(-2, -1), keepdim=True).detach())  # (B, H, 1, 1)
    phi_k = torch.exp(a_k - m) / math.sqrt(omega.shape[0])  # (B, H, S, M)
    # 2. the sums over keys, then one product per query
    kv = phi_k.transpose(-1, -2) @ v  # (B, H, M, V)
    z = phi_k.sum(-2)  # (B, H, M)
    phi_q = _query_features(q, omega)  # (B, H, L, M)
    return _normalise(phi_q @ kv, (phi_q @ z[..., None])[..., 0])  # (B, H, L, V)


def performer_attention_quadratic(
    q: Tensor, k: Tensor, v: Tensor, omega: Tensor, allowed: Tensor | None = None
) -> Tensor:
    """The plain reference: A = φ(q) φ(k)ᵀ (B, H, L, S) without any stabilisation, zero where
    ``allowed`` (bool, broadcastable) is False, rows normalised, times v. O(L·S) memory; use
    float64 and moderate inputs (exp overflows otherwise)."""
    scale = 1.0 / math.sqrt(omega.shape[0])
    phi_q, phi_k = torch.exp(favor_logits(q, omega)) * scale, torch.exp(favor_logits(k, omega)) * scale
    scores = phi_q @ phi_k.transpose(-1, -2)  # (B, H, L, S)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, 0.0)
    return _normalise(scores @ v, scores.sum(-1))  # (B, H, L, V)


def performer_attention_causal(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    omega: Tensor,
    valid: Tensor | None = None,
    state: FavorState | None = None,
    chunk_size: int = 64,
) -> tuple[Tensor, FavorState]:
    """Causal FAVOR+ in N chunks of C, all chunks at once: exact (C, C) products inside a chunk,
    and the state entering each chunk from a scan over the N per-chunk sums (the only loop, two
    element-wise ops per chunk). q, k (B, H, T, K), v (B, H, T, V); ``valid`` (B, T) False at
    padded tokens (they never enter the state); ``state`` (S, z, m) carried from earlier tokens.

    Time O(T·(C + M)·(K + V)); memory O(T·(C + M) + (T / C)·M·V) with autograd: linear in T.

    Returns:
        (y (B, H, T, V), final state (S, z, m)).
    """
    B, H, T, _ = k.shape
    M, V = omega.shape[0], v.shape[-1]
    state = init_favor_state(B, H, M, V, v) if state is None else state
    if T == 0:
        return v.new_zeros(B, H, 0, V), state
    valid = torch.ones(B, T, dtype=torch.bool, device=k.device) if valid is None else valid
    C = min(chunk_size, T)
    N, pad = math.ceil(T / C), -T % C
    q, k, v = (F.pad(t, (0, 0, 0, pad)).view(B, H, N, C, -1) for t in (q, k, v))  # (B, H, N, C, ·)
    valid = F.pad(valid, (0, pad), value=False).view(B, 1, N, C, 1)  # padding: invalid
    # 1. key exponents and their running max m_t over real keys (incl. the state's m), per token
    a_k = favor_logits(k, omega).masked_fill(~valid, float("-inf"))  # (B, H, N, C, M)
    local = a_k.amax(-1).detach().cummax(-1).values  # (B, H, N, C) running max within a chunk
    before = torch.cat([state[2][..., None], local[..., :-1, -1]], -1).cummax(-1).values  # (B, H, N)
    m_run = torch.maximum(before[..., None], local)  # (B, H, N, C)
    m_t = _safe(m_run)
    phi_k = torch.exp(a_k - m_t[..., None]) / math.sqrt(M)  # (B, H, N, C, M): key j scaled by e^{−m_j}
    phi_q = _query_features(q, omega)  # (B, H, N, C, M)
    # 2. intra-chunk: A_tj = φq_t·φk_j · e^{m_j − m_t} for j ≤ t (≤ 1: no overflow)
    causal = torch.ones(C, C, dtype=torch.bool, device=k.device).tril()
    keep = causal & ~torch.isinf(m_run)[..., None, :]  # (B, H, N, C, C)
    decay = torch.where(keep, torch.exp(m_t[..., None, :] - m_t[..., :, None]), 0.0)
    scores = (phi_q @ phi_k.transpose(-1, -2)) * decay  # (B, H, N, C, C)
    # 3. inter-chunk: the state entering each chunk (at m = before), rescaled to m_t
    S_in, z_in, final = _chunk_states(a_k, v, m_run[..., -1], state)  # (B, H, N, M, V), (B, H, N, M)
    carry = torch.exp(before[..., None] - m_t)  # (B, H, N, C); 0 while no real key came before
    num = scores @ v + (phi_q @ S_in) * carry[..., None]  # (B, H, N, C, V)
    den = scores.sum(-1) + (phi_q @ z_in[..., None])[..., 0] * carry  # (B, H, N, C)
    y = _normalise(num, den).reshape(B, H, N * C, V)[:, :, :T]  # (B, H, T, V)
    return y, final


def _chunk_states(
    a_k: Tensor, v: Tensor, end: Tensor, state: FavorState
) -> tuple[Tensor, Tensor, FavorState]:
    """The state entering every chunk and the final one, from the per-chunk sums.

    Chunk n adds L_n = Σ_j e^{a(k_j) − end_n} v_jᵀ / √M (end_n: the running max at its last token)
    and the carried state is rescaled: S ← e^{m − end_n} S + L_n, m ← end_n.
    a_k (B, H, N, C, M), v (B, H, N, C, V), end (B, H, N) -> (B, H, N, M, V), (B, H, N, M), final.
    """
    w = torch.exp(a_k - _safe(end)[..., None, None]) / math.sqrt(a_k.shape[-1])  # (B, H, N, C, M)
    sums, sums_z = w.transpose(-1, -2) @ v, w.sum(-2)  # (B, H, N, M, V), (B, H, N, M)
    S, z, m = state
    S_in, z_in = [], []
    for n in range(a_k.shape[2]):
        S_in.append(S)
        z_in.append(z)
        g = torch.exp(m - _safe(end[..., n]))  # (B, H); 0 when m = −∞
        S, z, m = g[..., None, None] * S + sums[:, :, n], g[..., None] * z + sums_z[:, :, n], end[..., n]
    return torch.stack(S_in, 2), torch.stack(z_in, 2), (S, z, m)


def init_favor_state(B: int, H: int, M: int, V: int, like: Tensor) -> FavorState:
    """The empty state: S = 0 (B, H, M, V), z = 0 (B, H, M), m = −∞ (B, H)."""
    return like.new_zeros(B, H, M, V), like.new_zeros(B, H, M), like.new_full((B, H), float("-inf"))


def performer_attention_recurrent(
    q: Tensor, k: Tensor, v: Tensor, omega: Tensor, valid: Tensor | None = None, state=None
) -> tuple[Tensor, FavorState]:
    """The naive reference of the causal form: one token at a time,

        m_t = max(m_{t−1}, max_i a_i(k_t)),  S_t = e^{m_{t−1} − m_t} S_{t−1} + e^{a(k_t) − m_t} v_tᵀ / √M,
        z_t = e^{m_{t−1} − m_t} z_{t−1} + e^{a(k_t) − m_t} / √M,   y_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t

    (a padded token leaves the state unchanged). O(M·(K + V)) per token.
    """
    B, H, T, _ = k.shape
    S, z, m = init_favor_state(B, H, omega.shape[0], v.shape[-1], v) if state is None else state
    valid = torch.ones(B, T, dtype=torch.bool, device=k.device) if valid is None else valid
    ys = []
    for t in range(T):
        real = valid[:, t, None]  # (B, 1)
        a_k = favor_logits(k[:, :, t], omega).masked_fill(~real[..., None], float("-inf"))  # (B, H, M)
        m_new = torch.maximum(m, a_k.amax(-1).detach())  # (B, H)
        g = torch.exp(m - _safe(m_new))  # (B, H)
        w = torch.exp(a_k - _safe(m_new)[..., None]) / math.sqrt(omega.shape[0])  # (B, H, M)
        S = g[..., None, None] * S + w[..., :, None] * v[:, :, t, None, :]  # (B, H, M, V)
        z, m = g[..., None] * z + w, m_new
        phi_q = _query_features(q[:, :, t], omega)  # (B, H, M)
        ys.append(_normalise((phi_q[..., None, :] @ S)[..., 0, :], (phi_q * z).sum(-1)))  # (B, H, V)
    y = torch.stack(ys, 2) if ys else v.new_zeros(B, H, 0, v.shape[-1])
    return y, (S, z, m)
