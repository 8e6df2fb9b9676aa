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

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from seqlab.config import check_positive, check_range, from_dict
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers import build_norm
from seqlab.layers.cross_attention import MemoryKV
from seqlab.layers.feedforward import FFN_KINDS
from seqlab.layers.positional import sinusoidal
from seqlab.layers.self_attention import SelfAttentionConfig
from seqlab.mixers.attention import KVCache
from seqlab.models.archs import ARCHS
from seqlab.models.transformer_layers import DecoderLayer, EncoderLayer
from seqlab.spec import IOSpec


@dataclass
class Seq2SeqConfig:
    """Encoder-decoder Transformer. Defaults are a small CPU model; ``transformer-base`` is the
    paper's base (N=6, D=512, h=8, d_ff=2048, dropout 0.1, post-norm, shared embeddings).

    Attributes:
        d_model, num_heads, d_ff: widths (num_heads must divide d_model).
        encoder_layers, decoder_layers: N of each stack.
        dropout: on embeddings + positions and on each sub-layer output (residual dropout).
        attention_dropout: on attention weights (0 in the paper).
        activation: FFN kind: ``relu`` (the paper), ``gelu``, ``silu``, or a gated one
            (``swiglu``, ``geglu``, ``reglu``).
        norm: ``layernorm`` or ``rmsnorm``; norm_position: ``post`` (the paper) or ``pre``.
        positional: absolute positions added to embeddings, ``sinusoidal`` or ``learned``.
        max_len: longest source/target (learned positions; also the default decode limit).
        share_embeddings: one embedding table for source and target (needs one vocabulary).
        tie_output: the output projection reuses the target embedding (the paper shares both).
        encoder_attention: options of the encoder's self-attention besides heads and dropout,
            e.g. ``{kind: local, window: 16}``; see ``seqlab.layers.self_attention``.
    """

    d_model: int = 128
    num_heads: int = 4
    d_ff: int = 512
    encoder_layers: int = 2
    decoder_layers: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: str = "relu"
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    norm_position: Literal["post", "pre"] = "pre"
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"
    max_len: int = 512
    share_embeddings: bool = True
    tie_output: bool = True
    encoder_attention: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("d_model", "num_heads", "d_ff", "encoder_layers", "decoder_layers", "max_len"):
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, 0.0, 0.99)
        check_range("attention_dropout", self.attention_dropout, 0.0, 0.99)
        if self.d_model % self.num_heads:
            raise ConfigError(f"num_heads: {self.num_heads} does not divide d_model={self.d_model}")
        if self.activation not in FFN_KINDS:
            raise ConfigError(f"activation: expected one of {', '.join(FFN_KINDS)}, got {self.activation!r}")
        for key in ("num_heads", "dropout"):
            if key in self.encoder_attention:
                raise ConfigError(f"encoder_attention.{key}: set it at the top level of the model section")
        self.self_attention  # noqa: B018  (validate the options now, naming the bad key)

    @property
    def self_attention(self) -> SelfAttentionConfig:
        options = {"num_heads": self.num_heads, "dropout": self.attention_dropout, **self.encoder_attention}
        return from_dict(SelfAttentionConfig, options, "encoder_attention")


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
        if not io.is_seq2seq or io.vocab_size is None:
            raise ConfigError(
                "transformer-seq2seq needs a sequence-to-sequence task (token source and target); "
                "use arch 'sequence' for this task"
            )
        self.config, self.io = config, io
        c, D = config, config.d_model
        self.tgt_embed = nn.Embedding(io.vocab_size, D)
        if c.share_embeddings:
            if io.source_vocab_size != io.vocab_size:
                raise ConfigError(
                    f"share_embeddings needs one vocabulary, got source {io.source_vocab_size} "
                    f"and target {io.vocab_size} tokens"
                )
            self.src_embed = self.tgt_embed
        else:
            self.src_embed = nn.Embedding(io.source_vocab_size, D)
        if c.positional == "learned":
            self.pos_embed = nn.Embedding(c.max_len, D)
        self.dropout = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(
            EncoderLayer(D, c.self_attention, c.d_ff, c.activation, c.dropout, c.norm, c.norm_position)
            for _ in range(c.encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(
                D, c.num_heads, c.d_ff, c.activation, c.dropout, c.attention_dropout, c.norm, c.norm_position
            )
            for _ in range(c.decoder_layers)
        )
        pre = c.norm_position == "pre"  # pre-norm stacks end with a norm; post-norm ones already did
        self.encoder_norm = build_norm(c.norm if pre else "none", D)
        self.decoder_norm = build_norm(c.norm if pre else "none", D)
        self.head = nn.Linear(D, io.output_dim, bias=False)
        if c.tie_output:
            if io.output_dim != io.vocab_size:
                raise ConfigError("tie_output needs the output classes to be the target vocabulary")
            self.head.weight = self.tgt_embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings N(0, D^-½), so √D·E has unit scale like the positional encoding."""
        std = self.config.d_model**-0.5
        nn.init.normal_(self.tgt_embed.weight, std=std)
        if self.src_embed is not self.tgt_embed:
            nn.init.normal_(self.src_embed.weight, std=std)
        if not self.config.tie_output:
            nn.init.normal_(self.head.weight, std=std)
        if self.config.positional == "learned":
            nn.init.normal_(self.pos_embed.weight, std=0.02)

    # -- embedding ----------------------------------------------------------------------------------

    def _embed(self, table: nn.Embedding, tokens: Tensor, positions: Tensor, vocab: int, who: str) -> Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ShapeError(
                f"{who}: expected token ids of shape (B, T), got {tokens.dtype} {tuple(tokens.shape)}"
            )
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ShapeError(
                f"{who}: token ids must be in [0, {vocab}), got [{int(tokens.min())}, {int(tokens.max())}]"
            )
        x = table(tokens) * math.sqrt(self.config.d_model)
        positions = positions.clamp(min=0)
        if self.config.positional == "learned":
            if positions.numel() and int(positions.max()) >= self.config.max_len:
                raise ShapeError(
                    f"{who}: position {int(positions.max())} is beyond the learned position table "
                    f"(max_len={self.config.max_len})"
                )
            x = x + self.pos_embed(positions)
        else:
            x = x + sinusoidal(positions, self.config.d_model).to(x.dtype)
        return self.dropout(x)

    # -- encoder / decoder -------------------------------------------------------------------------

    def encode(self, source: Tensor, source_mask: Tensor | None = None) -> Tensor:
        """source (B, S) ids -> memory (B, S, D)."""
        B, S = source.shape[:2] if source.dim() == 2 else (0, 0)
        positions = torch.arange(S, device=source.device).expand(B, S)
        x = self._embed(self.src_embed, source, positions, self.io.source_vocab_size, "source")
        for layer in self.encoder:
            x = layer(x, source_mask)
        return self.encoder_norm(x)

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
        x = self._embed(self.tgt_embed, inputs, state.position[:, None] + steps, self.io.vocab_size, "inputs")
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


__all__ = ["KVCache", "MemoryKV", "Seq2SeqConfig", "Seq2SeqState", "TransformerSeq2Seq"]
