"""Named model presets (``--model NAME``): starting configs users override with ``--set``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seqlab.registry import Registry

MODELS: Registry[Callable[[], dict[str, Any]]] = Registry("model")


def _recurrent(mixer: str, d_model: int = 128, layers: int = 2) -> dict[str, Any]:
    return {"d_model": d_model, "layer_types": [mixer] * layers, "d_ff": 0, "norm": "layernorm"}


@MODELS.register("rnn")
def rnn() -> dict[str, Any]:
    """Two Elman RNN (tanh) blocks, width 128."""
    return _recurrent("rnn")


@MODELS.register("lstm")
def lstm() -> dict[str, Any]:
    """Two LSTM blocks, width 128."""
    return _recurrent("lstm")


@MODELS.register("gru")
def gru() -> dict[str, Any]:
    """Two GRU blocks, width 128."""
    return _recurrent("gru")


@MODELS.register("transformer")
def transformer() -> dict[str, Any]:
    """GPT-style decoder: two causal self-attention blocks (RoPE, 4 heads) with FFN 512, width 128."""
    return {
        "d_model": 128,
        "layer_types": ["attention"] * 2,
        "d_ff": 512,
        "norm": "layernorm",
        "mixers": {"attention": {"num_heads": 4}},
    }


@MODELS.register("ln-lstm")
def ln_lstm() -> dict[str, Any]:
    """Two layer-norm LSTM blocks (Ba et al. 2016), width 128 (naive backend)."""
    return _recurrent("lstm") | {"mixers": {"lstm": {"layer_norm": True}}}
