"""Reusable layers: norms and feed-forward networks."""

from seqlab.layers.feedforward import FeedForward
from seqlab.layers.norms import build_norm

__all__ = ["FeedForward", "build_norm"]
