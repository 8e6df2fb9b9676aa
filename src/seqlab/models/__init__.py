"""Models: configs, blocks, architectures (per-step sequence model, encoder-decoder), decoding."""

from seqlab.models.archs import ARCHS, build_model, dump_model, parse_model
from seqlab.models.bert import BertConfig, BertModel
from seqlab.models.config import ModelConfig
from seqlab.models.generation import filter_logits, generate
from seqlab.models.presets import MODELS
from seqlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
from seqlab.models.seq2seq import Seq2SeqConfig, TransformerSeq2Seq
from seqlab.models.sequence import SequenceModel

__all__ = [
    "ARCHS",
    "MODELS",
    "BertConfig",
    "BertModel",
    "ModelConfig",
    "RNNSeq2Seq",
    "RNNSeq2SeqConfig",
    "Seq2SeqConfig",
    "SequenceModel",
    "TransformerSeq2Seq",
    "build_model",
    "dump_model",
    "filter_logits",
    "generate",
    "parse_model",
]
