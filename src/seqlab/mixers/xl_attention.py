"""Segment-level recurrence (Transformer-XL, Dai et al. 2019): causal self-attention over the
current segment plus a cached, gradient-stopped memory of the previous segments' hidden states.

Shape legend: B batch · T segment tokens · S memory slots · D model width · H heads · K = D / H ·
G kv heads · M mem_len.

For segment τ with inputs h_τ (the mixer's input, i.e. the layer input) and memory m_{τ−1}:

    h̃_τ = [SG(m_{τ−1}); h_τ]                       (concatenated along time; SG = stop-gradient)
    q = h_τ W_q,   k = h̃_τ W_k,   v = h̃_τ W_v         (keys/values recomputed with current weights)
    y_τ = softmax(q kᵀ / √K + M) v W_o     M: −∞ at future segment tokens and padding (and outside
                                           the window W > 0); every memory slot is in the past
    m_τ = the last M real rows of h̃_τ                (what the next call receives as its state)

Positions count real tokens from the memory start (memory slots 0..S'−1, segment tokens S'..),
and both RoPE and ALiBi depend on query − key only, so a memory slot sits where it would in one
long sequence. Transformer-XL's own relative encoding (R, u, v) is not built; RoPE and ALiBi are
relative encodings with the property the memory needs.

What follows (each proved in ``tests/test_segment_memory.py``):

- ``mem_len = 0``: no memory, each call attends within itself: the plain Transformer per segment.
- M ≥ the tokens seen: the same outputs as ``attention`` with its full KV cache (gradients stop
  at the segment boundary).
- window W with M ≥ W − 1: the same outputs as windowed ``attention`` over the whole stream, but
  with a state of at most M·D floats per row (a bounded rolling buffer; KVCache grows).
- otherwise every token sees its segment's past and M real tokens before the segment;
  ``step`` slides the memory one token at a time (each token sees the M before it).

Why a separate mixer and not a ``mem_len`` flag on ``attention``: the state type (this
:class:`SegmentMemory` instead of :class:`~seqlab.mixers.attention.KVCache`) and what a carried
state means (a truncated, gradient-stopped context instead of exact incremental decoding) differ,
and a state type that changes with a flag is what DESIGN.md §5 avoids; with ``State`` a class
attribute the contract suite checks each mixer honestly. The parameters are those of
``attention`` (same names), so weights move between the two with ``load_state_dict``.

Costs: every call projects the S memory slots again (as Transformer-XL does), so ``step`` costs
O((S + 1)·D²) per token, not the O(D² + S·D) of KV-cache decoding; the memory holds D floats per
slot where a KV cache holds 2·G·K. The state is detached whatever the mode, so a trainer can
carry it across truncated-BPTT windows as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from seqlab.config import check_positive
from seqlab.errors import ShapeError
from seqlab.mixers.attention import AttentionConfig, AttentionMixer
from seqlab.mixers.base import MIXERS


@dataclass
class XLAttentionConfig(AttentionConfig):
    """:class:`~seqlab.mixers.attention.AttentionConfig` plus ``mem_len`` M ≥ 0: the real tokens
    of inputs carried to the next call (0: every call attends within itself only)."""

    mem_len: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("mem_len", self.mem_len, allow_zero=True)


class SegmentMemory(NamedTuple):
    h: Tensor  # (B, S, D) inputs of the last real tokens, detached; zeros in empty slots
    valid: Tensor  # (B, S) bool: filled slots, at the end of each row (empty slots first)


def keep_last(h: Tensor, valid: Tensor, n: int) -> SegmentMemory:
    """The last n real rows of every sequence, in order and right-aligned.

    Args:
        h: (B, S, D) rows.
        valid: (B, S) bool, the real rows.
        n: how many to keep, n ≥ 0.

    Returns:
        SegmentMemory of width min(n, S): row b's last min(n, count_b) real rows at the end,
        empty slots (zeros, valid False) before them. The width depends on S only (no host
        sync), so split and whole inputs give the same layout.
    """
    B, S, D = h.shape
    width = min(n, S)
    # 1. a real row is kept when fewer than n real rows follow it
    after = valid.flip(1).cumsum(1).flip(1)  # (B, S): real rows at or after each slot
    kept = valid & (after <= n)  # (B, S)
    # 2. a stable sort moves the kept rows, in order, to the last `width` slots
    order = torch.sort(kept.int(), dim=1, stable=True).indices[:, S - width :]  # (B, width)
    filled = kept.gather(1, order)  # (B, width)
    rows = h.gather(1, order[..., None].expand(B, width, D))  # (B, width, D)
    return SegmentMemory(rows.masked_fill(~filled[..., None], 0.0), filled)


@MIXERS.register("xl-attention")
class XLAttentionMixer(AttentionMixer):
    """Attention with a Transformer-XL memory: ``forward(x, memory, mask) -> (y, SegmentMemory)``.

    Every :class:`~seqlab.mixers.attention.AttentionConfig` option (RoPE/ALiBi/none, window,
    grouped-query heads, backends, dropout) works with the memory.
    """

    Config = XLAttentionConfig
    State = SegmentMemory

    def init_state(self, batch_size: int) -> SegmentMemory:
        p = self.qkv.weight
        empty = torch.zeros(batch_size, 0, dtype=torch.bool, device=p.device)
        return SegmentMemory(p.new_zeros(batch_size, 0, self.d_model), empty)

    def state_size(self, T: int = 1) -> int:
        """Floats carried per sequence after T tokens: D·min(T, M), bounded by the memory."""
        return self.d_model * min(T, self.config.mem_len)

    def state_row(self, state: SegmentMemory, b: int) -> tuple[Tensor, ...]:
        """Row b's remembered inputs without the empty slots, (count, D)."""
        return (state.h[b][state.valid[b]],)

    def forward(self, x: Tensor, state: SegmentMemory | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), memory of the last ``mem_len`` real inputs).

        Args:
            x: (B, T, D) the segment's inputs.
            state: the previous call's memory, or None (empty).
            mask: (B, T) bool, real tokens; padded ones are never attended to or remembered.

        Returns:
            y (B, T, D), zero at padded tokens, and the new :class:`SegmentMemory` (detached).
        """
        B, T = self._check_x(x)
        state = self.init_state(B) if state is None else self._check_memory(state, B)
        real = self._real_tokens(mask, x)  # (B, T)
        # 1. h̃ = [SG(m); h]: the memory, gradient stopped, then the segment (padding zeroed)
        h = torch.cat([state.h.detach(), x.masked_fill(~real[..., None], 0.0)], 1)  # (B, S+T, D)
        valid = torch.cat([state.valid, real], 1)  # (B, S+T)
        # 2. keys and values of memory and segment; queries of the segment (one projection)
        q, k, v = self._project(h)  # (B, H, S+T, K), (B, G, S+T, K), (B, G, S+T, K)
        q = q[:, :, -T:]  # (B, H, T, K)
        # 3. positions count real tokens from the memory start: scores see distances only
        pos = valid.long().cumsum(1) - 1  # (B, S+T)
        q, k = self._rotate(q, pos[:, -T:]), self._rotate(k, pos)
        # 4. causal within the segment, every real memory slot in the past (padded keys masked)
        y = self._read(q, k, v, valid, real)  # (B, T, D)
        # 5. the next memory: the last M real rows of h̃
        return y, keep_last(h.detach(), valid, self.config.mem_len)

    def _check_memory(self, state: SegmentMemory, B: int) -> SegmentMemory:
        if not isinstance(state, SegmentMemory):
            raise ShapeError(f"xl-attention: expected a SegmentMemory state, got {type(state).__name__}")
        S, M = (state.h.shape[1] if state.h.dim() == 3 else -1), self.config.mem_len
        if tuple(state.h.shape) != (B, S, self.d_model) or state.valid.shape != (B, S) or S > M:
            raise ShapeError(
                f"xl-attention: expected state.h of shape (B={B}, S ≤ mem_len={M}, D={self.d_model}) "
                f"and state.valid (B, S), got {tuple(state.h.shape)} and {tuple(state.valid.shape)}"
            )
        return state
