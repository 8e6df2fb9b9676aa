"""BERT-style bidirectional encoder with masked-LM (and next-sentence) pre-training heads.

Shape legend: B batch · T time · D model width · V vocabulary.

    h = Encoder(LayerNorm(E[x] + P[pos] + G[segment]))        (Devlin et al. 2019)
    outputs[b, t, :V] = MaskedLMHead(h[b, t])                  every position
    outputs[b, 0, V:] = NSP(tanh(h[b, 0] W + b))               2 logits, only with next_sentence

Every token sees every real token (no causal mask). The next-sentence head exists when the
task asks for it (its IOSpec has ``output_dim = V + 2``, e.g. ``mlm`` with ``next_sentence``);
its logits sit at the [CLS] position (0) — one (B, T, O) output, as every seqlab model returns.
For fine-tuning, use :meth:`BertModel.encode` with a head from :mod:`seqlab.models.heads`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.config import check_positive
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.embedding import TokenEmbedding
from seqlab.models.archs import ARCHS
from seqlab.models.heads import MaskedLMHead, Pooler
from seqlab.models.transformer_layers import EncoderStack, NormPosition, TransformerConfig
from seqlab.spec import IOSpec


@dataclass
class BertConfig(TransformerConfig):
    """Encoder-only Transformer (shared options: :class:`TransformerConfig`); BERT's choices by
    default: GELU, post-norm, learned positions. BERT-base is layers=12, d_model=768, heads=12,
    d_ff=3072, max_len=512.

    Attributes:
        layers: encoder layers.
        segments: size of the segment (token type) table; 0 = no segment embedding.
    """

    activation: str = "gelu"
    norm_position: NormPosition = "post"
    positional: Literal["sinusoidal", "learned"] = "learned"
    layers: int = 2
    segments: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("layers", self.layers)
        check_positive("segments", self.segments, allow_zero=True)


@ARCHS.register("bert")
class BertModel(nn.Module):
    """``forward(inputs, mask=, segments=) -> (outputs (B, T, O), None)``; no state to carry."""

    Config = BertConfig

    def __init__(self, config: BertConfig, io: IOSpec) -> None:
        super().__init__()
        V = io.vocab_size
        if V is None or io.is_seq2seq or io.output_dim not in (V, V + 2):
            raise ConfigError(
                "bert needs a masked-LM task: token inputs, outputs over the vocabulary "
                f"(+ 2 next-sentence logits), got {io}"
            )
        self.next_sentence = io.output_dim == V + 2
        if self.next_sentence and config.segments < 2:
            raise ConfigError("the next-sentence objective needs model.segments >= 2 (sentences A and B)")
        self.config, self.io = config, io
        c, D = config, config.d_model
        self.embed = TokenEmbedding(V, D, c.positional, c.max_len, dropout=0.0)
        self.segment = nn.Embedding(c.segments, D) if c.segments else None
        self.embed_norm = nn.LayerNorm(D)
        self.dropout = nn.Dropout(c.dropout)
        self.encoder = EncoderStack(c, c.layers)
        self.mlm = MaskedLMHead(D, V, self.embed.tokens.weight)
        if self.next_sentence:
            self.pooler = Pooler(D, "cls")
            self.nsp = nn.Linear(D, 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Segment table N(0, 0.02) like BERT's embeddings (the others initialise themselves)."""
        if self.segment is not None:
            nn.init.normal_(self.segment.weight, std=0.02)

    def encode(self, inputs: Tensor, mask: Tensor | None = None, segments: Tensor | None = None) -> Tensor:
        """inputs (B, T) ids, mask (B, T) real tokens, segments (B, T) ids -> hidden (B, T, D)."""
        B, T = inputs.shape if inputs.dim() == 2 else (0, inputs.shape[-1])
        x = self.embed(inputs, torch.arange(T, device=inputs.device).expand(B, T))
        if segments is not None:
            if self.segment is None or tuple(segments.shape) != (B, T):
                raise ShapeError(
                    f"segments: expected ids of shape ({B}, {T}) and a model with segments > 0, "
                    f"got {tuple(segments.shape)} (model.segments={self.config.segments})"
                )
            x = x + self.segment(segments)
        return self.encoder(self.dropout(self.embed_norm(x)), mask)

    def forward(
        self,
        inputs: Tensor,
        state: None = None,
        *,
        mask: Tensor | None = None,
        segments: Tensor | None = None,
    ) -> tuple[Tensor, None]:
        """inputs (B, T) -> (outputs (B, T, V [+ 2]), None)."""
        hidden = self.encode(inputs, mask, segments)  # (B, T, D)
        logits = self.mlm(hidden)  # (B, T, V)
        if self.next_sentence:
            nsp = torch.zeros(*logits.shape[:2], 2, dtype=logits.dtype, device=logits.device)
            nsp[:, 0] = self.nsp(self.pooler(hidden))  # (B, 2) at [CLS]
            logits = torch.cat([logits, nsp], dim=-1)
        return logits, None

    def num_params(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def state_size(self, T: int = 1) -> int:
        """An encoder carries no state between calls."""
        return 0
