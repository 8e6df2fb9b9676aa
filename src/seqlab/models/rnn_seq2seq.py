"""The RNN encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015).

Shape legend: B batch · S source time · T target time · E embedding width · H decoder hidden
width · H_e encoder hidden width per direction · K directions (1 or 2) · M = K·H_e memory width
· A attention width · G gates (LSTM 4, GRU 3) · V target vocabulary.

Encoder: a (bidirectional) LSTM/GRU over the source embeddings; the annotations are
``h_j = [→h_j; ←h_j]`` (B, S, M). The decoder starts from the encoder's final state, through a
bridge only when the widths differ (K·H_e ≠ H)::

    s_0 = [→h_S; ←h_1]                       (LSTM: c_0 likewise)   if M = H
    s_0 = tanh(W_b [→h_S; ←h_1] + b_b),  c_0 = W_c [→c_S; ←c_1] + b_c   otherwise

Decoder, ``attention: bahdanau`` — attention reads the *previous* state (Bahdanau eqs. 4–6)::

    e_tj = vᵀ tanh(W_s s_{t−1} + W_h h_j),  α_t = softmax(e_t),  c_t = Σ_j α_tj h_j
    s_t  = Cell([E y_{t−1}; c_t], s_{t−1})
    õ_t  = tanh(W_o [s_t; c_t]),            p(y_t | y_<t, x) = softmax(W_out õ_t + b_out)

(the paper's output is a maxout layer on s_{t−1}, E y_{t−1} and c_t; we use Luong's attentional
vector õ_t on [s_t; c_t] so every kind shares one output layer.)

Decoder, ``attention: luong-{dot,general,concat}`` — attention reads the *current* state
(Luong eqs. 5–8; ``input_feed`` adds the previous attentional vector õ_{t−1} to the input)::

    s_t  = Cell([E y_{t−1}; õ_{t−1}], s_{t−1})     (without input feeding: Cell(E y_{t−1}, s_{t−1}))
    e_tj = s_tᵀ h_j | s_tᵀ W h_j | vᵀ tanh(W [s_t; h_j]),  α_t = softmax(e_t),  c_t = Σ_j α_tj h_j
    õ_t  = tanh(W_o [s_t; c_t]),            p(y_t | y_<t, x) = softmax(W_out õ_t + b_out)

``attention: none`` is the plain encoder-decoder (Sutskever et al. 2014): s_t = Cell(E y_{t−1},
s_{t−1}), õ_t = s_t. With an LSTM, s is the hidden state h (the short-term memory); the cell
state c (long-term memory) is carried but never attended with. Dropout acts on the source and
target embeddings, between encoder layers and on õ_t before W_out.

Padded source tokens never change anything: the encoder runs on ``source_mask`` (the torch
backend needs right padding), pads get attention weight 0. Padded target steps (``mask``) hold
the decoder state. :meth:`step` and the teacher-forced :meth:`forward` run the same loop, so
they agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError, ShapeError
from seqlab.layers.rnn_attention import DecoderAttention, DecoderCell
from seqlab.models.archs import ARCHS, check_seq2seq_io
from seqlab.nn import GRU, LSTM
from seqlab.spec import IOSpec

CELLS = ("lstm", "gru")
ATTENTIONS = ("bahdanau", "luong-dot", "luong-general", "luong-concat", "none")


@dataclass
class RNNSeq2SeqConfig:
    """RNN encoder-decoder. Defaults: a 1-layer bidirectional LSTM encoder (128 per direction), an
    LSTM decoder of 128 with Bahdanau attention — a CPU-sized version of the paper's RNNsearch.

    Attributes:
        cell: ``lstm`` or ``gru`` (encoder and decoder).
        embedding_size: E, source and target token embeddings.
        hidden_size: H, the decoder state (and the attentional vector õ_t).
        encoder_hidden_size: H_e per direction; the memory is K·H_e wide.
        encoder_layers: stacked encoder layers (the decoder is one layer, started from the top one).
        bidirectional: the encoder reads the source both ways (Bahdanau) or left to right.
        attention: ``bahdanau``, ``luong-dot`` (needs K·H_e = H), ``luong-general``,
            ``luong-concat`` or ``none``.
        attention_size: A, the hidden width of the ``bahdanau`` / ``luong-concat`` scores.
        input_feed: Luong's input feeding (õ_{t−1} into the cell); Luong attention only.
        dropout: on embeddings, between encoder layers and on õ_t.
        share_embeddings: one embedding table for source and target (needs one vocabulary);
            None (default): share exactly when the task has one vocabulary.
        tie_output: W_out reuses the target embedding (needs embedding_size = hidden_size).
    """

    cell: Literal["lstm", "gru"] = "lstm"
    embedding_size: int = 64
    hidden_size: int = 128
    encoder_hidden_size: int = 128
    encoder_layers: int = 1
    bidirectional: bool = True
    attention: Literal["bahdanau", "luong-dot", "luong-general", "luong-concat", "none"] = "bahdanau"
    attention_size: int = 128
    input_feed: bool = False
    dropout: float = 0.1
    share_embeddings: bool | None = None
    tie_output: bool = False

    def __post_init__(self) -> None:
        sizes = ("embedding_size", "hidden_size", "encoder_hidden_size", "encoder_layers", "attention_size")
        for name in sizes:
            check_positive(name, getattr(self, name))
        check_range("dropout", self.dropout, 0.0, 0.99)
        if self.cell not in CELLS:
            raise ConfigError(f"cell: expected one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention: expected one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.input_feed and not self.attention.startswith("luong"):
            raise ConfigError(f"input_feed: input feeding needs luong-* attention, not {self.attention!r}")
        if self.attention == "luong-dot" and self.memory_size != self.hidden_size:
            raise ConfigError(
                f"attention: luong-dot scores sᵀh need the memory width {self.memory_size} "
                f"({self.num_directions}·encoder_hidden_size) to equal hidden_size={self.hidden_size}"
            )
        if self.tie_output and self.embedding_size != self.hidden_size:
            raise ConfigError(
                f"tie_output: needs embedding_size == hidden_size, got {self.embedding_size} "
                f"and {self.hidden_size}"
            )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def memory_size(self) -> int:
        """M = K·H_e, the width of the encoder annotations h_j."""
        return self.num_directions * self.encoder_hidden_size

    @property
    def d_model(self) -> int:
        """The width the Noam schedule scales by: the decoder's hidden size."""
        return self.hidden_size


