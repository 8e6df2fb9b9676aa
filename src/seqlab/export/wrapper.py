"""Export wrappers: a trained :class:`~seqlab.models.SequenceModel` as a pure-tensor forward.

Shape legend: B batch · T time · F input features · V vocabulary · C classes · O outputs.

An exported graph has no Python state objects, so the wrappers start every sequence from the
zero (or learned) initial state and return only the outputs:

- :class:`SequenceOutputs` — language models, taggers, regressors: ``inputs -> outputs (B, T, O)``
  (an LM's next-token logits (B, T, V)). Inputs are token ids ``input_ids`` int64 (B, T) or
  features ``features`` float32 (B, T, F).
- :class:`LastTokenOutputs` — many-to-one classifiers (task ``classify``): ``(input_ids (B, T),
  lengths (B,) int64) -> logits (B, C)`` read at each row's last real token, as the task scores
  it. Rows are right-padded to T (any pad id); a row alone has ``lengths = [T]``. Every sequence
  model is causal, so the outputs at a row's real positions do not depend on the padding after
  them: reading at ``lengths - 1`` equals the masked forward the task evaluates with.

:func:`exportable_copy` picks, in a copy of the model, the backend of each mixer that traces with
a symbolic sequence length; the maths is unchanged (backends agree within float tolerance, which
the export verification re-checks against the original model).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, SeqlabError, ShapeError

# mixers that do not export with a symbolic sequence length, and why
NOT_EXPORTABLE = {
    "SLSTMMixer": "sLSTM runs a step loop over time (memory mixing has no parallel form)",
    "PerformerMixer": "the Performer's stabilised prefix sums use aten.cummax, which has no ONNX function",
    "XLAttentionMixer": "Transformer-XL's segment memory uses aten.sort (stable), which has no ONNX function",
}
EXPORTABLE = (
    "blocks of lstm, gru, attention and mlstm (arch 'sequence'); "
    "not slstm, performer, xl-attention, rnn (Elman) or layer-norm LSTM"
)
# tasks scored at the last real token of each text (a (B, C) read-out, not (B, T, C))
LAST_TOKEN_TASKS = ("classify",)
TOLERANCE = 1e-4  # max |exported − PyTorch| the export checks accept


class ExportError(SeqlabError, RuntimeError):
    """A model cannot be exported, or the exported file does not reproduce the model."""


class SequenceOutputs(nn.Module):
    """``inputs (B, T) ids or (B, T, F) features -> outputs (B, T, O)`` from the initial state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs (B, T) or (B, T, F) -> (B, T, O)."""
        return outputs_from_start(self.model, inputs)


class LastTokenOutputs(nn.Module):
    """``(input_ids (B, T), lengths (B,)) -> logits (B, C)`` at each row's last real token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """inputs (B, T), lengths (B,) in [1, T] -> (B, C)."""
        out = outputs_from_start(self.model, inputs)  # (B, T, C)
        B, _, C = out.shape
        last = (lengths.to(torch.long) - 1).view(B, 1, 1).expand(B, 1, C)  # (B, 1, C)
        return out.gather(1, last).squeeze(1)  # (B, C)


def outputs_from_start(model: nn.Module, inputs: Tensor) -> Tensor:
    """``model(inputs)[0]``: outputs (B, T, O) from the initial state, without padding.

    With learned positions, :meth:`SequenceModel.forward` checks ``max(position) < max_len`` on
    the data (a Python ``int`` of a tensor, which a graph cannot hold); without a state or mask
    the positions are ``0..T-1``, so the same sum is written here with ``arange(T)`` (an exported
    graph given T > max_len fails in its Gather instead).
    """
    if model.config.positional != "learned":
        return model(inputs)[0]
    T = inputs.shape[1]
    x = model._embed_inputs(inputs) + model.pos_embed(torch.arange(T, device=inputs.device))  # (B, T, D)
    x = model.dropout(x)
    for block in model.blocks:
        x, _ = block(x)
    return model.head(model.norm(x))  # (B, T, O)


def readout_for_task(task: str | None) -> str:
    """``last`` for tasks scored at the last token (classify), else ``sequence``."""
    return "last" if task in LAST_TOKEN_TASKS else "sequence"


def wrap(model: nn.Module, readout: str = "sequence") -> nn.Module:
    """The export wrapper of ``model`` (a copy with exportable backends, in eval mode).

    Args:
        model: a :class:`~seqlab.models.SequenceModel` (arch ``sequence``).
        readout: ``sequence`` (outputs at every step) or ``last`` (classifiers).

    Raises:
        ExportError: the model is not a per-step sequence model or holds a mixer that cannot
            be exported with a dynamic sequence length.
    """
    if readout not in ("sequence", "last"):
        raise ConfigError(f"readout: expected 'sequence' or 'last', got {readout!r}")
    exportable = exportable_copy(model)
    if readout == "last" and exportable.io.vocab_size is None:
        raise ExportError("readout 'last' (a classifier) needs token inputs")
    return (LastTokenOutputs if readout == "last" else SequenceOutputs)(exportable).eval()


