"""Models: configs, blocks, the sequence model (LM / classifier / regressor), generation, presets."""

from seqlab.models.config import ModelConfig
from seqlab.models.generation import filter_logits, generate
from seqlab.models.presets import MODELS
from seqlab.models.sequence import SequenceModel

__all__ = ["MODELS", "ModelConfig", "SequenceModel", "filter_logits", "generate"]
