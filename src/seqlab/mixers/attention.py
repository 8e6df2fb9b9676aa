"""Causal multi-head self-attention mixer with a KV cache; optional sliding window and
grouped-query heads.

Shape legend: B batch · T new tokens · S cached tokens · D model width · H heads · K = D / H ·
G kv heads (num_kv_heads).

    q = x W_q (H heads),  k, v = x W_k, x W_v (G heads; RoPE on q and k)
    y = softmax(q kᵀ / √K + M) v W_o       M: −∞ where key s is in the future or padding,
                                           or (window W > 0) more than W − 1 real tokens back

Grouped-query attention (Ainslie et al. 2023): query head h reads key/value head ⌊h·G/H⌋, so the
cache holds G heads instead of H (G = H: multi-head attention; G = 1: multi-query attention).
Sliding window (Beltagy et al. 2020; Mistral 7B, Jiang et al. 2023): each token attends to
itself and the W − 1 previous real tokens. The ``sdpa`` backend computes it in blocks (time and
memory linear in T, :func:`~seqlab.ops.attention.efficient.local_attention`), ``naive`` with a
dense (T, S) mask.

The state is the KV cache of everything seen so far (keys already rotated), so ``step``
decoding, or a forward over [t, T) with the cache of [0, t), equals the full forward. Padded
tokens (``mask`` False) are never attended to, are stored as zeros, and produce zero output;
positions count real tokens only, so each row gets the result it would get alone. With a window
the cache still keeps every token (only the last W − 1 are ever read again): a rolling buffer
would bound it but needs the token count in the state, which KVCache does not carry.

Segment-level recurrence (Transformer-XL, Dai et al. 2019) is the ``xl-attention`` mixer in
:mod:`seqlab.mixers.xl_attention`: the same weights, but its state is a bounded, gradient-stopped
memory of the last ``mem_len`` inputs, h̃ = [SG(m_{τ−1}); h_τ], q = h_τ W_q, k, v = h̃ W_k, h̃ W_v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.init import xavier_projections
from seqlab.layers.positional import alibi_slopes, rope
from seqlab.mixers.base import MIXERS, Mixer
from seqlab.ops.attention import attention, causal_mask
from seqlab.ops.attention.efficient import local_attention


@dataclass
class AttentionConfig:
    """Heads, backend (``sdpa`` fast path or ``naive`` reference), relative positions (``rope``:
    rotary q/k; ``alibi``: a per-head linear distance penalty −m_h·(i − j) on the scores; ``none``),
    projection biases, dropout on the attention weights; ``window`` W (0 = full causal attention,
    W ≥ 1: itself and the W − 1 previous tokens); ``num_kv_heads`` G (None = num_heads: standard
    multi-head attention; must divide num_heads)."""

    num_heads: int = 4
    backend: Literal["auto", "naive", "sdpa"] = "auto"
    positional: Literal["rope", "alibi", "none"] = "rope"
    rope_base: float = 10000.0
    bias: bool = False
    dropout: float = 0.0
    window: int = 0
    num_kv_heads: int | None = None

    def __post_init__(self) -> None:
        check_positive("num_heads", self.num_heads)
        check_positive("rope_base", self.rope_base)
        check_range("dropout", self.dropout, 0.0, 0.99)
        check_positive("window", self.window, allow_zero=True)
        if self.num_kv_heads is not None:
            check_positive("num_kv_heads", self.num_kv_heads)
            if self.num_heads % self.num_kv_heads:
                raise ConfigError(
                    f"num_kv_heads: {self.num_kv_heads} must divide num_heads={self.num_heads} "
                    f"(each key/value head serves a group of query heads)"
                )

    @property
    def kv_heads(self) -> int:
        """G, the number of key/value heads (num_heads unless grouped-query attention)."""
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads


class KVCache(NamedTuple):
    k: Tensor  # (B, G, S, K) rotated keys, zero at padded steps (G = H without grouped queries)
    v: Tensor  # (B, G, S, K) values, zero at padded steps
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
        self.num_kv_heads = c.kv_heads
        if c.positional == "rope" and self.head_dim % 2:
            raise ConfigError(
                f"attention: RoPE needs an even head dim, got d_model/num_heads={self.head_dim}"
            )
        # one projection [W_q; W_k; W_v]: (H + 2G)·K outputs (3·D without grouped queries)
        self.qkv = nn.Linear(d_model, (c.num_heads + 2 * self.num_kv_heads) * self.head_dim, bias=c.bias)
        self.out = nn.Linear(d_model, d_model, bias=c.bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        xavier_projections(self.qkv, self.out)

    def init_state(self, batch_size: int) -> KVCache:
        p = self.qkv.weight
        empty = p.new_zeros(batch_size, self.num_kv_heads, 0, self.head_dim)
        return KVCache(empty, empty.clone(), torch.zeros(batch_size, 0, dtype=torch.bool, device=p.device))

    def state_size(self, T: int = 1) -> int:
        """Floats cached per sequence after T tokens: keys and values, 2·G·K·T (grows with T)."""
        return 2 * self.num_kv_heads * self.head_dim * T

    def state_row(self, state: KVCache, b: int) -> tuple[Tensor, ...]:
        """Row b's cache without its padded slots (for comparing with a row run alone)."""
        keep = state.valid[b]
        return state.k[b][:, keep], state.v[b][:, keep]

    def forward(self, x: Tensor, state: KVCache | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), cache extended by the T new tokens)."""
        B, _ = self._check_x(x)
        state = self.init_state(B) if state is None else self._check_cache(state, B)
        real = self._real_tokens(mask, x)  # (B, T)
        # 1. project and split heads
        q, k, v = self._project(x)  # (B, H, T, K), (B, G, T, K), (B, G, T, K)
        # 2. positions count real tokens only (cache included), then rotate q and k
        pos = state.valid.sum(1, keepdim=True) + real.cumsum(1) - 1  # (B, T)
        q, k = self._rotate(q, pos), self._rotate(k, pos)
        keep = real[:, None, :, None]  # (B, 1, T, 1)
        k, v = k * keep, v * keep
        # 3. attend over cache + new tokens: causal, real keys only
        k_all, v_all = torch.cat([state.k, k], 2), torch.cat([state.v, v], 2)  # (B, G, S+T, K)
        valid = torch.cat([state.valid, real], 1)  # (B, S+T)
        return self._read(q, k_all, v_all, valid, real), KVCache(k_all, v_all, valid)

    @torch.no_grad()
    def attention_weights(self, x: Tensor) -> Tensor:
        """The attention probabilities of :meth:`forward` on x (B, T, D) from an empty cache, with
        its positions, window and ALiBi bias: (B, H, T, T), row t a distribution over keys 0..t
        (what a report's heatmaps show; the naive path, so it costs T² memory)."""
        B, T = self._check_x(x)
        real = torch.ones(B, T, dtype=torch.bool, device=x.device)
        q, k, v = self._project(x)  # (B, H, T, K), (B, G, T, K), (B, G, T, K)
        pos = real.long().cumsum(1) - 1  # (B, T)
        q, k = self._rotate(q, pos), self._rotate(k, pos)
        H, G = self.num_heads, self.num_kv_heads
        k, v = (t.repeat_interleave(H // G, dim=1) if G < H else t for t in (k, v))  # (B, H, T, K)
        bias = self._alibi(real, T) if self.config.positional == "alibi" else None
        return attention(q, k, v, self._allowed(real, T), bias=bias, backend="naive", need_weights=True)[1]

    @staticmethod
    def _real_tokens(mask: Tensor | None, x: Tensor) -> Tensor:
        """(B, T) bool: the real tokens of x (B, T, D), all of them without a mask."""
        B, T = x.shape[:2]
        if mask is None:
            return torch.ones(B, T, dtype=torch.bool, device=x.device)
        if mask.shape != (B, T):
            raise ShapeError(f"attention: expected mask of shape ({B}, {T}), got {tuple(mask.shape)}")
        return mask.bool()

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, D) -> q (B, H, T, K), k (B, G, T, K), v (B, G, T, K)."""
        B, T, _ = x.shape
        H, G, K = self.num_heads, self.num_kv_heads, self.head_dim
        q, k, v = self.qkv(x).split([H * K, G * K, G * K], -1)
        q = q.view(B, T, H, K).transpose(1, 2)  # (B, H, T, K)
        k, v = (t.view(B, T, G, K).transpose(1, 2) for t in (k, v))  # each (B, G, T, K)
        return q, k, v

    def _rotate(self, t: Tensor, pos: Tensor) -> Tensor:
        """RoPE on t (B, ·, T, K) at positions (B, T) (−1 before a row's first real token); else t."""
        if self.config.positional != "rope":
            return t
        return rope(t, pos.clamp(min=0), self.config.rope_base)

    def _read(self, q: Tensor, k: Tensor, v: Tensor, valid: Tensor, real: Tensor) -> Tensor:
        """q (B, H, T, K) over k, v (B, G, S+T, K) -> y (B, T, D), zero at padded queries."""
        B, H, T, _ = q.shape
        G = k.shape[1]
        # query head h reads key/value head ⌊h·G/H⌋
        k, v = (t.repeat_interleave(H // G, dim=1) if G < H else t for t in (k, v))  # (B, H, S+T, K)
        y = self._attend(q, k, v, valid, real)  # (B, H, T, K)
        return self.out(y.transpose(1, 2).reshape(B, T, self.d_model)) * real[..., None]  # (B, T, D)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, valid: Tensor, real: Tensor) -> Tensor:
        """q (B, H, T, K) over k, v (B, H, S+T, K) -> (B, H, T, K), by backend and options."""
        c, T = self.config, q.shape[2]
        fast = c.backend != "naive"
        if fast and not c.window and c.positional != "alibi" and k.shape[2] == T and bool(real.all()):
            # no cache, no padding, no bias: the kernel's own causal mode (skips the masked half)
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self._dropout(), is_causal=True)
        if fast and c.window:
            return self._windowed(q, k, v, valid, real)
        allowed = self._allowed(valid, T)  # (B, 1, T, S+T)
        bias = self._alibi(valid, T) if c.positional == "alibi" else None
        backend = "naive" if c.backend == "naive" else "sdpa"
        return attention(q, k, v, allowed, self._dropout(), bias=bias, backend=backend)[0]

    def _dropout(self) -> float:
        return self.config.dropout if self.training else 0.0

    def _allowed(self, valid: Tensor, T: int) -> Tensor:
        """(B, 1, T, S+T) bool: causal, real keys, and (window W) fewer than W real tokens back."""
        allowed = causal_mask(T, valid.shape[1], valid.device)[None, None] & valid[:, None, None, :]
        if self.config.window:
            key_pos = valid.long().cumsum(1) - 1  # (B, S+T) positions counting real tokens
            back = key_pos[:, -T:, None] - key_pos[:, None, :]  # (B, T, S+T)
            allowed = allowed & (back < self.config.window)[:, None]
        return allowed

    def _windowed(self, q: Tensor, k: Tensor, v: Tensor, valid: Tensor, real: Tensor) -> Tensor:
        """Sliding-window attention in blocks. The blocked op measures distance in slots, so
        padded slots are first moved to the front (a stable sort): real keys end up contiguous at
        the right and the j-th real new token sits T slots before the end of both q and k."""
        moved = not bool(valid.all())
        if moved:
            order_k = torch.sort(valid.int(), dim=1, stable=True).indices  # (B, S+T)
            order_q = torch.sort(real.int(), dim=1, stable=True).indices  # (B, T)
            k, v = (t.gather(2, order_k[:, None, :, None].expand_as(t)) for t in (k, v))  # (B, H, S+T, K)
            valid = valid.gather(1, order_k)  # (B, S+T)
            q = q.gather(2, order_q[:, None, :, None].expand_as(q))  # (B, H, T, K)
        slopes = alibi_slopes(self.num_heads) if self.config.positional == "alibi" else None
        window, dropout = self.config.window, self._dropout()
        y = local_attention(
            q, k, v, window, key_valid=valid, slopes=slopes, dropout_p=dropout
        )  # (B, H, T, K)
        if moved:  # back to the input order
            y = y.gather(2, order_q.argsort(1)[:, None, :, None].expand_as(y))  # (B, H, T, K)
        return y

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
        want = (B, self.num_kv_heads, state.k.shape[2] if state.k.dim() == 4 else -1, self.head_dim)
        if (
            tuple(state.k.shape) != want
            or state.v.shape != state.k.shape
            or state.valid.shape != (B, want[2])
        ):
            raise ShapeError(
                f"attention: expected state.k/v of shape (B={B}, G={self.num_kv_heads}, S, "
                f"K={self.head_dim}) and state.valid (B, S), got {tuple(state.k.shape)}, "
                f"{tuple(state.v.shape)}, {tuple(state.valid.shape)}"
            )
        return state
