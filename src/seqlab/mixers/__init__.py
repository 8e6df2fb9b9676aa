"""Sequence mixers under one contract (DESIGN.md §2), registered by name in :data:`MIXERS`."""

from seqlab.mixers.attention import AttentionConfig, AttentionMixer, KVCache
from seqlab.mixers.base import MIXERS, Mixer, RecurrentMixer, build_mixer
from seqlab.mixers.gru import GRUConfig, GRUMixer, GRUState
from seqlab.mixers.lstm import LSTMConfig, LSTMMixer, LSTMState
from seqlab.mixers.mlstm import MLSTMConfig, MLSTMMixer, MLSTMState
from seqlab.mixers.performer import PerformerConfig, PerformerMixer, PerformerState
from seqlab.mixers.rnn import RNNConfig, RNNMixer, RNNState
from seqlab.mixers.slstm import SLSTMConfig, SLSTMMixer, SLSTMState
from seqlab.mixers.xl_attention import SegmentMemory, XLAttentionConfig, XLAttentionMixer

__all__ = [
    "MIXERS",
    "AttentionConfig",
    "AttentionMixer",
    "GRUConfig",
    "GRUMixer",
    "GRUState",
    "KVCache",
    "LSTMConfig",
    "LSTMMixer",
    "LSTMState",
    "MLSTMConfig",
    "MLSTMMixer",
    "MLSTMState",
    "Mixer",
    "PerformerConfig",
    "PerformerMixer",
    "PerformerState",
    "RNNConfig",
    "RNNMixer",
    "RNNState",
    "RecurrentMixer",
    "SLSTMConfig",
    "SLSTMMixer",
    "SLSTMState",
    "SegmentMemory",
    "XLAttentionConfig",
    "XLAttentionMixer",
    "build_mixer",
]
