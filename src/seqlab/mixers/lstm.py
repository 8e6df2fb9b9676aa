"""LSTM mixer: one ``seqlab.nn.LSTM`` layer of width D (equations: :func:`seqlab.ops.rnn.lstm_cell`).

Shape legend: B batch · T time · D model width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from torch import Tensor

from seqlab.config import check_range
from seqlab.mixers.base import MIXERS, RecurrentMixer
from seqlab.nn import LSTM


@dataclass
class LSTMConfig:
    """Options of the LSTM mixer (width comes from the model's ``d_model``).

    Attributes:
        backend: ``auto`` (torch's kernel when possible, else fused, else naive), ``naive``,
            ``torch`` or ``fused`` (hand-written BPTT; no layer norm).
        layer_norm: LN on gate pre-activations and on the cell (Ba et al. 2016); naive backend.
        recurrent_dropout: one dropout mask per sequence on h_{t-1}; naive or fused backend.
        learnable_init_state: learn (h_0, c_0) instead of zeros.
        forget_bias: initial forget-gate bias (1.0 keeps memory early in training); None = torch init.
    """

    backend: Literal["auto", "naive", "torch", "fused"] = "auto"
    layer_norm: bool = False
    recurrent_dropout: float = 0.0
    learnable_init_state: bool = False
    forget_bias: float | None = 1.0

    def __post_init__(self) -> None:
        check_range("recurrent_dropout", self.recurrent_dropout, 0.0, 0.99)


class LSTMState(NamedTuple):
    h: Tensor  # (B, D) short-term memory
    c: Tensor  # (B, D) long-term memory


@MIXERS.register("lstm")
class LSTMMixer(RecurrentMixer):
    """LSTM as a sequence mixer: ``forward(x, state, mask) -> (y, LSTMState(h, c))``."""

    Config = LSTMConfig
    State = LSTMState
    BACKENDS = ("naive", "torch", "fused")

    def _make_layer(self) -> LSTM:
        c = self.config
        return LSTM(
            self.d_model,
            self.d_model,
            backend=c.backend,
            layer_norm=c.layer_norm,
            recurrent_dropout=c.recurrent_dropout,
            learnable_init_state=c.learnable_init_state,
            forget_bias=c.forget_bias,
        )
