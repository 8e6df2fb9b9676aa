"""Attention of one decoder state over an encoder memory: Bahdanau (additive) and Luong scores.

Shape legend: B batch · S source time · D_s query (decoder state) width · D_h memory width ·
A attention (hidden) width of the additive scores.

Every function is pure (weights are passed in). With s the query (decoder state) and h_j the
memory (encoder annotations), each score function gives ``e_j`` and attention then is::

    α_j = softmax_j(e_j)   over the real source positions j only
    c   = Σ_j α_j h_j      the context vector

Scores (Bahdanau et al. 2015, eq. 6 and App. A.1.2; Luong et al. 2015, eq. 8):

    bahdanau   e_j = vᵀ tanh(W_s s + W_h h_j)     W_h h_j precomputed once per source
    dot        e_j = sᵀ h_j                        needs D_s = D_h
    general    e_j = sᵀ W h_j                      computed as (sᵀ W) h_j: O(D_s·D_h + S·D_h)
    concat     e_j = vᵀ tanh(W [s; h_j])           W = [W_s | W_h], so W h_j is precomputable too

Weight layout is torch's ``Linear`` one (out, in): W_s (A, D_s), W_h (A, D_h), W (D_s, D_h) for
``general``, W (A, D_s + D_h) for ``concat``. With :func:`bahdanau_keys` computed once, a
decoding step costs O(A·D_s + S·A) for the additive scores instead of O(S·A·(D_s + D_h)).

Masks: ``mask`` (B, S) bool, True at real source tokens. Padded positions get weight exactly 0
and a row without any real token gets all-zero weights and a zero context — never NaN, in the
forward pass or the gradients (masked scores are filled with the dtype's lowest finite value,
not −inf, so the softmax of an empty row stays finite).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.errors import ShapeError

SCORES = ("bahdanau", "dot", "general", "concat")


def _check(query: Tensor, memory: Tensor, mask: Tensor | None) -> None:
    if query.dim() != 2 or memory.dim() != 3 or query.shape[0] != memory.shape[0]:
        raise ShapeError(
            f"expected query (B, D_s) and memory (B, S, D_h) with one B, got {tuple(query.shape)} "
            f"and {tuple(memory.shape)}"
        )
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != tuple(memory.shape[:2])):
        raise ShapeError(
            f"expected a bool mask of shape (B, S) = {tuple(memory.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """softmax over S of scores (B, S) restricted to ``mask``; pads 0, rows with no real token 0."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask  # (B, S); an empty row was uniform, now zeros


