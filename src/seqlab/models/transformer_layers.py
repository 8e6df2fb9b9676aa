"""Transformer encoder and decoder layers (Vaswani et al. 2017, §3.1), post-norm or pre-norm.

Shape legend: B batch · T target (decoder) time · S source time · D model width.

Each sub-layer f (self-attention, cross-attention, feed-forward) is wrapped as

    post-norm (the paper):  x ← LayerNorm(x + Dropout(f(x)))
    pre-norm (GPT-2 on):    x ← x + Dropout(f(LayerNorm(x)))     (a final norm after the stack)

Encoder layer: bidirectional self-attention, FFN. Decoder layer: causal self-attention (the
``attention`` mixer, with its KV cache for incremental decoding), cross-attention onto the
encoded source, FFN.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from seqlab.layers import FeedForward, build_norm
from seqlab.layers.cross_attention import CrossAttention, MemoryKV
from seqlab.layers.self_attention import SelfAttentionConfig, build_self_attention
from seqlab.mixers.attention import AttentionMixer, KVCache

NormPosition = Literal["post", "pre"]


class Residual(nn.Module):
    """The residual connection and norm around one sub-layer: ``pre(x)`` feeds f, ``post`` adds."""

    def __init__(self, d_model: int, norm: str, position: NormPosition, dropout: float) -> None:
        super().__init__()
        self.position = position
        self.norm = build_norm(norm, d_model)
        self.dropout = nn.Dropout(dropout)

    def pre(self, x: Tensor) -> Tensor:
        return self.norm(x) if self.position == "pre" else x

    def post(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.dropout(y)
        return self.norm(x) if self.position == "post" else x


class EncoderLayer(nn.Module):
    """Self-attention (any registered kind) + FFN, each in a :class:`Residual`."""

    def __init__(
        self,
        d_model: int,
        attention: SelfAttentionConfig,
        d_ff: int,
        activation: str,
        dropout: float,
        norm: str,
        position: NormPosition,
    ) -> None:
        super().__init__()
        self.self_attn = build_self_attention(d_model, attention)
        self.ffn = FeedForward(d_model, d_ff, activation)
        self.r1, self.r2 = (Residual(d_model, norm, position, dropout) for _ in range(2))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, S, D), mask (B, S) bool real tokens -> (B, S, D)."""
        x = self.r1.post(x, self.self_attn(self.r1.pre(x), mask))
        return self.r2.post(x, self.ffn(self.r2.pre(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention + cross-attention + FFN, each in a :class:`Residual`."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        activation: str,
        dropout: float,
        attention_dropout: float,
        norm: str,
        position: NormPosition,
        positional: str = "none",
    ) -> None:
        super().__init__()
        self.self_attn = AttentionMixer(
            d_model,
            {"num_heads": num_heads, "positional": positional, "bias": True, "dropout": attention_dropout},
        )
        self.cross_attn = CrossAttention(d_model, num_heads, attention_dropout)
        self.ffn = FeedForward(d_model, d_ff, activation)
        self.r1, self.r2, self.r3 = (Residual(d_model, norm, position, dropout) for _ in range(3))

    def forward(
        self, x: Tensor, memory: MemoryKV, cache: KVCache | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, KVCache]:
        """x (B, T, D) new target tokens, memory from :meth:`CrossAttention.memory_kv`, the
        self-attention cache of earlier target tokens -> (y (B, T, D), extended cache)."""
        y, cache = self.self_attn(self.r1.pre(x), cache, mask=mask)
        x = self.r1.post(x, y)
        y, _ = self.cross_attn(self.r2.pre(x), memory)
        x = self.r2.post(x, y)
        return self.r3.post(x, self.ffn(self.r3.pre(x))), cache
