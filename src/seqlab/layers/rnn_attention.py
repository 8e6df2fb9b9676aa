"""Decoder-side layers of the RNN encoder-decoder: one recurrent cell, one attention scorer.

Shape legend: B batch · S source time · H decoder hidden width · M memory width · A attention
width · G gates (LSTM 4, GRU 3).

The equations are in :mod:`seqlab.models.rnn_seq2seq` and :mod:`seqlab.ops.attention.additive`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.ops.attention import additive
from seqlab.ops.rnn import gru_cell, lstm_cell


class DecoderCell(nn.Module):
    """One LSTM/GRU cell with ``torch.nn.LSTMCell`` / ``GRUCell`` parameters, stepped with
    :func:`seqlab.ops.rnn.lstm_cell` / :func:`~seqlab.ops.rnn.gru_cell`."""

    def __init__(self, cell: str, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell, self.hidden_size = cell, hidden_size
        G = 4 if cell == "lstm" else 3
        self.weight_ih = nn.Parameter(torch.empty(G * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(G * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(G * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's U(−1/√H, 1/√H); LSTM forget-gate bias 1 (as seqlab.nn.LSTM)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if self.cell == "lstm":
            H = self.hidden_size
            with torch.no_grad():
                self.bias_ih[H : 2 * H] = 1.0
                self.bias_hh[H : 2 * H] = 0.0

    def gate_bias(self) -> Tensor:
        """The biases folded into the input part: all of b_hh for LSTM, b_hr and b_hz for GRU."""
        if self.cell == "lstm":
            return self.bias_ih + self.bias_hh
        H = self.hidden_size
        return self.bias_ih + F.pad(self.bias_hh[: 2 * H], (0, H))

    def forward(self, gx: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """gx = x W_ihᵀ + gate_bias() (B, G·H); (h, c) (B, H) -> new (h, c)."""
        if self.cell == "lstm":
            return lstm_cell(gx, h, c, self.weight_hh)
        return gru_cell(gx, h, self.weight_hh, self.bias_hh[2 * self.hidden_size :]), c


class DecoderAttention(nn.Module):
    """Score parameters of one attention kind; the math is :mod:`seqlab.ops.attention.additive`."""

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.kind, self.query_size = kind, query_size
        A, Q, M = attention_size, query_size, memory_size
        shapes = {
            "bahdanau": {"w_s": (A, Q), "w_h": (A, M), "v": (A,)},
            "luong-concat": {"w": (A, Q + M), "v": (A,)},
            "luong-general": {"w": (Q, M)},
            "luong-dot": {},
        }[kind]
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(−1/√fan_in, 1/√fan_in) like ``nn.Linear``; v by the attention width."""
        for p in self.parameters():
            bound = 1.0 / math.sqrt(p.shape[-1])
            nn.init.uniform_(p, -bound, bound)

    def keys(self, memory: Tensor) -> Tensor:
        """The query-independent half of the score, once per source: (B, S, A) or (B, S, 0)."""
        if self.kind == "bahdanau":
            return additive.bahdanau_keys(memory, self.w_h)
        if self.kind == "luong-concat":
            return additive.bahdanau_keys(memory, self.w[:, self.query_size :])
        return memory.new_zeros(*memory.shape[:2], 0)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, H) -> (context (B, M), weights (B, S))."""
        if self.kind == "bahdanau":
            return additive.bahdanau_attention(query, keys, memory, self.w_s, self.v, mask)
        if self.kind == "luong-concat":
            return additive.concat_attention(query, memory, self.w, self.v, mask, keys=keys)
        if self.kind == "luong-general":
            return additive.general_attention(query, memory, self.w, mask)
        return additive.dot_attention(query, memory, mask)
