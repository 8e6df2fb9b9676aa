"""``seqlab.nn.MultiheadAttention``: a drop-in for ``torch.nn.MultiheadAttention``.

Shape legend: B batch · L query length · S key length · E embed dim · H heads · K = E / H.

    MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O,  head_i = softmax(Q W_i^Q (K W_i^K)ᵀ / √K) V W_i^V

Same constructor arguments, ``state_dict`` keys (``in_proj_weight`` / ``q_proj_weight`` …,
``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``) and outputs as torch. Differences:
``batch_first`` defaults to True; a query whose keys are all masked returns zeros, not NaN;
``is_causal=True`` without ``attn_mask`` builds the causal mask; ``add_bias_kv`` /
``add_zero_attn`` are not supported yet (a clear error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError
from seqlab.ops.attention import attention, causal_mask


class MultiheadAttention(nn.Module):
    """Multi-head attention with torch's parameters and semantics (see the module docstring).

    Masks follow torch: in ``key_padding_mask`` (B, S) and ``attn_mask`` (L, S) or (B·H, L, S),
    bool True means *not allowed*; float masks are added to the scores.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
        device=None,
        dtype=None,
        *,
        backend: str = "sdpa",
    ) -> None:
        super().__init__()
        if not isinstance(embed_dim, int) or not isinstance(num_heads, int) or embed_dim < 1 or num_heads < 1:
            raise ConfigError(f"expected positive embed_dim and num_heads, got {embed_dim!r}, {num_heads!r}")
        if embed_dim % num_heads:
            raise ConfigError(f"num_heads={num_heads} must divide embed_dim={embed_dim}")
        if add_bias_kv or add_zero_attn:
            raise ConfigError(
                "add_bias_kv / add_zero_attn are not supported by seqlab.nn.MultiheadAttention yet"
            )
        if backend not in ("sdpa", "naive"):
            raise ConfigError(f"backend: expected 'sdpa' or 'naive', got {backend!r}")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.backend = dropout, batch_first, backend
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As torch: Xavier-uniform projections, zero biases."""
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            wq, wk, wv = self.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query (B, L, E), key (B, S, kdim), value (B, S, vdim) -> (output (B, L, E), weights).

        weights: (B, L, S) averaged over heads, or (B, H, L, S) with ``average_attn_weights=False``;
        None unless ``need_weights``.
        """
        batched = query.dim() == 3
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ShapeError(
                f"expected query/key/value of rank 3 (batched) or 2, got "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        B, L, _ = query.shape
        S = key.shape[1]
        if query.shape[-1] != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(
                f"expected feature sizes (E, kdim, vdim) = ({self.embed_dim}, {self.kdim}, "
                f"{self.vdim}), got ({query.shape[-1]}, {key.shape[-1]}, {value.shape[-1]})"
            )
        H, K = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        q = q.view(B, L, H, K).transpose(1, 2)  # (B, H, L, K)
        k = k.view(B, S, H, K).transpose(1, 2)  # (B, H, S, K)
        v = v.view(B, S, H, K).transpose(1, 2)  # (B, H, S, K)
        allowed, bias = self._masks(key_padding_mask, attn_mask, is_causal, B, L, S, q)
        out, weights = attention(
            q,
            k,
            v,
            allowed,
            self.dropout if self.training else 0.0,
            bias=bias,
            backend=self.backend,
            need_weights=need_weights,
        )
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))  # (B, L, E)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)  # (B, L, S)
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _masks(self, key_padding_mask, attn_mask, is_causal, B, L, S, q):
        """torch's masks (True = blocked, or additive floats) -> (allowed bool, additive bias)."""
        allowed = bias = None
        H = self.num_heads

        def add(mask: Tensor, shape_ok: bool, label: str, view: tuple) -> None:
            nonlocal allowed, bias
            if not shape_ok:
                raise ShapeError(f"expected {label}, got shape {tuple(mask.shape)}")
            mask = mask.view(view)
            if mask.dtype == torch.bool:
                allowed = ~mask if allowed is None else allowed & ~mask
            else:
                mask = mask.to(q.dtype)
                bias = mask if bias is None else bias + mask

        if key_padding_mask is not None:
            add(
                key_padding_mask,
                tuple(key_padding_mask.shape) == (B, S),
                f"key_padding_mask of shape ({B}, {S})",
                (B, 1, 1, S),
            )
        if attn_mask is None and is_causal:
            attn_mask = ~causal_mask(L, S, q.device)
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                add(
                    attn_mask,
                    tuple(attn_mask.shape) == (L, S),
                    f"attn_mask of shape ({L}, {S})",
                    (1, 1, L, S),
                )
            else:
                ok = tuple(attn_mask.shape) == (B * H, L, S)
                add(attn_mask, ok, f"attn_mask of shape ({L}, {S}) or ({B * H}, {L}, {S})", (B, H, L, S))
        return allowed, bias
