"""Efficient attention, part 1: sliding-window (local) attention with global tokens (Longformer,
Beltagy et al. 2020; BigBird, Zaheer et al. 2020) and the Linformer projection (Wang et al. 2020).
Performer / FAVOR+ is in :mod:`seqlab.ops.attention.favor`.

Shape legend: B batch · H heads · L query length · S key length · K key dim · V value dim ·
W window · G global tokens · C query block · N = ⌈L / C⌉ blocks · P projected length.

As in :func:`~seqlab.ops.attention.sdpa.causal_mask`, the L queries are the last L of the S key
positions: query i sits at position p = S − L + i. With window W, query p may attend to key j when

    causal:        0 ≤ p − j < W     (itself and the W − 1 tokens before it)
    bidirectional: |p − j| < W       (W − 1 tokens on each side)

and, with G global tokens (the first G positions): every query attends to keys j < G, and
queries p < G attend to every key (causal attention still only to j ≤ p). Causal local attention
with global tokens is the "attention sink" pattern of StreamingLLM (Xiao et al. 2024).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ShapeError
from seqlab.ops.attention.sdpa import attention


def local_mask(
    L: int, S: int, window: int, global_tokens: int = 0, *, causal: bool = True, device=None
) -> Tensor:
    """(L, S) bool: True where query i (position S − L + i) may attend to key j (rules above)."""
    _check_window(window, global_tokens)
    p = torch.arange(S - L, S, device=device)[:, None]  # (L, 1) query positions
    j = torch.arange(S, device=device)[None, :]  # (1, S) key positions
    d = p - j  # (L, S)
    band = (d >= 0) & (d < window) if causal else d.abs() < window
    glob = (j < global_tokens) | (p < global_tokens)
    return band | (glob & (d >= 0) if causal else glob)


def local_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    window: int,
    global_tokens: int = 0,
    *,
    causal: bool = True,
    key_valid: Tensor | None = None,
    slopes: Tensor | None = None,
    block_size: int | None = None,
    dropout_p: float = 0.0,
    backend: str = "sdpa",
) -> Tensor:
    """Local attention in blocks: equals ``attention_naive(q, k, v, allowed, bias=bias)`` with
    ``allowed = local_mask(L, S, W, G, causal) & key_valid[:, None, None, :]`` and, when ``slopes``
    (H,) is given, the ALiBi bias ``−slopes_h · |p − j|``, but never forms an (L, S) tensor.

    Queries are cut into N blocks of C (default C = W); block n attends to the C + W − 1 keys
    around it (C + 2W − 2 when bidirectional) plus the G global keys, and the min(G, L) global
    queries (bidirectional) attend to all S keys. Time and memory O(L·(C + W + G) + G·S): linear
    in the sequence length. Each block does about twice the work of the band itself (C + W − 1
    keys for W needed), so at small T, where the full (L, S) scores are cheap, full attention
    with a mask is faster.

    Args:
        q: (B, H, L, K) queries, the last L of the S positions.
        k, v: (B, H, S, K), (B, H, S, V).
        window: W ≥ 1.
        global_tokens: G ≥ 0, the first G positions.
        causal: causal (only keys j ≤ p) or bidirectional window.
        key_valid: (B, S) bool, False at padded keys (never attended to).
        slopes: (H,) ALiBi slopes, or None.
        block_size: C, queries per block (default W).
        backend: ``sdpa`` or ``naive``, the attention used inside each block.

    Returns:
        (B, H, L, V); rows with no allowed key are zeros.
    """
    valid = _check_local(q, k, v, window, global_tokens, key_valid)
    B, H, L, K = q.shape
    S = k.shape[2]
    C = max(1, min(block_size or window, L))
    N = math.ceil(L / C)
    # 1. each block's keys (global + window) and which of them each query may use
    k_blk, v_blk, allowed, dist = _block_keys(k, v, valid, window, min(global_tokens, S), L, C, causal)
    width = k_blk.shape[2]
    bias = None
    if slopes is not None:  # ALiBi on the distances p − j, (1, H·N, C, width)
        bias = -(slopes.to(q)[:, None, None, None] * dist.abs().to(q)).reshape(1, H * N, C, width)
    # 2. attend within blocks, batched as (B, H·N, C, ·)
    q_blk = F.pad(q, (0, 0, 0, N * C - L)).reshape(B, H * N, C, K)  # (B, H·N, C, K)
    out, _ = attention(q_blk, k_blk, v_blk, allowed, dropout_p, bias=bias, backend=backend)
    out = out.view(B, H, N * C, -1)[:, :, :L]  # (B, H, L, V)
    # 3. bidirectional global queries (positions < G) attend to every real key
    n_global = max(0, min(global_tokens - (S - L), L)) if not causal else 0
    if n_global:
        p = torch.arange(S - L, S - L + n_global, device=q.device)[:, None]  # (n_global, 1)
        g_bias = None
        if slopes is not None:
            g_bias = -slopes.to(q)[:, None, None] * (p - torch.arange(S, device=q.device)).abs().to(q)
        allowed = valid[:, None, None, :]  # (B, 1, 1, S)
        g_out, _ = attention(q[:, :, :n_global], k, v, allowed, dropout_p, bias=g_bias, backend=backend)
        out = torch.cat([g_out, out[:, :, n_global:]], 2)  # (B, H, L, V)
    return out


def _block_keys(
    k: Tensor, v: Tensor, valid: Tensor, W: int, G: int, L: int, C: int, causal: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Keys, values, allowed slots and distances p − j of every query block.

    Block n (queries at p = o + nC + r, o = S − L) reads the window slots j = o + nC − (W−1) + u
    (keys left-padded by W − 1, padding invalid), preceded by the G global keys.

    Returns:
        k (B, H·N, G+width, K), v (B, H·N, G+width, V), allowed (B, H·N, C, G+width),
        dist (N, C, G+width).
    """
    B, H, S, K = k.shape
    o, N, dev = S - L, math.ceil(L / C), k.device
    # 1. window slots: overlapping windows of the padded keys, one per block
    width = C + (W - 1) * (1 if causal else 2)
    right = max(0, (N - 1) * C + width - (W - 1) - L)
    k_win = _windows(F.pad(k, (0, 0, W - 1, right))[:, :, o:], width, C, N)  # (B, H, N, width, K)
    v_win = _windows(F.pad(v, (0, 0, W - 1, right))[:, :, o:], width, C, N)  # (B, H, N, width, V)
    valid_win = F.pad(valid, (W - 1, right))[:, o:].unfold(1, width, C)[:, :N]  # (B, N, width)
    # 2. the band (the same for every block), real keys, global keys not counted twice
    r = torch.arange(C, device=dev)[:, None]  # (C, 1) query offset in its block
    u = torch.arange(width, device=dev)[None, :]  # (1, width) key slot
    dist = (r - u + W - 1).expand(N, C, width)  # (N, C, width): p − j
    j_win = o + C * torch.arange(N, device=dev)[:, None, None] - (W - 1) + u  # (N, 1, width)
    band = ((dist >= 0) & (dist < W) if causal else dist.abs() < W) & (j_win >= G)
    allowed = band[None] & valid_win[:, :, None, :]  # (B, N, C, width)
    # 3. global keys in front of every block's window
    if G:
        p = o + C * torch.arange(N, device=dev)[:, None, None] + r  # (N, C, 1) query positions
        g_dist = (p - torch.arange(G, device=dev)).expand(N, C, G)  # (N, C, G)
        g_allowed = valid[:, None, None, :G] & ((g_dist >= 0) if causal else True)  # (B, N, C, G)
        k_win = torch.cat([k[:, :, None, :G].expand(B, H, N, G, K), k_win], 3)  # (B, H, N, G+width, K)
        v_win = torch.cat([v[:, :, None, :G].expand(B, H, N, G, v.shape[-1]), v_win], 3)
        allowed = torch.cat([g_allowed.expand(B, N, C, G), allowed], 3)  # (B, N, C, G+width)
        dist = torch.cat([g_dist, dist], 2)  # (N, C, G+width)
    width = k_win.shape[3]
    allowed = allowed[:, None].expand(B, H, N, C, width).reshape(B, H * N, C, width)
    return k_win.reshape(B, H * N, width, K), v_win.reshape(B, H * N, width, -1), allowed, dist


