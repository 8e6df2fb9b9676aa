"""Causal multi-head self-attention mixer with a KV cache.

Shape legend: B batch · T new tokens · S cached tokens · D model width · H heads · K = D / H.

    q, k, v = x W_q, x W_k, x W_v          (split into H heads; RoPE on q and k)
    y = softmax(q kᵀ / √K + M) v W_o       M: −∞ where key s is in the future or padding

The state is the KV cache of everything seen so far (keys already rotated), so ``step``
decoding, or a forward over [t, T) with the cache of [0, t), equals the full forward. Padded
tokens (``mask`` False) are never attended to, are stored as zeros, and produce zero output;
positions count real tokens only, so each row gets the result it would get alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.positional import alibi_slopes, rope
from seqlab.mixers.base import MIXERS, Mixer
from seqlab.ops.attention import attention, causal_mask


@dataclass
class AttentionConfig:
    """Heads, backend (``sdpa`` fast path or ``naive`` reference), relative positions (``rope``:
    rotary q/k; ``alibi``: a per-head linear distance penalty −m_h·(i − j) on the scores; ``none``),
    projection biases, dropout on the attention weights."""

    num_heads: int = 4
    backend: Literal["auto", "naive", "sdpa"] = "auto"
    positional: Literal["rope", "alibi", "none"] = "rope"
    rope_base: float = 10000.0
    bias: bool = False
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_positive("num_heads", self.num_heads)
        check_positive("rope_base", self.rope_base)
        check_range("dropout", self.dropout, 0.0, 0.99)


class KVCache(NamedTuple):
    k: Tensor  # (B, H, S, K) rotated keys, zero at padded steps
    v: Tensor  # (B, H, S, K) values, zero at padded steps
    valid: Tensor  # (B, S) bool: real tokens


@MIXERS.register("attention")
class AttentionMixer(Mixer):
    """Causal self-attention as a sequence mixer: ``forward(x, cache, mask) -> (y, KVCache)``."""

    Config = AttentionConfig
    State = KVCache
    BACKENDS = ("naive", "sdpa")

    def __init__(self, d_model: int, config=None) -> None:
        super().__init__(d_model, config)
        c = self.config
        if d_model % c.num_heads:
            raise ConfigError(f"attention: num_heads={c.num_heads} must divide d_model={d_model}")
        self.num_heads, self.head_dim = c.num_heads, d_model // c.num_heads
        if c.positional == "rope" and self.head_dim % 2:
            raise ConfigError(
                f"attention: RoPE needs an even head dim, got d_model/num_heads={self.head_dim}"
            )
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=c.bias)
        self.out = nn.Linear(d_model, d_model, bias=c.bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.xavier_uniform_(self.out.weight)
        for lin in (self.qkv, self.out):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def init_state(self, batch_size: int) -> KVCache:
        p = self.qkv.weight
        empty = p.new_zeros(batch_size, self.num_heads, 0, self.head_dim)
        return KVCache(empty, empty.clone(), torch.zeros(batch_size, 0, dtype=torch.bool, device=p.device))

    def state_size(self, T: int = 1) -> int:
        """Floats cached per sequence after T tokens: keys and values, 2·D·T (grows with T)."""
        return 2 * self.d_model * T

    def state_row(self, state: KVCache, b: int) -> tuple[Tensor, ...]:
        """Row b's cache without its padded slots (for comparing with a row run alone)."""
        keep = state.valid[b]
        return state.k[b][:, keep], state.v[b][:, keep]

    def forward(self, x: Tensor, state: KVCache | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), cache extended by the T new tokens)."""
        B, T = self._check_x(x)
        H, K = self.num_heads, self.head_dim
        state = self.init_state(B) if state is None else self._check_cache(state, B)
        real = torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        if real.shape != (B, T):
            raise ShapeError(f"attention: expected mask of shape ({B}, {T}), got {tuple(real.shape)}")
        # 1. project and split heads
        q, k, v = self.qkv(x).view(B, T, 3, H, K).permute(2, 0, 3, 1, 4)  # each (B, H, T, K)
        # 2. positions count real tokens only (cache included), then rotate q and k
        if self.config.positional == "rope":
            pos = state.valid.sum(1, keepdim=True) + real.cumsum(1) - 1  # (B, T)
            q, k = (
                rope(q, pos.clamp(min=0), self.config.rope_base),
                rope(k, pos.clamp(min=0), self.config.rope_base),
            )
        keep = real[:, None, :, None]  # (B, 1, T, 1)
        k, v = k * keep, v * keep
        # 3. attend over cache + new tokens: causal, real keys only
        k_all, v_all = torch.cat([state.k, k], 2), torch.cat([state.v, v], 2)  # (B, H, S+T, K)
        valid = torch.cat([state.valid, real], 1)  # (B, S+T)
        allowed = causal_mask(T, valid.shape[1], x.device)[None, None] & valid[:, None, None, :]
        bias = self._alibi(valid, T) if self.config.positional == "alibi" else None
        backend = "naive" if self.config.backend == "naive" else "sdpa"
        dropout = self.config.dropout if self.training else 0.0
        y, _ = attention(q, k_all, v_all, allowed, dropout, bias=bias, backend=backend)  # (B, H, T, K)
        y = self.out(y.transpose(1, 2).reshape(B, T, self.d_model)) * real[..., None]  # (B, T, D)
        return y, KVCache(k_all, v_all, valid)

    def _alibi(self, valid: Tensor, T: int) -> Tensor:
        """(B, H, T, S+T) bias −m_h·(pos_query − pos_key), positions counting real tokens only."""
        key_pos = valid.long().cumsum(1) - 1  # (B, S+T)
        query_pos = key_pos[:, -T:]  # (B, T)
        distance = (query_pos[:, :, None] - key_pos[:, None, :]).to(self.qkv.weight.dtype)  # (B, T, S+T)
        slopes = alibi_slopes(self.num_heads).to(distance)  # (H,)
        return -slopes[None, :, None, None] * distance[:, None]

    def _check_cache(self, state: KVCache, B: int) -> KVCache:
        if not isinstance(state, KVCache):
            raise ShapeError(f"attention: expected a KVCache state, got {type(state).__name__}")
        want = (B, self.num_heads, state.k.shape[2] if state.k.dim() == 4 else -1, self.head_dim)
        if (
            tuple(state.k.shape) != want
            or state.v.shape != state.k.shape
            or state.valid.shape != (B, want[2])
        ):
            raise ShapeError(
                f"attention: expected state.k/v of shape (B={B}, H={self.num_heads}, S, "
                f"K={self.head_dim}) and state.valid (B, S), got {tuple(state.k.shape)}, "
                f"{tuple(state.v.shape)}, {tuple(state.valid.shape)}"
            )
        return state
