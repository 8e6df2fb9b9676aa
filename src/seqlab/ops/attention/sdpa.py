"""Scaled dot-product attention, ``softmax(Q Kᵀ / √d_k + M) V`` (Vaswani et al. 2017).

Shape legend: B batch · H heads · L query length · S key length · K key dim · V value dim.

Masks here use one convention: a bool ``allowed`` tensor broadcastable to (B, H, L, S), True
where query l may attend to key s (``torch.nn.functional.scaled_dot_product_attention``'s
convention; ``torch.nn.MultiheadAttention`` uses the opposite, and converts before calling).
A query row with no allowed key returns zeros (never NaN) and, if asked, all-zero weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from seqlab.errors import ShapeError


def causal_mask(L: int, S: int, device: torch.device | None = None) -> Tensor:
    """(L, S) bool: query l (the last L of S positions) may attend to keys s ≤ S − L + l."""
    offset = S - L
    return torch.arange(S, device=device)[None, :] <= torch.arange(L, device=device)[:, None] + offset


def _check(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ShapeError(
            f"expected q, k, v of shape (B, H, L|S, K|V), got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"q/k key dims or k/v lengths differ: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if allowed is not None:
        if allowed.dtype != torch.bool:
            raise ShapeError(f"expected a bool attention mask, got dtype {allowed.dtype}")
        want = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        try:
            torch.broadcast_shapes(allowed.shape, want)
        except RuntimeError:
            raise ShapeError(
                f"attention mask of shape {tuple(allowed.shape)} does not broadcast to (B, H, L, S) = {want}"
            ) from None


def attention_naive(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    allowed: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    bias: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The reference: explicit scores, mask, softmax, weighted sum.

    ``bias`` is an optional additive float mask broadcastable to (B, H, L, S) (the ``M`` of the
    formula, e.g. ALiBi or a user's float mask); ``allowed`` removes keys entirely.

    Returns:
        (output (B, H, L, V), weights (B, H, L, S)).
    """
    _check(q, k, v, allowed)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, L, S)
    if bias is not None:
        scores = scores + bias
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:  # rows with no allowed key: softmax gave NaN -> zero weights
        weights = weights.masked_fill(~allowed.any(dim=-1, keepdim=True), 0.0)
    if dropout_p:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


def attention_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    allowed: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    """The fast path: ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-
    efficient kernels where available). Returns the output (B, H, L, V) only."""
    _check(q, k, v, allowed)
    if bias is None and allowed is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)
    if bias is None:
        mask, empty = allowed, ~allowed.any(dim=-1, keepdim=True)
    else:  # SDPA takes one float mask: the bias with -inf where not allowed
        mask = bias if allowed is None else bias.masked_fill(~allowed, float("-inf"))
        mask = mask.expand(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        empty = torch.isinf(mask).all(dim=-1, keepdim=True)
    if not bool(empty.any()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    # rows with nothing to attend to: SDPA would return NaN; let them attend anywhere, zero after
    mask = mask | empty if mask.dtype == torch.bool else mask.masked_fill(empty, 0.0)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    return out.masked_fill(empty, 0.0)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    allowed: Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    bias: Tensor | None = None,
    backend: str = "sdpa",
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Dispatch: weights are only computed by the naive path (``need_weights`` forces it)."""
    if backend == "naive" or need_weights:
        out, weights = attention_naive(q, k, v, allowed, dropout_p, scale, bias)
        return out, (weights if need_weights else None)
    return attention_sdpa(q, k, v, allowed, dropout_p, scale, bias), None