def _windows(x: Tensor, width: int, step: int, n: int) -> Tensor:
    """Overlapping windows along dim 2: x (B, H, S', E) -> (B, H, n, width, E)."""
    return x.unfold(2, width, step)[:, :, :n].transpose(-1, -2)  # (B, H, n, width, E)


def _check_local(
    q: Tensor, k: Tensor, v: Tensor, window: int, global_tokens: int, key_valid: Tensor | None
) -> Tensor:
    """Validate the inputs of :func:`local_attention`; returns key_valid (all True when None)."""
    _check_window(window, global_tokens)
    dims_ok = q.dim() == k.dim() == v.dim() == 4 and k.shape[:3] == v.shape[:3] == (*q.shape[:2], k.shape[2])
    if not dims_ok or q.shape[2] > k.shape[2] or q.shape[-1] != k.shape[-1]:
        raise ShapeError(
            f"local attention: expected q (B, H, L, K), k (B, H, S, K), v (B, H, S, V) with L ≤ S, "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    B, S = k.shape[0], k.shape[2]
    if key_valid is None:
        return torch.ones(B, S, dtype=torch.bool, device=q.device)
    if key_valid.shape != (B, S) or key_valid.dtype != torch.bool:
        raise ShapeError(
            f"local attention: expected a bool key_valid of shape ({B}, {S}), got {tuple(key_valid.shape)}"
        )
    return key_valid


def _check_window(window: int, global_tokens: int) -> None:
    if window < 1 or global_tokens < 0:
        raise ShapeError(
            f"local attention: expected window ≥ 1 and global_tokens ≥ 0, got {window}, {global_tokens}"
        )


def linformer_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    proj_k: Tensor,
    proj_v: Tensor,
    key_valid: Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    backend: str = "sdpa",
) -> Tensor:
    """Linformer (Wang et al. 2020): keys and values projected along the sequence axis,

        Att = softmax(q (E k)ᵀ / √K) (F v),   E, F: (P, max_len), only the first S columns used

    Padded keys and values (``key_valid`` False) are zeroed before the projection, so their
    content never matters. This is not the masked softmax of full attention: a projected key is a
    mixture of all positions and there is no per-key mask. Non-causal (every projected key mixes
    the whole sequence) and approximate (exact only when P ≥ S and E, F are invertible-compatible,
    e.g. E = F = I). Time O(S·P·(K + V)), memory O(L·P): linear in T for a fixed P.

    Args:
        q: (B, H, L, K); k: (B, H, S, K); v: (B, H, S, V).
        proj_k, proj_v: E and F, (P, max_len) with max_len ≥ S.
        key_valid: (B, S) bool or None.

    Returns:
        (B, H, L, V).
    """
    S = k.shape[2]
    if proj_k.dim() != 2 or proj_v.shape != proj_k.shape:
        raise ShapeError(
            f"linformer: expected E and F of one shape (P, max_len), got {proj_k.shape}, {proj_v.shape}"
        )
    if proj_k.shape[1] < S:
        raise ShapeError(
            f"linformer: sequence length {S} exceeds max_len={proj_k.shape[1]} of the projections E, F; "
            f"build the layer with max_len ≥ {S}"
        )
    if key_valid is not None:
        keep = key_valid[:, None, :, None].to(k.dtype)  # (B, 1, S, 1)
        k, v = k * keep, v * keep
    k_proj = torch.einsum("ps,bhsk->bhpk", proj_k[:, :S], k)  # (B, H, P, K)
    v_proj = torch.einsum("ps,bhsv->bhpv", proj_v[:, :S], v)  # (B, H, P, V)
    out, _ = attention(q, k_proj, v_proj, None, dropout_p, backend=backend)
    return out