class RNNSeq2SeqState(NamedTuple):
    """Decoder state, batch-first; widths that do not apply are 0 (GRU's c, no input feeding)."""

    memory: Tensor  # (B, S, M) encoder annotations h_j
    keys: Tensor  # (B, S, A) precomputed W_h h_j (bahdanau, luong-concat), else (B, S, 0)
    memory_mask: Tensor  # (B, S) bool, real source tokens
    h: Tensor  # (B, H) decoder state s_t
    c: Tensor  # (B, H) LSTM cell state, (B, 0) for GRU
    feed: Tensor  # (B, H) previous attentional vector õ_{t−1} with input feeding, else (B, 0)
    position: Tensor  # (B,) target tokens consumed so far


@ARCHS.register("rnn-seq2seq")
class RNNSeq2Seq(nn.Module):
    """RNN encoder-decoder with attention: ``forward(source, inputs, source_mask=, mask=) -> logits``."""

    Config = RNNSeq2SeqConfig

    def __init__(self, config: RNNSeq2SeqConfig, io: IOSpec) -> None:
        super().__init__()
        share = check_seq2seq_io(io, "rnn-seq2seq", config.share_embeddings)
        self.config, self.io = config, io
        c, E, H, M = config, config.embedding_size, config.hidden_size, config.memory_size
        self.tgt_embed = nn.Embedding(io.vocab_size, E)
        self.src_embed = self.tgt_embed if share else nn.Embedding(io.source_vocab_size, E)
        self.dropout = nn.Dropout(c.dropout)
        rnn = LSTM if c.cell == "lstm" else GRU
        self.encoder = rnn(
            E, c.encoder_hidden_size, c.encoder_layers, dropout=c.dropout, bidirectional=c.bidirectional
        )
        bridge = M != H  # decoder state from the encoder's final state, projected if widths differ
        self.bridge_h = nn.Linear(M, H) if bridge else None
        self.bridge_c = nn.Linear(M, H) if bridge and c.cell == "lstm" else None
        attends = c.attention != "none"
        self.attention = DecoderAttention(c.attention, H, M, c.attention_size) if attends else None
        extra = M if c.attention == "bahdanau" else (H if c.input_feed else 0)
        self.cell = DecoderCell(c.cell, E + extra, H)
        self.combine = nn.Linear(H + M, H, bias=False) if attends else None  # W_o on [s_t; c_t]
        self.head = nn.Linear(H, io.output_dim)
        if c.tie_output:
            if io.output_dim != io.vocab_size:
                raise ConfigError("tie_output needs the output classes to be the target vocabulary")
            self.head.weight = self.tgt_embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every sub-layer's own init, then embeddings N(0, E^-½) (also W_out when tied)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        std = self.config.embedding_size**-0.5
        nn.init.normal_(self.tgt_embed.weight, std=std)
        if self.src_embed is not self.tgt_embed:
            nn.init.normal_(self.src_embed.weight, std=std)

    # -- encoder -------------------------------------------------------------------------------

    def encode(self, source: Tensor, source_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """source (B, S) ids -> (memory (B, S, M), decoder h_0 (B, H), c_0 (B, H) or (B, 0))."""
        _check_tokens(source, self.io.source_vocab_size, "source")
        B, S = source.shape
        if S == 0:
            raise ShapeError("source: expected at least one source position, got shape (B, 0)")
        _check_mask(source_mask, B, S, "source_mask")
        # 1. annotations h_j = [→h_j; ←h_j], zero at pads
        memory, final = self.encoder(self.dropout(self.src_embed(source)), mask=source_mask)
        h_n, c_n = final if self.config.cell == "lstm" else (final, None)  # (L·K, B, H_e)
        # 2. the top layer's final states of both directions, [→h_S; ←h_1]
        K = self.config.num_directions
        h = h_n[-K:].transpose(0, 1).reshape(B, -1)  # (B, M)
        c = c_n[-K:].transpose(0, 1).reshape(B, -1) if c_n is not None else h.new_zeros(B, 0)  # (B, M)
        # 3. the bridge, only when the widths differ
        if self.bridge_h is not None:
            h = torch.tanh(self.bridge_h(h))  # (B, H)
        if self.bridge_c is not None:
            c = self.bridge_c(c)  # (B, H)
        return memory, h, c

    def start(self, source: Tensor, source_mask: Tensor | None = None) -> RNNSeq2SeqState:
        """Encode the source once; the returned state decodes from position 0."""
        memory, h, c = self.encode(source, source_mask)
        B, S, _ = memory.shape
        if source_mask is None:
            source_mask = torch.ones(B, S, dtype=torch.bool, device=memory.device)
        keys = self.attention.keys(memory) if self.attention is not None else memory.new_zeros(B, S, 0)
        feed = memory.new_zeros(B, self.config.hidden_size if self.config.input_feed else 0)
        position = torch.zeros(B, dtype=torch.long, device=memory.device)
        return RNNSeq2SeqState(memory, keys, source_mask, h, c, feed, position)

    # -- decoder -------------------------------------------------------------------------------

    def _advance(self, gx: Tensor, state: RNNSeq2SeqState) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """One decoder step from the embedding part of the gates gx (B, G·H).

        Returns (õ_t (B, H), h_t, c_t, attention weights (B, S) or None).
        """
        c, E = self.config, self.config.embedding_size
        w_extra = self.cell.weight_ih[:, E:]  # (G·H, M or H): the context / input-feed columns
        h, cell_c, weights = state.h, state.c, None
        if c.attention == "bahdanau":
            # 1. attend with s_{t−1}; 2. s_t = Cell([E y_{t−1}; c_t], s_{t−1})
            context, weights = self.attention(h, state.keys, state.memory, state.memory_mask)
            h, cell_c = self.cell(gx + context @ w_extra.t(), h, cell_c)
        else:
            # 1. s_t = Cell([E y_{t−1}; õ_{t−1}], s_{t−1}); 2. attend with s_t
            if c.input_feed:
                gx = gx + state.feed @ w_extra.t()  # (B, G·H)
            h, cell_c = self.cell(gx, h, cell_c)
            if self.attention is None:
                return h, h, cell_c, None
            context, weights = self.attention(h, state.keys, state.memory, state.memory_mask)
        # 3. the attentional vector õ_t = tanh(W_o [s_t; c_t])
        out = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))  # (B, H)
        return out, h, cell_c, weights

    def _run(
        self, inputs: Tensor, state: RNNSeq2SeqState, mask: Tensor | None
    ) -> tuple[Tensor, RNNSeq2SeqState, list[Tensor | None]]:
        """The decoder loop over T: (logits (B, T, V), state, attention weights per step)."""
        B = inputs.shape[0] if inputs.dim() == 2 else -1
        self._check_state(state, B)
        _check_tokens(inputs, self.io.vocab_size, "inputs")
        T = inputs.shape[1]
        _check_mask(mask, B, T, "mask")
        # 1. the embedding part of every step's gates, hoisted out of the loop
        E = self.config.embedding_size
        emb = self.dropout(self.tgt_embed(inputs))  # (B, T, E)
        gx_all = F.linear(emb, self.cell.weight_ih[:, :E], self.cell.gate_bias())  # (B, T, G·H)
        # 2. the recurrence; padded target steps keep the old state
        outs, weights = [], []
        for t in range(T):
            out, h, cell_c, w = self._advance(gx_all[:, t], state)
            feed = out if self.config.input_feed else state.feed
            if mask is not None:
                keep = mask[:, t, None]  # (B, 1)
                h, cell_c = torch.where(keep, h, state.h), torch.where(keep, cell_c, state.c)
                feed = torch.where(keep, feed, state.feed)
            state = state._replace(h=h, c=cell_c, feed=feed)
            outs.append(out)
            weights.append(w)
        consumed = mask.long().sum(1) if mask is not None else T
        state = state._replace(position=state.position + consumed)
        # 3. the output layer on õ_t
        logits = self.head(self.dropout(torch.stack(outs, dim=1)))  # (B, T, V)
        return logits, state, weights

    def decode(
        self, inputs: Tensor, state: RNNSeq2SeqState, mask: Tensor | None = None
    ) -> tuple[Tensor, RNNSeq2SeqState]:
        """inputs (B, T) target tokens after those in ``state`` -> (logits (B, T, V), state)."""
        logits, state, _ = self._run(inputs, state, mask)
        return logits, state

    def forward(
        self,
        source: Tensor,
        inputs: Tensor,
        *,
        source_mask: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, RNNSeq2SeqState]:
        """Teacher forcing: source (B, S), inputs (B, T) -> (logits (B, T, V), decoder state)."""
        return self.decode(inputs, self.start(source, source_mask), mask)

    def step(self, tokens: Tensor, state: RNNSeq2SeqState) -> tuple[Tensor, RNNSeq2SeqState]:
        """One target token per row: tokens (B,) -> (logits (B, V), state)."""
        if tokens.dim() != 1:
            raise ShapeError(f"step: expected tokens of shape (B,), got {tuple(tokens.shape)}")
        logits, state = self.decode(tokens[:, None], state)
        return logits[:, 0], state

    @torch.no_grad()
    def attention_weights(
        self, source: Tensor, inputs: Tensor, source_mask: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """α_tj under teacher forcing, for visualisation: (B, T, S); rows sum to 1 over real tokens."""
        if self.attention is None:
            raise ConfigError("attention_weights: this model has attention 'none'")
        _, _, weights = self._run(inputs, self.start(source, source_mask), mask)
        S = source.shape[1]
        return torch.stack(weights, dim=1) if weights else source.new_zeros(source.shape[0], 0, S).float()

    def _check_state(self, state: RNNSeq2SeqState, B: int) -> None:
        if not isinstance(state, RNNSeq2SeqState):
            raise ShapeError(f"expected an RNNSeq2SeqState from start(), got {type(state).__name__}")
        if state.position.shape[0] != B:
            raise ShapeError(f"inputs have batch {B} but the state was started for {state.position.shape[0]}")

    # -- accounting ----------------------------------------------------------------------------

    def num_params(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def state_size(self, T: int = 1) -> int:
        """Floats the decoder carries per sequence (h, c, õ): constant in T; the encoder memory
        (S·M) and its keys (S·A) are excluded, like the Transformer's memory K/V."""
        c = self.config
        return c.hidden_size * (1 + (c.cell == "lstm") + c.input_feed)


def _check_tokens(tokens: Tensor, vocab: int, who: str) -> None:
    if tokens.dim() != 2 or tokens.is_floating_point():
        raise ShapeError(
            f"{who}: expected token ids of shape (B, T), got {tokens.dtype} {tuple(tokens.shape)}"
        )
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ShapeError(
            f"{who}: token ids must be in [0, {vocab}), got [{int(tokens.min())}, {int(tokens.max())}]"
        )


def _check_mask(mask: Tensor | None, B: int, T: int, who: str) -> None:
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (B, T)):
        raise ShapeError(
            f"{who}: expected a bool mask of shape ({B}, {T}), got {mask.dtype} {tuple(mask.shape)}"
        )


__all__ = ["DecoderAttention", "DecoderCell", "RNNSeq2Seq", "RNNSeq2SeqConfig", "RNNSeq2SeqState"]
