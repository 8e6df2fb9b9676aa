"""Task heads on top of an encoder's hidden states (BERT-style fine-tuning).

Shape legend: B batch · T time · D model width · C classes · V vocabulary.

* :class:`MaskedLMHead` — ``gelu(h W + b)`` → LayerNorm → ``· Eᵀ + b_V`` (tied to the embedding);
* :class:`Pooler` + :class:`SequenceClassificationHead` — one label per sequence from the [CLS]
  vector (``tanh(h_0 W + b)``, BERT's pooler) or the mean of the real tokens' vectors;
* :class:`TokenClassificationHead` — one label per token (tagging);
* :class:`SpanExtractionHead` — start/end logits per token (extractive QA), and
  :func:`best_span` which picks ``argmax_{i ≤ j < i + L} start_i + end_j``.
Padded positions (``mask`` False) never contribute: mean pooling ignores them and span logits
are −∞ there.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError


class MaskedLMHead(nn.Module):
    """Transform then project onto the vocabulary; ``weight`` is usually the token embedding."""

    def __init__(self, d_model: int, vocab_size: int, weight: nn.Parameter | None = None) -> None:
        super().__init__()
        self.transform = nn.Linear(d_model, d_model)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Linear(d_model, vocab_size)
        if weight is not None:
            self.decoder.weight = weight
        nn.init.zeros_(self.decoder.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.decoder(self.norm(self.act(self.transform(hidden))))  # (B, T, V)


class Pooler(nn.Module):
    """(B, T, D) -> (B, D): ``cls`` = tanh(h_0 W + b) (BERT), ``mean`` = mean of real tokens."""

    def __init__(self, d_model: int, pooling: Literal["cls", "mean"] = "cls") -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ConfigError(f"pooling: expected 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.dense = nn.Linear(d_model, d_model) if pooling == "cls" else None

    def forward(self, hidden: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.pooling == "cls":
            return torch.tanh(self.dense(hidden[:, 0]))
        if mask is None:
            return hidden.mean(1)
        weights = mask.to(hidden.dtype)[..., None]  # (B, T, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class SequenceClassificationHead(nn.Module):
    """Pool, dropout, linear: (B, T, D) -> (B, C)."""

    def __init__(self, d_model: int, num_classes: int, pooling: str = "cls", dropout: float = 0.1) -> None:
        super().__init__()
        self.pool = Pooler(d_model, pooling)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, num_classes)

    def forward(self, hidden: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.out(self.dropout(self.pool(hidden, mask)))


class TokenClassificationHead(nn.Module):
    """Dropout, linear per token: (B, T, D) -> (B, T, C)."""

    def __init__(self, d_model: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, num_labels)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.out(self.dropout(hidden))


class SpanExtractionHead(nn.Module):
    """(B, T, D) -> start and end logits, each (B, T), −∞ at padded positions."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.out = nn.Linear(d_model, 2)

    def forward(self, hidden: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        start, end = self.out(hidden).unbind(-1)  # each (B, T)
        if mask is not None:
            start, end = start.masked_fill(~mask, float("-inf")), end.masked_fill(~mask, float("-inf"))
        return start, end


def best_span(start: Tensor, end: Tensor, max_len: int = 30) -> tuple[Tensor, Tensor]:
    """The span (i, j), i ≤ j < i + max_len, maximising start_i + end_j; returns (B,) i and j."""
    if start.shape != end.shape or start.dim() != 2:
        raise ShapeError(f"expected start and end logits of one shape (B, T), got {start.shape}, {end.shape}")
    T = start.shape[1]
    scores = start[:, :, None] + end[:, None, :]  # (B, T, T): [b, i, j]
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    scores = scores.masked_fill(~((j >= i) & (j < i + max_len)).to(scores.device), float("-inf"))
    flat = scores.flatten(1).argmax(1)  # (B,)
    return flat // T, flat % T
