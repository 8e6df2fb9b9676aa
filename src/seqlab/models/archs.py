"""Model architectures by name: the ``arch`` key of a run's ``model`` section.

``arch: sequence`` (the default) is the per-step :class:`~seqlab.models.sequence.SequenceModel`
(LM, tagger, regressor); ``transformer-seq2seq`` the encoder-decoder Transformer; ... Each
registered class carries its config dataclass as ``Config`` and is built as ``cls(config, io)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from seqlab.config import from_dict, to_dict
from seqlab.errors import ConfigError, UnknownNameError
from seqlab.registry import Registry
from seqlab.spec import IOSpec

ARCHS: Registry[type[nn.Module]] = Registry("model architecture")
DEFAULT_ARCH = "sequence"


def parse_model(value: Any, path: str = "model") -> Any:
    """``{arch: NAME, <options>}`` -> that architecture's config (``arch`` defaults to sequence)."""
    if any(isinstance(value, ARCHS.get(name).Config) for name in ARCHS.names()):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a mapping of model options, got {value!r}")
    options = dict(value)
    arch = options.pop("arch", DEFAULT_ARCH)
    try:
        cls = ARCHS.get(arch)
    except UnknownNameError as err:
        raise UnknownNameError(f"{path}.arch: {err}") from None
    return from_dict(cls.Config, options, path)


def arch_name(config: Any) -> str:
    for name in ARCHS.names():
        if type(config) is ARCHS.get(name).Config:
            return name
    raise ConfigError(f"{type(config).__name__} is not the config of a registered architecture")


def dump_model(config: Any) -> dict[str, Any]:
    return {"arch": arch_name(config), **to_dict(config)}


def build_model(config: Any, io: IOSpec) -> nn.Module:
    """The model for ``config`` (any registered architecture's config) and a task's IOSpec.

    A model that cannot serve the task (e.g. ``bert`` on a forecasting task) is a ConfigError
    that also says which models do fit the task's inputs and outputs.
    """
    name = arch_name(config)
    try:
        return ARCHS.get(name)(config, io)
    except ConfigError as err:
        raise ConfigError(
            f"model arch {name!r} does not fit this task: {err}; {compatible_models(io)}"
        ) from None


def compatible_models(io: IOSpec) -> str:
    """Which models a task with this IOSpec can train (for error messages)."""
    if io.is_seq2seq:
        return "sequence-to-sequence tasks train --model seq2seq, transformer-base or rnn-seq2seq"
    sequence = "rnn, lstm, gru, ln-lstm, transformer, lstm-transformer, mlstm, slstm, xlstm"
    if io.vocab_size is None:
        return f"tasks with real-valued inputs (forecast, anomaly, adding) train --model {sequence}"
    return f"token tasks train --model {sequence}; bert is for task mlm"


def check_seq2seq_io(io: IOSpec, arch: str, share_embeddings: bool | None) -> bool:
    """An encoder-decoder needs token sources and targets (one vocabulary to share embeddings).

    Returns whether to share the source and target embeddings: ``share_embeddings``, or when it is
    None, whether the task has one vocabulary (translation with a joint BPE: yes; G2P: no)."""
    if not io.is_seq2seq or io.vocab_size is None:
        raise ConfigError(
            f"{arch} needs a sequence-to-sequence task (token source and target); "
            "use arch 'sequence' for this task"
        )
    if share_embeddings and not io.shared_vocab:
        raise ConfigError(
            f"share_embeddings needs one vocabulary, but this task's source ({io.source_vocab_size} "
            f"tokens) and target ({io.vocab_size} tokens) have their own; leave it unset (auto) or false"
        )
    return io.shared_vocab if share_embeddings is None else share_embeddings
