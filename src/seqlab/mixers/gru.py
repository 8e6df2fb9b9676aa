"""GRU mixer: one ``seqlab.nn.GRU`` layer of width D (equations: :func:`seqlab.ops.rnn.gru_cell`).

Shape legend: B batch · T time · D model width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from torch import Tensor

from seqlab.config import check_range
from seqlab.mixers.base import MIXERS, RecurrentMixer
from seqlab.nn import GRU


@dataclass
class GRUConfig:
    """Options of the GRU mixer: ``backend``, ``recurrent_dropout`` (naive), ``learnable_init_state``."""

    backend: Literal["auto", "naive", "torch"] = "auto"
    recurrent_dropout: float = 0.0
    learnable_init_state: bool = False

    def __post_init__(self) -> None:
        check_range("recurrent_dropout", self.recurrent_dropout, 0.0, 0.99)


class GRUState(NamedTuple):
    h: Tensor  # (B, D)


@MIXERS.register("gru")
class GRUMixer(RecurrentMixer):
    """GRU as a sequence mixer: ``forward(x, state, mask) -> (y, GRUState(h))``."""

    Config = GRUConfig
    State = GRUState

    def _make_layer(self) -> GRU:
        c = self.config
        return GRU(
            self.d_model,
            self.d_model,
            backend=c.backend,
            recurrent_dropout=c.recurrent_dropout,
            learnable_init_state=c.learnable_init_state,
        )
