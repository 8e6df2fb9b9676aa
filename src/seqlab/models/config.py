"""Model configuration: width, the stack of mixers declared as data, norms, heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from seqlab.config import check_positive, check_range, from_dict, to_dict
from seqlab.errors import ConfigError
from seqlab.layers.feedforward import FFN_KINDS
from seqlab.mixers import MIXERS


def _parse_mixers(value: Any, path: str) -> dict[str, Any]:
    """``mixers: {lstm: {...}, gru: {...}}`` -> each section parsed by that mixer's Config."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of mixer name -> options, got {value!r}")
    out = {}
    for name, options in value.items():
        cls = MIXERS.get(name)
        out[name] = from_dict(cls.Config, options or {}, f"{path}.{name}")
    return out


@dataclass
class FFNConfig:
    """The feed-forward network after one kind of mixer: width (0 = none), kind, biases."""

    d_ff: int = 0
    activation: str = "gelu"
    bias: bool = True

    def __post_init__(self) -> None:
        check_positive("d_ff", self.d_ff, allow_zero=True)
        if self.activation not in FFN_KINDS:
            raise ConfigError(f"activation: unknown {self.activation!r}; choose from: {', '.join(FFN_KINDS)}")


def _parse_ffn(value: Any, path: str) -> dict[str, FFNConfig]:
    """``ffn_by_type: {slstm: {d_ff: 192, activation: geglu}}`` -> one FFNConfig per mixer name."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of mixer name -> FFN options, got {value!r}")
    out = {}
    for name, options in value.items():
        MIXERS.get(name)  # unknown names list the choices
        out[name] = from_dict(FFNConfig, options or {}, f"{path}.{name}")
    return out


@dataclass
class ModelConfig:
    """A sequence model: embedding -> blocks (``layer_types``) -> norm -> head.

    Attributes:
        d_model: width D of every block.
        layer_types: one registered mixer name per block, e.g. ``[lstm, lstm]``.
        mixers: per-mixer-name options, e.g. ``{lstm: {layer_norm: true}}``; missing = defaults.
        d_ff: width of the position-wise FFN after each mixer; 0 = no FFN.
        ffn_activation: its kind: ``gelu``, ``relu``, ``silu`` or gated ``swiglu``, ``geglu``, ``reglu``.
        ffn_by_type: per-mixer-name FFN overriding the two above, e.g. xLSTM's sLSTM blocks with a
            gated FFN and its mLSTM blocks without: ``{slstm: {d_ff: 192, activation: geglu}}``.
        dropout: dropout on embeddings and on each residual branch.
        norm: ``layernorm``, ``rmsnorm`` or ``none`` (pre-norm blocks and the final norm).
        residual: add each block's input to its output (pre-norm residual blocks).
        tie_weights: share the token embedding with the output head (needs tokens in = tokens out).
        positional: absolute positions added to the embeddings: ``none`` (recurrent mixers and
            RoPE/ALiBi attention need none), ``sinusoidal`` or ``learned`` (a table of ``max_len``).
        max_len: size of the learned position table; longer inputs are an error.
        embedding: how token ids become vectors: ``token`` (a table, the default), ``subword``
            (fastText: mean of the word's row and its hashed character 3..6-gram rows) or
            ``charngram`` (mean of the word's character 2/3/4-gram rows); the last two need the
            task's vocabulary strings (``IOSpec.vocab``).
        embedding_vectors: pretrained vectors to start from: a GloVe ``.txt``, a word2vec/fastText
            ``.vec``, a fastText ``.bin`` (the only source for ``subword``), or ``glove-6b-50d``
            (the ``seqlab[glove]`` extra). A width other than ``d_model`` adds a linear projection.
        freeze_embedding: keep the (pretrained) embedding fixed during training; cannot be
            combined with ``tie_weights`` (that would freeze the output head too: ConfigError).
        embedding_oov: rows for words the vectors lack: ``random``, ``zero`` or ``ngram``
            (composed from character n-grams; see :func:`seqlab.data.vectors.embedding_matrix`).
        embedding_buckets: rows of the hashed n-gram table of ``subword`` (a ``.bin`` brings its own);
            fastText uses 2M for millions of words, a few 10k suit small vocabularies.
    """

    d_model: int = 128
    layer_types: list[str] = field(default_factory=lambda: ["lstm"])
    mixers: dict[str, Any] = field(default_factory=dict, metadata={"parse": _parse_mixers, "dump": to_dict})
    d_ff: int = 0
    ffn_activation: str = "gelu"
    ffn_by_type: dict[str, Any] = field(default_factory=dict, metadata={"parse": _parse_ffn, "dump": to_dict})
    dropout: float = 0.0
    norm: Literal["layernorm", "rmsnorm", "none"] = "layernorm"
    residual: bool = True
    tie_weights: bool = False
    positional: Literal["none", "sinusoidal", "learned"] = "none"
    max_len: int = 2048
    embedding: Literal["token", "subword", "charngram"] = "token"
    embedding_vectors: str | None = None
    freeze_embedding: bool = False
    embedding_oov: Literal["random", "zero", "ngram"] = "random"
    embedding_buckets: int = 20_000

    def __post_init__(self) -> None:
        check_positive("d_model", self.d_model)
        check_positive("max_len", self.max_len)
        check_positive("d_ff", self.d_ff, allow_zero=True)
        check_positive("embedding_buckets", self.embedding_buckets)
        check_range("dropout", self.dropout, 0.0, 0.99)
        if not self.layer_types:
            raise ConfigError("layer_types: expected at least one mixer name")
        for name in self.layer_types:
            MIXERS.get(name)  # unknown names list the choices
        self.mixers = _parse_mixers(self.mixers, "mixers")
        FFNConfig(self.d_ff, self.ffn_activation)  # checks both
        self.ffn_by_type = _parse_ffn(self.ffn_by_type, "ffn_by_type")

    def mixer_config(self, name: str) -> Any:
        return self.mixers.get(name) or MIXERS.get(name).Config()

    def ffn_config(self, name: str) -> FFNConfig:
        """The FFN after mixers called ``name``: its own entry, else ``d_ff`` / ``ffn_activation``."""
        return self.ffn_by_type.get(name) or FFNConfig(self.d_ff, self.ffn_activation)