def exportable_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode whose mixers use backends that export.

    Recurrent layers use torch's kernels (``aten.lstm/gru/rnn``: one ONNX LSTM/GRU/RNN node;
    recurrent dropout is a training-time option, inactive in eval), attention its reference path
    (the fast path branches on the data: "is any token padded?"), mLSTM its parallel form.
    """
    from seqlab.models import SequenceModel

    if not isinstance(model, SequenceModel):
        raise ExportError(
            f"export supports per-step sequence models (arch 'sequence'), got {type(model).__name__}; "
            f"exportable: {EXPORTABLE}"
        )
    blocked = sorted({type(m).__name__ for m in model.modules()} & NOT_EXPORTABLE.keys())
    if blocked:
        reasons = "; ".join(NOT_EXPORTABLE[name] for name in blocked)
        raise ExportError(f"cannot export {', '.join(blocked)}: {reasons}. Exportable: {EXPORTABLE}")
    exportable = copy.deepcopy(model).eval()
    for module in exportable.modules():
        _choose_backend(module)
    return exportable


def _choose_backend(module: nn.Module) -> None:
    from seqlab.mixers.attention import AttentionMixer
    from seqlab.mixers.mlstm import MLSTMMixer
    from seqlab.nn.rnn import RNNBase

    if isinstance(module, RNNBase) and module.mode.startswith("RNN_"):
        raise ExportError(
            "cannot export an Elman RNN (rnn) with a dynamic sequence length: torch traces its "
            f"kernel by unrolling time (LSTM and GRU have a loop form). Exportable: {EXPORTABLE}"
        )
    if isinstance(module, RNNBase) and module.backend != "torch":
        if module.layer_norm:
            raise ExportError(
                "cannot export a layer-norm LSTM: it runs a step loop over time (torch's LSTM "
                f"kernel has no layer norm). Exportable: {EXPORTABLE}"
            )
        module.backend = "torch"
    elif isinstance(module, AttentionMixer) and module.config.backend != "naive":
        module.config = dataclasses.replace(module.config, backend="naive")
    elif isinstance(module, MLSTMMixer):
        module.config = dataclasses.replace(module.config, mode="parallel")
        # the NaN/inf input check reads the data (a Python bool), which a graph cannot hold
        module._check_finite = _skip_check


def _skip_check(x: Tensor, real: Tensor) -> None:
    """Stands in for the data-dependent input check of a mixer in an exported copy."""


def input_names(wrapper: nn.Module) -> list[str]:
    """Names of the exported graph's inputs: ``input_ids`` / ``features`` (+ ``lengths``)."""
    first = "features" if wrapper.model.io.vocab_size is None else "input_ids"
    return [first, "lengths"] if isinstance(wrapper, LastTokenOutputs) else [first]


def example_inputs(wrapper: nn.Module, batch: int, time: int, seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs of shape (batch, time) for ``wrapper`` (lengths: full rows but the first)."""
    io = wrapper.model.io
    generator = torch.Generator().manual_seed(seed)
    if io.vocab_size is None:
        inputs = torch.randn(batch, time, io.input_dim, generator=generator)  # (B, T, F)
    else:
        inputs = torch.randint(0, io.vocab_size, (batch, time), generator=generator)  # (B, T)
    if not isinstance(wrapper, LastTokenOutputs):
        return (inputs,)
    lengths = torch.full((batch,), time, dtype=torch.long)
    lengths[0] = max(1, time - 2)  # one padded row: the gather must pick the right position
    return inputs, lengths


def check_example(wrapper: nn.Module, example: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """``example`` as a tuple of (B, T, ...) tensors matching :func:`input_names`."""
    names = input_names(wrapper)
    if len(example) != len(names):
        raise ShapeError(f"expected {len(names)} example input(s) ({', '.join(names)}), got {len(example)}")
    if example[0].dim() < 2:
        raise ShapeError(f"expected {names[0]} of shape (B, T, ...), got {tuple(example[0].shape)}")
    return tuple(example)


def other_shapes(batch: int, time: int) -> list[tuple[int, int]]:
    """Two (batch, time) pairs, each different from the example's in both, for verification."""
    return [(batch + 1, time + 5), (1 if batch > 1 else batch + 2, time // 2 if time > 2 else time + 9)]
