"""Bidirectional (encoder) self-attention, by kind: every real token attends to real tokens.

Shape legend: B batch · T time · D model width · H heads · K = D / H.

    y = softmax(q kᵀ / √K + M) v W_o,   q, k, v = x W_q, x W_k, x W_v (split into H heads)

M is −∞ at padded keys (``mask`` False); padded queries produce zeros. Every kind registered in
:data:`SELF_ATTENTION` takes ``(d_model, config)`` and implements ``forward(x, mask=None) -> y``
(B, T, D), so encoder layers can swap the exact form for an efficient one by name:

    full       exact softmax attention                          O(T²) time
    local      exact within a window W, plus G global tokens    O(T·(W + G)) time and memory
               (Longformer / BigBird pattern; a different model than full attention)
    performer  FAVOR+ random features (Choromanski et al. 2021)   O(T·M·K): approximates softmax
    linformer  keys/values projected along time to P rows         O(T·P·K): approximate, non-causal,
               (Wang et al. 2020); needs T ≤ max_len               learned E, F tie it to max_len
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.init import xavier_projections
from seqlab.ops.attention import attention
from seqlab.ops.attention.efficient import linformer_attention, local_attention, local_mask
from seqlab.ops.attention.favor import performer_attention, random_features
from seqlab.registry import Registry

SELF_ATTENTION: Registry[type[nn.Module]] = Registry("self-attention kind")


@dataclass
class SelfAttentionConfig:
    """Which form of attention (``kind``), heads, backend of the exact form, dropout on weights.

    Attributes:
        kind: a name registered in :data:`SELF_ATTENTION` (``full`` is exact softmax attention).
        num_heads: H; must divide d_model.
        backend: ``sdpa`` (fast path), ``naive`` (the reference) or ``auto`` (= sdpa); for
            ``local``, naive is full attention with the dense band mask and sdpa the blocked form;
            ``performer`` has one form (no weights are formed, so no dropout either).
        dropout: dropout on the attention weights (training only).
        bias: biases in the q/k/v/output projections.
        window: ``local``: W, each token attends to the W − 1 tokens on either side and itself.
        global_tokens: ``local``: G, the first G positions (e.g. [CLS]) attend to and are
            attended by every token.
        num_features: ``performer``: M random features per head.
        proj_len: ``linformer``: P, the length keys and values are projected to.
        max_len: ``linformer``: the longest sequence the learned projections accept.
    """

    kind: str = "full"
    num_heads: int = 8
    backend: Literal["auto", "naive", "sdpa"] = "auto"
    dropout: float = 0.0
    bias: bool = True
    window: int = 128
    global_tokens: int = 0
    num_features: int = 64
    proj_len: int = 64
    max_len: int = 512

    def __post_init__(self) -> None:
        SELF_ATTENTION.get(self.kind)  # unknown kinds list the choices
        check_positive("num_heads", self.num_heads)
        check_range("dropout", self.dropout, 0.0, 0.99)
        for name in ("window", "num_features", "proj_len", "max_len"):
            check_positive(name, getattr(self, name))
        check_positive("global_tokens", self.global_tokens, allow_zero=True)


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
        xavier_projections(self.qkv, self.out)

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


@SELF_ATTENTION.register("local")
class LocalSelfAttention(_Heads):
    """Sliding-window attention with global tokens: exact softmax over each token's window
    (|i − j| < W) and the first G tokens; O(T·(W + G)) time and memory in the blocked form.
    Windows are measured in positions, so pad at the end (as the batching does)."""

    def __init__(self, d_model: int, config: SelfAttentionConfig | None = None) -> None:
        super().__init__(d_model, config or SelfAttentionConfig(kind="local"))
        self.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = check_inputs(x, mask, self.d_model, "local self-attention")
        q, k, v = self.split(x)  # each (B, H, T, K)
        c, T = self.config, x.shape[1]
        dropout = c.dropout if self.training else 0.0
        if c.backend == "naive":  # the reference: full attention with the dense band mask
            allowed = local_mask(T, T, c.window, c.global_tokens, causal=False, device=x.device)
            y, _ = attention(q, k, v, allowed[None, None] & mask[:, None, None, :], dropout, backend="naive")
        else:
            y = local_attention(
                q, k, v, c.window, c.global_tokens, causal=False, key_valid=mask, dropout_p=dropout
            )
        return self.merge(y, mask)


@SELF_ATTENTION.register("performer")
class PerformerSelfAttention(_Heads):
    """FAVOR+ (Choromanski et al. 2021): φ(q)ᵀ Σ φ(k) vᵀ / φ(q)ᵀ Σ φ(k) with M positive orthogonal
    random features, an unbiased estimate of the softmax kernel; the attention itself is only
    approximated (error ~ 1/√M). O(T·M·K) time and memory. The features ω are a buffer (saved
    with the weights); they change only when :meth:`redraw_features` is called."""

    def __init__(self, d_model: int, config: SelfAttentionConfig | None = None) -> None:
        super().__init__(d_model, config or SelfAttentionConfig(kind="performer"))
        self.register_buffer("omega", torch.empty(self.config.num_features, self.head_dim))  # (M, K)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.redraw_features()

    @torch.no_grad()
    def redraw_features(self, generator: torch.Generator | None = None) -> None:
        """Draw new orthogonal random features ω (M, K)."""
        self.omega.copy_(random_features(self.config.num_features, self.head_dim, generator=generator))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = check_inputs(x, mask, self.d_model, "performer self-attention")
        q, k, v = self.split(x)  # each (B, H, T, K)
        return self.merge(performer_attention(q, k, v, self.omega.to(x.dtype), mask), mask)


@SELF_ATTENTION.register("linformer")
class LinformerSelfAttention(_Heads):
    """Linformer (Wang et al. 2020): softmax(q (E k)ᵀ / √K) (F v) with learned E, F (P, max_len)
    shared by the heads; padded keys are zeroed before the projection. Non-causal (each projected
    key mixes the whole sequence) and approximate; O(T·P·K) time and memory. A sequence longer than
    ``max_len`` is an error."""

    def __init__(self, d_model: int, config: SelfAttentionConfig | None = None) -> None:
        super().__init__(d_model, config or SelfAttentionConfig(kind="linformer"))
        shape = (self.config.proj_len, self.config.max_len)
        self.proj_k, self.proj_v = nn.Parameter(torch.empty(shape)), nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for p in (self.proj_k, self.proj_v):  # as fairseq's Linformer: xavier, gain 1/√2
            nn.init.xavier_uniform_(p, gain=2**-0.5)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = check_inputs(x, mask, self.d_model, "linformer self-attention")
        q, k, v = self.split(x)  # each (B, H, T, K)
        backend = "naive" if self.config.backend == "naive" else "sdpa"
        dropout = self.config.dropout if self.training else 0.0
        y = linformer_attention(q, k, v, self.proj_k, self.proj_v, mask, dropout_p=dropout, backend=backend)
        return self.merge(y, mask)


def build_self_attention(d_model: int, config: SelfAttentionConfig) -> nn.Module:
    return SELF_ATTENTION.get(config.kind)(d_model, config)
