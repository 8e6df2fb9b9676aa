"""Reusable layers: norms, feed-forward networks, causal convolution, head-wise linear maps."""

from seqlab.layers.conv import CausalConv1d
from seqlab.layers.feedforward import FeedForward
from seqlab.layers.headwise import HeadwiseLinear
from seqlab.layers.norms import MultiHeadNorm, build_norm
from seqlab.layers.onednn import OneDNNLinear, use_onednn_linear, use_torch_linear

__all__ = [
    "CausalConv1d",
    "FeedForward",
    "HeadwiseLinear",
    "MultiHeadNorm",
    "OneDNNLinear",
    "build_norm",
    "use_onednn_linear",
    "use_torch_linear",
]
