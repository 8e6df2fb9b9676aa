"""Named model presets (``--model NAME``): starting configs users override with ``--set``.

A preset returns the ``model`` section; a preset whose recipe includes training settings (the
original Transformer's schedule, label smoothing, Adam β2) carries them as ``train_defaults``,
applied over the task's defaults and under the user's config and ``--set``.
"""

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


def _xlstm(layer_types: list[str], d_model: int = 128) -> dict[str, Any]:
    """xLSTM blocks as the paper stacks them: pre-norm residual; mLSTM blocks without an FFN
    (their layer up-projects inside), sLSTM blocks followed by a gated GeLU FFN of ~4/3·D
    (the official 1.3·D rounded up to a multiple of 64), no biases; no positional encoding. The
    sLSTM recurrent matrices start U(±1/√D), not at the official zero (BENCHMARKS.md, parity)."""
    d_ff = -(-13 * d_model // 640) * 64
    mixers = {
        "mlstm": {"num_heads": 4, "init_depth": len(layer_types)},
        # R = 0 (the official default) leaves parity at chance for 600 steps; U(±1/√D) solves it
        "slstm": {"num_heads": 4, "recurrent_init": "standard"},
    }
    return {
        "d_model": d_model,
        "layer_types": layer_types,
        "d_ff": 0,
        "norm": "layernorm",
        "mixers": {name: options for name, options in mixers.items() if name in layer_types},
        "ffn_by_type": {"slstm": {"d_ff": d_ff, "activation": "geglu", "bias": False}}
        if "slstm" in layer_types
        else {},
    }


@MODELS.register("mlstm")
def mlstm() -> dict[str, Any]:
    """xLSTM[1:0]: two mLSTM blocks (matrix memory, chunkwise form), width 128, 4 heads."""
    return _xlstm(["mlstm", "mlstm"])


@MODELS.register("slstm")
def slstm() -> dict[str, Any]:
    """xLSTM[0:1]: two sLSTM blocks (scalar memory with memory mixing) + gated FFN, width 128."""
    return _xlstm(["slstm", "slstm"])


@MODELS.register("xlstm")
def xlstm() -> dict[str, Any]:
    """xLSTM[1:1]: an mLSTM block then an sLSTM block (+ gated FFN), width 128, 4 heads."""
    return _xlstm(["mlstm", "slstm"])


@MODELS.register("lstm-transformer")
def lstm_transformer() -> dict[str, Any]:
    """Hybrid: an LSTM block below (local order and memory) and a causal self-attention block
    with FFN 512 above (global context), width 128; RoPE positions in the attention."""
    return {
        "d_model": 128,
        "layer_types": ["lstm", "attention"],
        "d_ff": 0,
        "norm": "layernorm",
        "mixers": {"attention": {"num_heads": 4}},
        "ffn_by_type": {"attention": {"d_ff": 512}},
    }


@MODELS.register("ln-lstm")
def ln_lstm() -> dict[str, Any]:
    """Two layer-norm LSTM blocks (Ba et al. 2016), width 128 (naive backend)."""
    return _recurrent("lstm") | {"mixers": {"lstm": {"layer_norm": True}}}


@MODELS.register("seq2seq")
def seq2seq() -> dict[str, Any]:
    """Encoder-decoder Transformer, 2+2 layers, width 128, 4 heads, FFN 512, pre-norm (CPU-sized)."""
    return {"arch": "transformer-seq2seq"}


@MODELS.register("bert")
def bert() -> dict[str, Any]:
    """BERT-style encoder for masked-LM: 2 pre-norm layers, width 128, 4 heads, FFN 512 (CPU-sized).

    Pre-norm, not BERT's post-norm: on the built-in text, 1,000 steps reach 2.24 nats per masked
    character pre-norm against 3.07 post-norm (unigram baseline 3.33; BENCHMARKS.md)."""
    return {"arch": "bert", "norm_position": "pre"}


@MODELS.register("transformer-base")
def transformer_base() -> dict[str, Any]:
    """The original base Transformer: N=6, d_model=512, h=8, d_ff=2048, dropout 0.1, post-norm,
    shared embeddings; trains with Noam warmup 4000, label smoothing 0.1, Adam β2=0.98, ε=1e-9."""
    return {
        "arch": "transformer-seq2seq",
        "d_model": 512,
        "num_heads": 8,
        "d_ff": 2048,
        "encoder_layers": 6,
        "decoder_layers": 6,
        "dropout": 0.1,
        "activation": "relu",
        "norm_position": "post",
        "positional": "sinusoidal",
        "tie_output": True,
    }


transformer_base.train_defaults = {  # type: ignore[attr-defined]
    "schedule": "noam",
    "lr": 1.0,
    "warmup_steps": 4000,
    "label_smoothing": 0.1,
    "beta2": 0.98,
    "eps": 1e-9,
    "weight_decay": 0.0,
}


@MODELS.register("rnn-seq2seq")
def rnn_seq2seq() -> dict[str, Any]:
    """RNN encoder-decoder: bidirectional LSTM encoder (2×128), LSTM decoder 128, Bahdanau attention."""
    return {"arch": "rnn-seq2seq", "dropout": 0.0}
