"""Encoder-decoder (cross) attention: decoder queries attend to the encoder's output.

Shape legend: B batch · T decoder tokens · S source tokens · D model width · H heads · K = D / H.

    y = softmax(q kᵀ / √K + M) v W_o,   q = x W_q (decoder),  k, v = memory W_k, memory W_v

M is −∞ at padded source positions. The keys and values depend only on the source, so
:meth:`CrossAttention.memory_kv` computes them once per source and incremental decoding reuses
them at every step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.init import xavier_projections
from seqlab.ops.attention import attention


class MemoryKV(NamedTuple):
    k: Tensor  # (B, H, S, K)
    v: Tensor  # (B, H, S, K)
    valid: Tensor  # (B, S) bool: real source tokens


class CrossAttention(nn.Module):
    """Multi-head attention from a decoder stream onto a fixed memory (the encoded source)."""

    def __init__(
        self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True, backend: str = "sdpa"
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ConfigError(f"cross-attention: num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.dropout, self.backend = dropout, backend
        self.q = nn.Linear(d_model, d_model, bias=bias)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        xavier_projections(self.q, self.kv, self.out)

    def memory_kv(self, memory: Tensor, memory_mask: Tensor | None = None) -> MemoryKV:
        """memory (B, S, D) -> keys and values per head, computed once per source."""
        B, S, _ = memory.shape
        if memory_mask is None:
            memory_mask = torch.ones(B, S, dtype=torch.bool, device=memory.device)
        elif memory_mask.dtype != torch.bool or tuple(memory_mask.shape) != (B, S):
            raise ShapeError(
                f"cross-attention: expected a bool source mask of shape ({B}, {S}), "
                f"got {memory_mask.dtype} {tuple(memory_mask.shape)}"
            )
        k, v = self.kv(memory).view(B, S, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return MemoryKV(k, v, memory_mask)  # k, v each (B, H, S, K)

    def forward(
        self, x: Tensor, memory: MemoryKV, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, D) -> (y (B, T, D), weights (B, H, T, S) if ``need_weights`` else None)."""
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, K)
        allowed = memory.valid[:, None, None, :]  # (B, 1, 1, S)
        dropout = self.dropout if self.training else 0.0
        y, w = attention(
            q, memory.k, memory.v, allowed, dropout, backend=self.backend, need_weights=need_weights
        )
        return self.out(y.transpose(1, 2).reshape(B, T, self.d_model)), w
