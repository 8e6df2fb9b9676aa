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

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor, nn

from seqlab.config import check_positive, check_range, from_dict
from seqlab.errors import ConfigError
from seqlab.layers import FeedForward, build_norm
from seqlab.layers.cross_attention import CrossAttention, MemoryKV
from seqlab.layers.feedforward import FFN_KINDS
from seqlab.layers.self_attention import SelfAttentionConfig, build_self_attention
from seqlab.mixers.attention import AttentionMixer, KVCache

NormPosition = Literal["post", "pre"]


@dataclass
class TransformerConfig:
    """What every Transformer stack shares (encoder-decoder, BERT-style encoder).

    Attributes:
        d_model, num_heads, d_ff: widths (num_heads must divide d_model).
        dropout: on embeddings + positions and on each sub-layer output (residual dropout).
        attention_dropout: on attention weights (0 in the original paper).
        activation: FFN kind: ``relu`` (the paper), ``gelu`` (BERT), ``silu``, or a gated one
            (``swiglu``, ``geglu``, ``reglu``).
        norm: ``layernorm`` or ``rmsnorm``; norm_position: ``post`` (the paper, BERT) or ``pre``.
        positional: absolute positions added to embeddings, ``sinusoidal`` or ``learned``.
        max_len: longest sequence (the learned table's size).
        encoder_attention: options of the encoder's self-attention besides heads and dropout,
            e.g. ``{kind: local, window: 16}``; see ``seqlab.layers.self_attention``.
    """

    d_model: int = 128
    num_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: str = "relu"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_position: NormPosition = "pre"
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_len: int = 512
    encoder_attention: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("d_model", "num_heads", "d_ff", "max_len"):
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, 0.0, 0.99)
        check_range("attention_dropout", self.attention_dropout, 0.0, 0.99)
        if self.d_model % self.num_heads:
            raise ConfigError(f"num_heads: {self.num_heads} does not divide d_model={self.d_model}")
        if self.activation not in FFN_KINDS:
            raise ConfigError(f"activation: expected one of {', '.join(FFN_KINDS)}, got {self.activation!r}")
        for key in ("num_heads", "dropout"):
            if key in self.encoder_attention:
                raise ConfigError(f"encoder_attention.{key}: set it at the top level of the model section")
        self.self_attention  # noqa: B018  (validate the options now, naming the bad key)

    @property
    def self_attention(self) -> SelfAttentionConfig:
        options = {"num_heads": self.num_heads, "dropout": self.attention_dropout, **self.encoder_attention}
        return from_dict(SelfAttentionConfig, options, "encoder_attention")


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


class EncoderStack(nn.Module):
    """N encoder layers, then a final norm for pre-norm stacks (post-norm layers end normed)."""

    def __init__(self, config: TransformerConfig, num_layers: int) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            EncoderLayer(
                c.d_model, c.self_attention, c.d_ff, c.activation, c.dropout, c.norm, c.norm_position
            )
            for _ in range(num_layers)
        )
        self.norm = build_norm(c.norm if c.norm_position == "pre" else "none", c.d_model)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, S, D), mask (B, S) bool real tokens -> (B, S, D)."""
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


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
