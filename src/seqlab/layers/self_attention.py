"""Bidirectional (encoder) self-attention, by kind: every real token attends to real tokens.

Shape legend: B batch · T time · D model width · H heads · K = D / H.

    y = softmax(q kᵀ / √K + M) v W_o,   q, k, v = x W_q, x W_k, x W_v (split into H heads)

M is −∞ at padded keys (``mask`` False); padded queries produce zeros. Every kind registered in
:data:`SELF_ATTENTION` takes ``(d_model, config)`` and implements ``forward(x, mask=None) -> y``
(B, T, D), so encoder layers can swap the exact form for an efficient one by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError, ShapeError
from seqlab.ops.attention import attention
from seqlab.registry import Registry

SELF_ATTENTION: Registry[type[nn.Module]] = Registry("self-attention kind")


@dataclass
class SelfAttentionConfig:
    """Which form of attention (``kind``), heads, backend of the exact form, dropout on weights.

    Attributes:
        kind: a name registered in :data:`SELF_ATTENTION` (``full`` is exact softmax attention).
        num_heads: H; must divide d_model.
        backend: ``sdpa`` (fast path), ``naive`` (the reference) or ``auto`` (= sdpa).
        dropout: dropout on the attention weights (training only).
        bias: biases in the q/k/v/output projections.
    """

    kind: str = "full"
    num_heads: int = 8
    backend: Literal["auto", "naive", "sdpa"] = "auto"
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        SELF_ATTENTION.get(self.kind)  # unknown kinds list the choices
        check_positive("num_heads", self.num_heads)
        check_range("dropout", self.dropout, 0.0, 0.99)


def check_inputs(x: Tensor, mask: Tensor | None, d_model: int, who: str) -> Tensor:
    """Validate x (B, T, D) and mask (B, T) bool; returns the mask (all True when None)."""
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ShapeError(f"{who}: expected x of shape (B, T, {d_model}), got {tuple(x.shape)}")
    B, T = x.shape[:2]
    if mask is None:
        return torch.ones(B, T, dtype=torch.bool, device=x.device)
    if mask.dtype != torch.bool or tuple(mask.shape) != (B, T):
        raise ShapeError(
            f"{who}: expected a bool mask of shape ({B}, {T}) marking real tokens, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    return mask


class _Heads(nn.Module):
    """Shared q/k/v/output projections of the attention kinds."""

    def __init__(self, d_model: int, config: SelfAttentionConfig) -> None:
        super().__init__()
        if d_model % config.num_heads:
            raise ConfigError(f"self-attention: num_heads={config.num_heads} must divide d_model={d_model}")
        self.d_model, self.config = d_model, config
        self.num_heads, self.head_dim = config.num_heads, d_model // config.num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=config.bias)
        self.out = nn.Linear(d_model, d_model, bias=config.bias)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.xavier_uniform_(self.out.weight)
        for lin in (self.qkv, self.out):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def split(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, D) -> q, k, v each (B, H, T, K)."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def merge(self, y: Tensor, mask: Tensor) -> Tensor:
        """y (B, H, T, K) -> (B, T, D) through W_o, zero at padded positions."""
        B, _, T, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, T, self.d_model)) * mask[..., None]


@SELF_ATTENTION.register("full")
class FullSelfAttention(_Heads):
    """Exact softmax attention over all real tokens: O(T²) time, O(T) memory on the SDPA path."""

    def __init__(self, d_model: int, config: SelfAttentionConfig | None = None) -> None:
        super().__init__(d_model, config or SelfAttentionConfig())
        self.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        y, _ = self._attend(x, mask, need_weights=False)
        return y

    def attention_weights(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The weights (B, H, T, T) the forward would use, for visualisation."""
        return self._attend(x, mask, need_weights=True)[1]

    def _attend(self, x: Tensor, mask: Tensor | None, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        mask = check_inputs(x, mask, self.d_model, "self-attention")
        q, k, v = self.split(x)  # each (B, H, T, K)
        allowed = mask[:, None, None, :]  # (B, 1, 1, T): real keys
        backend = "naive" if self.config.backend == "naive" else "sdpa"
        dropout = self.config.dropout if self.training else 0.0
        y, weights = attention(q, k, v, allowed, dropout, backend=backend, need_weights=need_weights)
        return self.merge(y, mask), weights


def build_self_attention(d_model: int, config: SelfAttentionConfig) -> nn.Module:
    return SELF_ATTENTION.get(config.kind)(d_model, config)
