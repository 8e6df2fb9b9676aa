"""The encoder-decoder Transformer (Vaswani et al. 2017) for sequence-to-sequence tasks.

Shape legend: B batch · S source time · T target time · D model width · V target vocabulary.

    memory = Encoder(√D·E_src[source] + PE)                         N encoder layers
    logits = Decoder(√D·E_tgt[inputs] + PE, memory) W_outᵀ          N decoder layers

Teacher forcing: ``inputs`` are the target shifted right (BOS y_1 … y_{n−1}), the loss is on
y_1 … y_n EOS. Incremental decoding: :meth:`start` encodes the source once and precomputes every
decoder layer's cross-attention keys/values; :meth:`step` feeds one token using the per-layer
self-attention KV caches, and equals the full teacher-forced forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqlab.config import check_positive
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers import build_norm
from seqlab.layers.embedding import TokenEmbedding
from seqlab.models.archs import ARCHS, check_seq2seq_io
from seqlab.models.transformer_layers import DecoderLayer, EncoderStack, TransformerConfig
from seqlab.spec import IOSpec


@dataclass
class Seq2SeqConfig(TransformerConfig):
    """Encoder-decoder Transformer (the shared options: :class:`TransformerConfig`). Defaults are
    a small CPU model; the ``transformer-base`` preset is the paper's base (N=6, D=512, h=8,
    d_ff=2048, dropout 0.1, post-norm, shared embeddings).

    Attributes:
        encoder_layers, decoder_layers: N of each stack.
        share_embeddings: one embedding table for source and target (needs one vocabulary);
            None (default): share exactly when the task has one vocabulary.
        tie_output: the output projection reuses the target embedding (the paper shares both).
    """

    encoder_layers: int = 2
    decoder_layers: int = 2
    share_embeddings: bool | None = None
    tie_output: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("encoder_layers", self.encoder_layers)
        check_positive("decoder_layers", self.decoder_layers)


class Seq2SeqState(NamedTuple):
    """Decoder state: cross-attention keys/values per layer, self-attention caches, position."""

    memory: list  # one MemoryKV per decoder layer
    caches: list  # one KVCache per decoder layer
    position: Tensor  # (B,) target tokens consumed so far


@ARCHS.register("transformer-seq2seq")
class TransformerSeq2Seq(nn.Module):
    """Encoder-decoder Transformer: ``forward(source, inputs, source_mask=, mask=) -> logits``."""

    Config = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig, io: IOSpec) -> None:
        super().__init__()
        share = check_seq2seq_io(io, "transformer-seq2seq", config.share_embeddings)
        self.config, self.io = config, io
        c, D = config, config.d_model
        embed = {"positional": c.positional, "max_len": c.max_len, "dropout": c.dropout, "scaled": True}
        self.tgt_embed = TokenEmbedding(io.vocab_size, D, name="inputs", **embed)
        self.src_embed = TokenEmbedding(io.source_vocab_size, D, name="source", **embed)
        if share:
            self.src_embed.tokens = self.tgt_embed.tokens
        self.encoder = EncoderStack(c, c.encoder_layers)
        self.decoder = nn.ModuleList(
            DecoderLayer(
                D, c.num_heads, c.d_ff, c.activation, c.dropout, c.attention_dropout, c.norm, c.norm_position
            )
            for _ in range(c.decoder_layers)
        )
        self.decoder_norm = build_norm(c.norm if c.norm_position == "pre" else "none", D)
        self.head = nn.Linear(D, io.output_dim, bias=False)
        if c.tie_output:
            if io.output_dim != io.vocab_size:
                raise ConfigError("tie_output needs the output classes to be the target vocabulary")
            self.head.weight = self.tgt_embed.tokens.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Sub-modules initialise themselves; an untied head is N(0, D^-½) like the embeddings."""
        if not self.config.tie_output:
            nn.init.normal_(self.head.weight, std=self.config.d_model**-0.5)

    # -- encoder / decoder -------------------------------------------------------------------------

    def encode(self, source: Tensor, source_mask: Tensor | None = None) -> Tensor:
        """source (B, S) ids -> memory (B, S, D)."""
        S = source.shape[-1]
        x = self.src_embed(source, torch.arange(S, device=source.device).expand(source.shape[0], S))
        return self.encoder(x, source_mask)  # (B, S, D)

    def start(self, source: Tensor, source_mask: Tensor | None = None) -> Seq2SeqState:
        """Encode the source once; the returned state decodes from position 0."""
        memory = self.encode(source, source_mask)  # (B, S, D)
        kv = [layer.cross_attn.memory_kv(memory, source_mask) for layer in self.decoder]
        position = torch.zeros(source.shape[0], dtype=torch.long, device=source.device)
        return Seq2SeqState(kv, [None] * len(self.decoder), position)

    def decode(
        self, inputs: Tensor, state: Seq2SeqState, mask: Tensor | None = None
    ) -> tuple[Tensor, Seq2SeqState]:
        """inputs (B, T) target tokens after those in ``state`` -> (logits (B, T, V), state)."""
        self._check_state(state, inputs.shape[0] if inputs.dim() == 2 else -1)
        T = inputs.shape[1]
        steps = mask.long().cumsum(1) - 1 if mask is not None else torch.arange(T, device=inputs.device)
        x = self.tgt_embed(inputs, state.position[:, None] + steps)  # (B, T, D)
        caches = []
        for layer, memory, cache in zip(self.decoder, state.memory, state.caches, strict=True):
            x, cache = layer(x, memory, cache, mask)
            caches.append(cache)
        consumed = mask.long().sum(1) if mask is not None else T
        logits = self.head(self.decoder_norm(x))  # (B, T, V)
        return logits, Seq2SeqState(state.memory, caches, state.position + consumed)

    def forward(
        self,
        source: Tensor,
        inputs: Tensor,
        *,
        source_mask: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Seq2SeqState]:
        """Teacher forcing: source (B, S), inputs (B, T) -> (logits (B, T, V), decoder state)."""
        return self.decode(inputs, self.start(source, source_mask), mask)

    def step(self, tokens: Tensor, state: Seq2SeqState) -> tuple[Tensor, Seq2SeqState]:
        """One target token per row: tokens (B,) -> (logits (B, V), state)."""
        logits, state = self.decode(tokens[:, None], state)
        return logits[:, 0], state

    def _check_state(self, state: Seq2SeqState, B: int) -> None:
        if not isinstance(state, Seq2SeqState):
            raise ShapeError(f"expected a Seq2SeqState from start(), got {type(state).__name__}")
        if state.position.shape[0] != B:
            raise ShapeError(f"inputs have batch {B} but the state was started for {state.position.shape[0]}")

    # -- accounting ----------------------------------------------------------------------------------

    def num_params(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def state_size(self, T: int = 1) -> int:
        """Floats the decoder caches per sequence after T target tokens (memory K/V excluded)."""
        return 2 * self.config.d_model * T * len(self.decoder)


__all__ = ["Seq2SeqConfig", "Seq2SeqState", "TransformerSeq2Seq"]
