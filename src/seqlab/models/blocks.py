"""A residual block around one mixer: ``x + drop(mixer(norm(x)))`` then ``x + drop(ffn(norm(x)))``.

Shape legend: B batch · T time · D model width.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor, nn

from seqlab.layers import FeedForward, build_norm
from seqlab.mixers import build_mixer
from seqlab.models.config import FFNConfig


class Block(nn.Module):
    """Pre-norm residual block; with ``residual=False`` it is a plain stacked layer."""

    def __init__(
        self,
        d_model: int,
        mixer: str,
        mixer_config: Any,
        ffn: FFNConfig,
        dropout: float,
        norm: str,
        residual: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.norm1 = build_norm(norm, d_model)
        self.mixer = build_mixer(mixer, d_model, mixer_config)
        self.ffn = FeedForward(d_model, ffn.d_ff, ffn.activation, dropout, ffn.bias) if ffn.d_ff else None
        self.norm2 = build_norm(norm, d_model) if ffn.d_ff else None
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, state: NamedTuple | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, NamedTuple]:
        """x (B, T, D) -> (y (B, T, D), mixer state)."""
        y, state = self.mixer(self.norm1(x), state, mask=mask)
        x = x + self.dropout(y) if self.residual else self.dropout(y)
        if self.ffn is not None:
            x = x + self.dropout(self.ffn(self.norm2(x)))
        return x, state

    def step(self, x_t: Tensor, state: NamedTuple | None) -> tuple[Tensor, NamedTuple]:
        """One token x_t (B, D) -> (y_t (B, D), state)."""
        y, state = self.mixer.step(self.norm1(x_t), state)
        x_t = x_t + self.dropout(y) if self.residual else self.dropout(y)
        if self.ffn is not None:
            x_t = x_t + self.dropout(self.ffn(self.norm2(x_t)))
        return x_t, state
