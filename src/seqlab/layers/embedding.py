"""Token embeddings with absolute positions, as the Transformer family uses them.

Shape legend: B batch · T time · D model width · V vocabulary.

    x = E[tokens] · (√D if scaled) + P[positions],  then dropout

``P`` is the sinusoidal table (Vaswani et al. 2017, §3.5), a learned table of ``max_len`` rows
(BERT, GPT-2), or nothing (positions come from RoPE/ALiBi inside attention).
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from seqlab.errors import ShapeError
from seqlab.layers.positional import sinusoidal

Positional = Literal["sinusoidal", "learned", "none"]


class TokenEmbedding(nn.Module):
    """``forward(tokens (B, T), positions (B, T)) -> (B, T, D)``; ids and positions checked."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        positional: Positional = "sinusoidal",
        max_len: int = 512,
        dropout: float = 0.0,
        scaled: bool = False,
        name: str = "inputs",
    ) -> None:
        super().__init__()
        self.vocab_size, self.d_model, self.positional, self.max_len = (
            vocab_size,
            d_model,
            positional,
            max_len,
        )
        self.scale = math.sqrt(d_model) if scaled else 1.0
        self.name = name
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model) if positional == "learned" else None
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, D^-½) when scaled by √D (unit scale after scaling, like the sinusoids); else N(0, 0.02)."""
        nn.init.normal_(self.tokens.weight, std=self.d_model**-0.5 if self.scale != 1.0 else 0.02)
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=0.02)

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ShapeError(
                f"{self.name}: expected token ids of shape (B, T), got {tokens.dtype} {tuple(tokens.shape)}"
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            low, high = int(tokens.min()), int(tokens.max())
            raise ShapeError(f"{self.name}: token ids must be in [0, {self.vocab_size}), got [{low}, {high}]")
        x = self.tokens(tokens) * self.scale  # (B, T, D)
        positions = positions.clamp(min=0)  # padded slots before a row's first real token
        if self.positional == "learned":
            if positions.numel() and int(positions.max()) >= self.max_len:
                raise ShapeError(
                    f"{self.name}: position {int(positions.max())} is beyond the learned position table "
                    f"(max_len={self.max_len}); raise model.max_len or use shorter inputs"
                )
            x = x + self.positions(positions)
        elif self.positional == "sinusoidal":
            x = x + sinusoidal(positions, self.d_model).to(x.dtype)
        return self.dropout(x)
