"""The benchmark cases of ``seqlab bench``: what is measured, against which reference.

Shape legend: B batch · T time (context for decode) · D model width · V vocabulary.

A :class:`Case` names a module under test and its reference, built together by ``build(shape)``
(so weights can be shared or copied and both compute the same function), the kind of call
(``fwd`` no-grad forward, ``fwd+bwd`` training step, ``prefill`` no-grad LM forward over T
tokens, ``decode`` one LM step after a prefill of T tokens), default shapes and dtype. Every
module maps x (B, T, D) floats — or (B, T) token ids for the LM cases — to one tensor; the
harness (:mod:`seqlab.bench.harness`) times and measures it. Model FLOPs per token for MFU are
computed from the module under test (:mod:`seqlab.bench.flops` gives the formulas: LSTM
2·4H(D+H) per layer, attention block 2·(4D² + 2·D·d_ff) + 2·T·D causal, ×3 for fwd+bwd).

Families and references (the same run measures both):

* recurrent layers (B=32, T=256, D=H=256, fwd+bwd): ``seqlab.nn.LSTM`` torch / fused / naive
  backends, layer-norm LSTM, recurrent-dropout LSTM against ``torch.nn.LSTM``; GRU and Elman RNN
  against ``torch.nn.GRU`` / ``torch.nn.RNN`` (plain layers copy the reference's weights);
* attention (B=8, T=1024, D=256, 4 heads, d_ff=4D): our pre-norm block against
  ``torch.nn.TransformerEncoderLayer`` with a causal mask, same weights;
* xLSTM blocks (B=8, T=256, D=256, 4 heads): our mLSTM / sLSTM blocks against the official
  ``xlstm`` blocks (skipped, with a note, when ``xlstm`` is not installed);
* whole models for MFU (B=16, T=512, D=512): the ``lstm``, ``gru``, ``transformer``, ``mlstm``,
  ``xlstm`` presets as character LMs (V=64), every FFN scaled with the width;
* generation (B=1): ~10 M-parameter ``lstm`` (D=792), ``xlstm`` (D=888), ``transformer``
  (D=648) LMs (widths from :func:`seqlab.evaluation.study.match_width` at 10⁷ block parameters):
  per-token decode latency after contexts 128 / 1024 / 8192, and prefill throughput;
* ``bf16-*``: a family's module under ``torch.autocast(dtype=bfloat16)`` against the very same
  module in float32 (the reference): where mixed precision pays on this machine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqlab.registry import Registry

KINDS = ("fwd", "fwd+bwd", "prefill", "decode")
DTYPES = ("float32", "bfloat16")
VOCAB = 64
DECODE_WIDTHS = {"lstm": 792, "xlstm": 888, "transformer": 648}  # ~10 M block parameters each


class Shape(NamedTuple):
    B: int
    T: int
    D: int


class Built(NamedTuple):
    """What a case's builder returns: the module under test, its reference (or None), a note."""

    module: nn.Module
    reference: nn.Module | None
    note: str = ""


@dataclass(frozen=True)
class Case:
    """One benchmark case. ``dtype`` None follows the harness's ``--dtype``; ``reference_dtype``
    None means the reference runs in the case's dtype."""

    family: str
    kind: str
    build: Callable[[Shape], Built]
    reference_name: str = ""
    B: int = 8
    T: tuple[int, ...] = (256,)
    D: int = 256
    tokens: bool = False
    dtype: str | None = None
    reference_dtype: str | None = None
    doc: str = field(default="", compare=False)


CASES: Registry[Case] = Registry("bench case")


def register(name: str, case: Case) -> None:
    CASES.register(name)(case)


# -- adapters: every module maps x -> one tensor ---------------------------------------------------


class First(nn.Module):
    """The first output of a module that returns a tuple (``(y, state)``, ``(y, (h, c))``)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        out = self.inner(x)
        return out[0] if isinstance(out, tuple) else out


class CausalEncoderLayer(nn.Module):
    """``torch.nn.TransformerEncoderLayer`` called causally (mask + ``is_causal``)."""

    def __init__(self, inner: nn.TransformerEncoderLayer) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device)
        return self.inner(x, src_mask=mask, is_causal=True)


class LanguageModel(nn.Module):
    """A seqlab LM: ``forward`` tokens (B, T) -> logits (B, T, V); ``prefill`` and ``step``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, tokens: Tensor) -> Tensor:
        return self.inner(tokens)[0]

    def prefill(self, tokens: Tensor):
        return self.inner(tokens)[1]

    def step(self, token: Tensor, state):
        return self.inner.step(token, state)


