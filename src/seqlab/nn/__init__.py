"""torch.nn-compatible layers (same arguments, state_dict keys and outputs) and the variants torch lacks."""

from seqlab.nn.attention import MultiheadAttention
from seqlab.nn.rnn import GRU, LSTM, RNN, RNNBase

__all__ = ["GRU", "LSTM", "RNN", "MultiheadAttention", "RNNBase"]
