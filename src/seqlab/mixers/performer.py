"""Causal Performer (FAVOR+ linear attention, Choromanski et al. 2021) as a recurrent mixer.

Shape legend: B batch · T time · D model width · H heads · K = D / H · M random features.

    q, k, v = x W_q, x W_k, x W_v                       (split into H heads)
    φ(x) = exp(ω x' − ‖x'‖²/2) / √M,  x' = x / K^{1/4}  (ω: M fixed orthogonal random features)
    S_t = S_{t−1} + φ(k_t) v_tᵀ,   z_t = z_{t−1} + φ(k_t)
    y_t = φ(q_t)ᵀ S_t / φ(q_t)ᵀ z_t,   out = y W_o

φ(q)·φ(k) is an unbiased estimate of exp(q·k/√K), so this approximates causal softmax attention
(error ~ 1/√M; it is a different model, not a faster exact one). The state (S, z) is carried
stabilised, as e^{−m} times the sums with m the running max of the key exponents (see
:mod:`seqlab.ops.attention.favor`), so ``step`` costs O(H·M·K) per token whatever the context
length — unlike the growing KV cache of softmax attention. No positional encoding is built in:
causality is the only order information (use absolute positions in the model if needed).

Backends: ``chunked`` (exact products inside chunks of ``chunk_size``, prefix sums between them;
O(T) memory) and ``naive`` (the token-by-token recurrence). The random features are a buffer,
saved with the weights, and change only when :meth:`PerformerMixer.redraw_features` is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from seqlab.config import check_positive
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.init import xavier_projections
from seqlab.mixers.base import MIXERS, Mixer
from seqlab.ops.attention.favor import (
    init_favor_state,
    performer_attention_causal,
    performer_attention_recurrent,
    random_features,
)


@dataclass
class PerformerConfig:
    """Heads, random features M per head (shared by the heads), orthogonal (ORF) or i.i.d.
    features, backend and chunk size of the chunked form, projection biases."""

    num_heads: int = 4
    num_features: int = 64
    orthogonal: bool = True
    backend: Literal["auto", "naive", "chunked"] = "auto"
    chunk_size: int = 64
    bias: bool = False

    def __post_init__(self) -> None:
        check_positive("num_heads", self.num_heads)
        check_positive("num_features", self.num_features)
        check_positive("chunk_size", self.chunk_size)


class PerformerState(NamedTuple):
    S: Tensor  # (B, H, M, K) e^{−m} Σ_j φ(k_j) v_jᵀ over real tokens
    z: Tensor  # (B, H, M) e^{−m} Σ_j φ(k_j)
    m: Tensor  # (B, H) stabiliser: running max of the key exponents (−∞ before any real token)


@MIXERS.register("performer")
class PerformerMixer(Mixer):
    """Causal FAVOR+ linear attention: constant-size state, approximate softmax attention."""

    Config = PerformerConfig
    State = PerformerState
    BACKENDS = ("naive", "chunked")

    def __init__(self, d_model: int, config=None) -> None:
        super().__init__(d_model, config)
        c = self.config
        if d_model % c.num_heads:
            raise ConfigError(f"performer: num_heads={c.num_heads} must divide d_model={d_model}")
        self.num_heads, self.head_dim = c.num_heads, d_model // c.num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=c.bias)
        self.out = nn.Linear(d_model, d_model, bias=c.bias)
        self.register_buffer("omega", torch.empty(c.num_features, self.head_dim))  # (M, K)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        xavier_projections(self.qkv, self.out)
        self.redraw_features()

    @torch.no_grad()
    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Draw new random features ω (M, K); the only way they change (eval is deterministic)."""
        c = self.config
        omega = random_features(c.num_features, self.head_dim, orthogonal=c.orthogonal, generator=generator)
        self.omega.copy_(omega)

    def init_state(self, batch_size: int) -> PerformerState:
        p = self.qkv.weight
        M = self.config.num_features
        return PerformerState(*init_favor_state(batch_size, self.num_heads, M, self.head_dim, p))

    def forward(self, x: Tensor, state: PerformerState | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), state after the T tokens); padded tokens give zeros."""
        B, T = self._check_x(x)
        H, K = self.num_heads, self.head_dim
        state = self.init_state(B) if state is None else self._check_state(state, B)
        real = torch.ones(B, T, dtype=torch.bool, device=x.device) if mask is None else mask.bool()
        if real.shape != (B, T):
            raise ShapeError(f"performer: expected mask of shape ({B}, {T}), got {tuple(real.shape)}")
        # 1. project, split heads, zero padded tokens (their values must not reach exp)
        qkv = self.qkv(x) * real[..., None]  # (B, T, 3D)
        q, k, v = qkv.view(B, T, 3, H, K).permute(2, 0, 3, 1, 4)  # each (B, H, T, K)
        # 2. causal linear attention carried through the state
        omega = self.omega.to(x.dtype)
        if self.config.backend == "naive":
            y, new = performer_attention_recurrent(q, k, v, omega, real, tuple(state))
        else:
            y, new = performer_attention_causal(q, k, v, omega, real, tuple(state), self.config.chunk_size)
        # 3. merge heads, output projection, zero at padding
        y = self.out(y.transpose(1, 2).reshape(B, T, self.d_model)) * real[..., None]  # (B, T, D)
        return y, PerformerState(*new)

    def state_shapes(self, batch_size: int) -> tuple[tuple[int, ...], ...]:
        B, H, M, K = batch_size, self.num_heads, self.config.num_features, self.head_dim
        return (B, H, M, K), (B, H, M), (B, H)