class SameModule(nn.Module):
    """The reference of a ``bf16-*`` case: the case's own module (run in float32 by the harness)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x)


def has_xlstm() -> bool:
    return importlib.util.find_spec("xlstm") is not None


# -- builders --------------------------------------------------------------------------------------


def _rnn(kind: str, reference: bool = True, **options) -> Callable[[Shape], Built]:
    """seqlab.nn.{LSTM,GRU,RNN}(D, D, **options) against torch.nn's layer (weights copied when
    the state_dict keys match, i.e. for the plain layers)."""

    def build(s: Shape) -> Built:
        import seqlab.nn

        ours = getattr(seqlab.nn, kind)(s.D, s.D, **options)
        ref = getattr(nn, kind)(s.D, s.D, batch_first=True) if reference else None
        if ref is not None and set(ref.state_dict()) == set(ours.state_dict()):
            ref.load_state_dict(ours.state_dict())
        return Built(First(ours), First(ref) if ref is not None else None)

    return build


def _attention_block(s: Shape) -> Built:
    from seqlab.bench.attention_speed import _pair

    ours, ref = _pair(s.D, 4, 4 * s.D)
    return Built(First(ours), CausalEncoderLayer(ref))


def _xlstm_block(mixer: str, **options) -> Callable[[Shape], Built]:
    """Our mLSTM (chunkwise) / sLSTM (fused, + gated FFN 1.3·D) block against the official one;
    ``options``: more mixer settings (e.g. ``backend="compiled"``)."""

    def build(s: Shape) -> Built:
        from seqlab.bench import xlstm_speed as xs
        from seqlab.models.blocks import Block
        from seqlab.models.config import FFNConfig

        config = (
            {"num_heads": xs.HEADS}
            | ({"mode": "chunkwise"} if mixer == "mlstm" else {"backend": "fused"})
            | options
        )
        ffn = FFNConfig(xs._ffn_width(s.D) if mixer == "slstm" else 0, "geglu", bias=False)
        ours = First(Block(s.D, mixer, config, ffn, 0.0, "layernorm", True))
        if not has_xlstm():
            return Built(ours, None, "official xlstm not installed (pip install --no-deps xlstm packaging)")
        official = xs._official_mlstm(s.D, s.T) if mixer == "mlstm" else xs._official_slstm(s.D, s.T)
        return Built(ours, official)

    return build


def _lm(preset: str, width: int | None = None) -> Callable[[Shape], Built]:
    """Preset ``preset`` as a character LM (V = 64) at width ``width`` (default: the shape's D)."""

    def build(s: Shape) -> Built:
        from seqlab.evaluation.measure import build_lm
        from seqlab.evaluation.study import width_overrides

        lm = build_lm(preset, list(width_overrides(preset, width or s.D)))
        return Built(LanguageModel(lm), None, f"{lm.num_params() / 1e6:.2f} M parameters")

    return build


def _onednn_lm(preset: str) -> Callable[[Shape], Built]:
    """Preset ``preset`` as a character LM with its linear layers on oneDNN
    (:func:`seqlab.layers.use_onednn_linear`); the reference: the same weights on ``F.linear``."""

    def build(s: Shape) -> Built:
        import copy

        from seqlab.layers import use_onednn_linear

        built = _lm(preset)(s)
        theirs = copy.deepcopy(built.module)
        return Built(use_onednn_linear(built.module), theirs, built.note)

    return build


def _bf16(build: Callable[[Shape], Built]) -> Callable[[Shape], Built]:
    """The module of ``build`` as both sides: the harness runs the case in bf16, the reference in fp32."""

    def wrapped(s: Shape) -> Built:
        built = build(s)
        return Built(built.module, SameModule(built.module), built.note)

    return wrapped


# -- the registry ----------------------------------------------------------------------------------

_RNN = {"B": 32, "T": (256,), "D": 256}
for _name, _kind, _opts, _doc in [
    ("lstm-torch", "LSTM", {"backend": "torch"}, "seqlab LSTM, torch backend (torch's kernel)"),
    ("lstm-fused", "LSTM", {"backend": "fused"}, "seqlab LSTM, fused backend (hand-written BPTT)"),
    ("lstm-naive", "LSTM", {"backend": "naive"}, "seqlab LSTM, naive backend (autograd loop)"),
    ("lstm-compiled", "LSTM", {"backend": "compiled"}, "seqlab LSTM, compiled backend (C++ loop)"),
    ("ln-lstm", "LSTM", {"layer_norm": True}, "layer-norm LSTM (naive backend)"),
    ("ln-lstm-compiled", "LSTM", {"layer_norm": True, "backend": "compiled"}, "layer-norm LSTM, compiled"),
    (
        "lstm-recdrop",
        "LSTM",
        {"recurrent_dropout": 0.25, "backend": "fused"},
        "recurrent dropout 0.25, fused",
    ),
    (
        "lstm-recdrop-compiled",
        "LSTM",
        {"recurrent_dropout": 0.25, "backend": "compiled"},
        "recurrent dropout 0.25, compiled",
    ),
    ("gru", "GRU", {}, "seqlab GRU (auto backend)"),
    ("rnn", "RNN", {}, "seqlab Elman RNN (auto backend)"),
]:
    register(
        _name, Case(_kind.lower(), "fwd+bwd", _rnn(_kind, **_opts), f"torch.nn.{_kind}", **_RNN, doc=_doc)
    )
register(
    "lstm-torch-fwd",
    Case("lstm", "fwd", _rnn("LSTM", backend="torch"), "torch.nn.LSTM", **_RNN, doc="inference forward"),
)
_ATT = {"B": 8, "T": (1024,), "D": 256}
_ATT_DOC = "pre-norm causal attention block, 4 heads, d_ff 4D"
register(
    "attention",
    Case("attention", "fwd+bwd", _attention_block, "TransformerEncoderLayer", **_ATT, doc=_ATT_DOC),
)
register(
    "attention-fwd",
    Case("attention", "fwd", _attention_block, "TransformerEncoderLayer", **_ATT, doc=_ATT_DOC),
)
_XL = {"B": 8, "T": (256,), "D": 256}
register(
    "mlstm-block",
    Case("mlstm", "fwd+bwd", _xlstm_block("mlstm"), "official mLSTMBlock", **_XL, doc="chunkwise"),
)
register(
    "mlstm-block-compiled",
    Case(
        "mlstm",
        "fwd+bwd",
        _xlstm_block("mlstm", backend="compiled"),
        "official mLSTMBlock",
        **_XL,
        doc="chunkwise, q/k/v projections and conv compiled (seqlab.ops.compiled_layers)",
    ),
)
register(
    "slstm-block", Case("slstm", "fwd+bwd", _xlstm_block("slstm"), "official sLSTMBlock", **_XL, doc="fused")
)
for _preset in ("lstm", "gru", "transformer", "mlstm", "xlstm"):
    _doc = f"the {_preset} preset as a char LM, 2 blocks, FFN scaled with D"
    register(
        f"model-{_preset}",
        Case(_preset, "fwd+bwd", _lm(_preset), B=16, T=(512,), D=512, tokens=True, doc=_doc),
    )
for _preset in ("transformer", "gru"):
    register(
        f"model-{_preset}-onednn",
        Case(
            _preset,
            "fwd+bwd",
            _onednn_lm(_preset),
            "same model on F.linear",
            B=16,
            T=(512,),
            D=512,
            tokens=True,
            doc=f"model-{_preset} with its nn.Linear layers on oneDNN (use_onednn_linear)",
        ),
    )
for _preset, _width in DECODE_WIDTHS.items():
    _doc = f"~10 M-parameter {_preset} LM (D={_width})"
    _common = {"B": 1, "D": _width, "tokens": True, "doc": _doc}
    register(f"decode-{_preset}", Case(_preset, "decode", _lm(_preset), T=(128, 1024, 8192), **_common))
    register(f"prefill-{_preset}", Case(_preset, "prefill", _lm(_preset), T=(1024,), **_common))
for _name, _family, _build, _shape in [
    ("lstm", "lstm", _rnn("LSTM", reference=False, backend="torch"), _RNN),
    ("lstm-fused", "lstm", _rnn("LSTM", reference=False, backend="fused"), _RNN),
    ("gru", "gru", _rnn("GRU", reference=False), _RNN),
    ("rnn", "rnn", _rnn("RNN", reference=False), _RNN),
    ("attention", "attention", _attention_block, _ATT),
    ("mlstm-block", "mlstm", _xlstm_block("mlstm"), _XL),
    ("slstm-block", "slstm", _xlstm_block("slstm"), _XL),
    (
        "model-transformer",
        "transformer",
        _lm("transformer"),
        {"B": 16, "T": (512,), "D": 512, "tokens": True},
    ),
]:
    register(
        f"bf16-{_name}",
        Case(
            _family,
            "fwd+bwd",
            _bf16(_build),
            "same module, float32",
            dtype="bfloat16",
            reference_dtype="float32",
            doc=f"bf16 autocast vs fp32: {_name}",
            **_shape,
        ),
    )


def case_names(kind: str | None = None) -> list[str]:
    """Registered case names (of one kind)."""
    return [n for n in CASES.names() if kind is None or CASES.get(n).kind == kind]


def describe(name: str) -> str:
    """One line: kind, default shapes, dtype and reference."""
    c = CASES.get(name)
    ref = c.reference_name or "no reference"
    dtype = c.dtype or "--dtype"
    return f"{c.kind:8s} B={c.B} T={','.join(map(str, c.T))} D={c.D} {dtype}; vs {ref}. {c.doc}"


def autocast(device: str, dtype: str):
    """``torch.autocast`` for bfloat16 (``cpu`` or ``cuda``), a no-op context for float32."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16")