def attend(scores: Tensor, memory: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """α = masked softmax of scores (B, S); c = Σ_j α_j h_j. Returns (context (B, D_h), α (B, S))."""
    weights = masked_softmax(scores, mask)
    context = torch.bmm(weights[:, None, :], memory)[:, 0]  # (B, D_h)
    return context, weights


# -- Bahdanau (additive) ---------------------------------------------------------------------------


def bahdanau_keys(memory: Tensor, w_h: Tensor) -> Tensor:
    """W_h h_j for every source position, once per source: memory (B, S, D_h) -> (B, S, A)."""
    if memory.dim() != 3 or w_h.dim() != 2 or w_h.shape[1] != memory.shape[-1]:
        raise ShapeError(
            f"expected memory (B, S, D_h) and W_h (A, D_h), got {tuple(memory.shape)} and {tuple(w_h.shape)}"
        )
    return memory @ w_h.t()  # (B, S, A)


def bahdanau_scores(query: Tensor, keys: Tensor, w_s: Tensor, v: Tensor) -> Tensor:
    """e_j = vᵀ tanh(W_s s + W_h h_j) from precomputed keys W_h h_j (B, S, A) -> (B, S)."""
    if w_s.shape != (keys.shape[-1], query.shape[-1]) or v.shape != (keys.shape[-1],):
        raise ShapeError(
            f"expected W_s (A, D_s) = ({keys.shape[-1]}, {query.shape[-1]}) and v ({keys.shape[-1]},), "
            f"got {tuple(w_s.shape)} and {tuple(v.shape)}"
        )
    hidden = torch.tanh(keys + (query @ w_s.t())[:, None, :])  # (B, S, A)
    return hidden @ v  # (B, S)


def bahdanau_attention(
    query: Tensor, keys: Tensor, memory: Tensor, w_s: Tensor, v: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Additive attention (Bahdanau et al. 2015).

    Args:
        query: decoder state s, (B, D_s) — the *previous* state s_{t−1} in the paper's decoder.
        keys: W_h h_j from :func:`bahdanau_keys`, (B, S, A).
        memory: annotations h_j, (B, S, D_h).
        w_s: W_s, (A, D_s). v: (A,).
        mask: (B, S) bool, True at real source tokens, or None.

    Returns:
        (context (B, D_h), weights (B, S)).
    """
    _check(query, memory, mask)
    if keys.shape[:2] != memory.shape[:2]:
        raise ShapeError(f"keys {tuple(keys.shape)} and memory {tuple(memory.shape)} differ in (B, S)")
    return attend(bahdanau_scores(query, keys, w_s, v), memory, mask)


# -- Luong (multiplicative and concat) -------------------------------------------------------------


def dot_attention(query: Tensor, memory: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Luong ``dot``: e_j = sᵀ h_j. query (B, D), memory (B, S, D) -> (context (B, D), weights (B, S))."""
    _check(query, memory, mask)
    if query.shape[-1] != memory.shape[-1]:
        raise ShapeError(
            f"dot scores need query width == memory width, got {query.shape[-1]} and {memory.shape[-1]}"
        )
    scores = torch.bmm(memory, query[:, :, None])[..., 0]  # (B, S)
    return attend(scores, memory, mask)


def general_attention(
    query: Tensor, memory: Tensor, w: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Luong ``general``: e_j = sᵀ W h_j with W (D_s, D_h) -> (context (B, D_h), weights (B, S))."""
    _check(query, memory, mask)
    if w.shape != (query.shape[-1], memory.shape[-1]):
        raise ShapeError(
            f"expected W of shape (D_s, D_h) = ({query.shape[-1]}, {memory.shape[-1]}), got {tuple(w.shape)}"
        )
    projected = query @ w  # (B, D_h): sᵀ W, then one dot product per source position
    scores = torch.bmm(memory, projected[:, :, None])[..., 0]  # (B, S)
    return attend(scores, memory, mask)


def concat_attention(
    query: Tensor,
    memory: Tensor,
    w: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    keys: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Luong ``concat``: e_j = vᵀ tanh(W [s; h_j]) with W (A, D_s + D_h), v (A,).

    ``W [s; h_j] = W_s s + W_h h_j`` for the column blocks W = [W_s | W_h], so this is the additive
    score without a separate W_s; pass ``keys = bahdanau_keys(memory, w[:, D_s:])`` to reuse the
    memory half across decoding steps.

    Returns:
        (context (B, D_h), weights (B, S)).
    """
    _check(query, memory, mask)
    D_s, D_h = query.shape[-1], memory.shape[-1]
    if w.dim() != 2 or w.shape[1] != D_s + D_h:
        raise ShapeError(f"expected W of shape (A, D_s + D_h) = (A, {D_s + D_h}), got {tuple(w.shape)}")
    if keys is None:
        keys = bahdanau_keys(memory, w[:, D_s:])  # (B, S, A)
    return attend(bahdanau_scores(query, keys, w[:, :D_s], v), memory, mask)


__all__ = [
    "SCORES",
    "attend",
    "bahdanau_attention",
    "bahdanau_keys",
    "bahdanau_scores",
    "concat_attention",
    "dot_attention",
    "general_attention",
    "masked_softmax",
]
