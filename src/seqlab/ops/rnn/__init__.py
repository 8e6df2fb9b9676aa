"""Recurrent cells as pure functions, and the masked time loop that drives them."""

from seqlab.ops.rnn.cells import gru_cell, lstm_cell, rnn_cell
from seqlab.ops.rnn.scan import scan

__all__ = ["gru_cell", "lstm_cell", "rnn_cell", "scan"]
