"""Elman RNN mixer: one ``seqlab.nn.RNN`` layer of width D (equations: :func:`seqlab.ops.rnn.rnn_cell`).

Shape legend: B batch · T time · D model width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from torch import Tensor

from seqlab.config import check_range
from seqlab.mixers.base import MIXERS, RecurrentMixer
from seqlab.nn import RNN


@dataclass
class RNNConfig:
    """Options of the Elman RNN mixer: ``nonlinearity``, ``backend``, ``recurrent_dropout``,
    ``learnable_init_state``."""

    nonlinearity: Literal["tanh", "relu"] = "tanh"
    backend: Literal["auto", "naive", "torch"] = "auto"
    recurrent_dropout: float = 0.0
    learnable_init_state: bool = False

    def __post_init__(self) -> None:
        check_range("recurrent_dropout", self.recurrent_dropout, 0.0, 0.99)


class RNNState(NamedTuple):
    h: Tensor  # (B, D)


@MIXERS.register("rnn")
class RNNMixer(RecurrentMixer):
    """Elman RNN as a sequence mixer: ``forward(x, state, mask) -> (y, RNNState(h))``."""

    Config = RNNConfig
    State = RNNState

    def _make_layer(self) -> RNN:
        c = self.config
        return RNN(
            self.d_model,
            self.d_model,
            nonlinearity=c.nonlinearity,
            backend=c.backend,
            recurrent_dropout=c.recurrent_dropout,
            learnable_init_state=c.learnable_init_state,
        )
