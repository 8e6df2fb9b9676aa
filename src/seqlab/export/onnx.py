"""ONNX export with the dynamo exporter (``torch.onnx.export(..., dynamo=True)``), verified in
onnxruntime.

Shape legend: B batch · T time · O outputs.

The graph has dynamic batch and sequence axes (``torch.export.Dim``); its inputs and outputs are
those of the wrappers in :mod:`seqlab.export.wrapper` (``input_ids`` (B, T) int64 [+ ``lengths``
(B,) int64] -> ``logits`` (B, T, V) or (B, C); ``features`` (B, T, F) -> ``outputs`` (B, T, O)),
from the zero initial state. Recurrent layers become ONNX ``LSTM`` / ``GRU`` / ``RNN`` nodes.

Why the RNN decompositions are patched for the whole export: torch.onnx swaps in a while-loop
decomposition of ``aten.lstm`` / ``aten.gru`` only while *capturing* the graph; its later
decomposition pass re-runs the ops on fake tensors with torch's default decomposition, which
unrolls the time loop and pins T to the example's length in the graph's value shapes (the ONNX
LSTM node itself still runs any T, but onnxruntime then sees a fixed-length output type).
Keeping the while-loop decomposition active for the whole export leaves T symbolic.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqlab.export.wrapper import (
    TOLERANCE,
    ExportError,
    check_example,
    example_inputs,
    input_names,
    other_shapes,
    wrap,
)
from seqlab.fileio import atomic_write

INSTALL = "pip install 'seqlab[export]'  (or: pip install onnx onnxscript onnxruntime)"


def require_onnx() -> None:
    """Raise a clear error naming the ``pip install`` when the ONNX packages are missing."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}: {INSTALL}")


def export_onnx(
    model: nn.Module,
    path: str | Path,
    example: Tensor | tuple[Tensor, ...] | None = None,
    *,
    readout: str = "sequence",
    opset: int | None = None,
    verify: bool = True,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Export ``model`` to an ONNX file with dynamic batch and sequence axes.

    Args:
        model: a :class:`~seqlab.models.SequenceModel` (not changed: a copy is exported).
        path: the ``.onnx`` file to write (atomically: a temp file beside it, then a rename).
        example: example inputs to trace, e.g. ``input_ids`` (B, T) (a classifier also takes
            ``lengths`` (B,)); None = random inputs of shape (2, 8).
        readout: ``sequence`` (outputs at every step) or ``last`` (classifiers: (B, C)).
        opset: ONNX opset version; None = the exporter's default.
        verify: run the file in onnxruntime (CPU) on the example and at two other batch sizes
            and sequence lengths, and compare with PyTorch.
        tolerance: largest max-abs difference accepted by the verification.

    Returns:
        ``{"path", "inputs", "outputs", "opset", "cases": [{"batch", "time", "max_abs_diff"}],
        "max_abs_diff"}`` (cases empty without ``verify``).

    Raises:
        ExportError: packages missing, the exporter failed or fixed an axis to the example's
            size, or onnxruntime disagrees with PyTorch by more than ``tolerance``.
    """
    require_onnx()
    path = Path(path)
    wrapper = wrap(model, readout)
    example = check_example(wrapper, _as_tuple(example) or example_inputs(wrapper, 2, 8))
    names, output = input_names(wrapper), output_name(wrapper)
    program = _export(wrapper, example, names, output, opset)
    atomic_write(path, lambda tmp: program.save(tmp, external_data=False))
    opset_used = check_graph(path, names)
    result: dict[str, Any] = {"path": str(path), "inputs": names, "outputs": [output], "opset": opset_used}
    result["cases"] = verify_onnx(path, model, wrapper, example, tolerance) if verify else []
    result["max_abs_diff"] = max((c["max_abs_diff"] for c in result["cases"]), default=None)
    return result


def output_name(wrapper: nn.Module) -> str:
    """``logits`` for token models, ``outputs`` for models of real-valued features."""
    return "outputs" if wrapper.model.io.vocab_size is None else "logits"


def _as_tuple(example: Tensor | tuple[Tensor, ...] | None) -> tuple[Tensor, ...] | None:
    return (example,) if isinstance(example, Tensor) else example


def _export(wrapper: nn.Module, example: tuple[Tensor, ...], names: list[str], output: str, opset):
    """torch.onnx.export (dynamo) of ``wrapper`` with dynamic batch and time axes."""
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    dynamic: list[dict[int, Any]] = [{0: batch, 1: time}] + [{0: batch}] * (len(names) - 1)
    kinds = sorted({type(b.mixer).__name__ for b in wrapper.model.blocks})
    with _quiet(), _symbolic_rnn_decompositions(), torch.no_grad():
        try:
            program = torch.onnx.export(
                wrapper,
                example,
                dynamo=True,
                dynamic_shapes=tuple(dynamic),
                input_names=names,
                output_names=[output],
                opset_version=opset,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many kinds: report the root cause's first line
            raise ExportError(
                f"torch.onnx.export failed for a model of {', '.join(kinds)}: {root_cause(err)}"
            ) from err
    if program is None:
        raise ExportError("torch.onnx.export returned no program (dynamo exporter not used)")
    return program


def root_cause(err: BaseException) -> str:
    """The first line of the innermost cause of ``err`` (the exporter wraps its errors)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def check_graph(path: Path, names: list[str]) -> int:
    """``onnx.checker`` the file; the batch and time axes must have stayed symbolic. Returns the opset."""
    import onnx

    onnx.checker.check_model(str(path))
    model = onnx.load(str(path), load_external_data=False)
    first = next(i for i in model.graph.input if i.name == names[0])
    dims = first.type.tensor_type.shape.dim
    fixed = [axis for axis, name in ((0, "batch"), (1, "time")) if not dims[axis].dim_param]
    if fixed:
        sizes = ", ".join(f"{('batch', 'time')[a]}={dims[a].dim_value}" for a in fixed)
        raise ExportError(
            f"the exporter fixed {sizes} in {path} (an op specialised the axis to the example's size); "
            "the graph would only run at that size"
        )
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def verify_onnx(
    path: Path, model: nn.Module, wrapper: nn.Module, example: tuple[Tensor, ...], tolerance: float
) -> list[dict[str, Any]]:
    """Max-abs difference onnxruntime vs PyTorch on the example and two other (batch, time)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    reference = type(wrapper)(model)  # the original model, its own backends
    B, T = example[0].shape[:2]
    cases = [example] + [
        example_inputs(wrapper, b, t, seed=i + 1) for i, (b, t) in enumerate(other_shapes(B, T))
    ]
    results = []
    for inputs in cases:
        feeds = {name: x.numpy() for name, x in zip(input_names(wrapper), inputs)}
        got = torch.from_numpy(session.run(None, feeds)[0])
        want = _reference(reference, inputs)
        if got.shape != want.shape:
            raise ExportError(f"{path}: onnxruntime output {tuple(got.shape)} != PyTorch {tuple(want.shape)}")
        diff = float((got - want).abs().max())
        results.append(
            {"batch": int(inputs[0].shape[0]), "time": int(inputs[0].shape[1]), "max_abs_diff": diff}
        )
        if not diff <= tolerance:
            raise ExportError(
                f"{path}: onnxruntime differs from PyTorch by {diff:.3g} (> {tolerance:g}) at batch "
                f"{results[-1]['batch']}, time {results[-1]['time']}"
            )
    return results


def _reference(reference: nn.Module, inputs: tuple[Tensor, ...]) -> Tensor:
    """PyTorch outputs of the unexported model, in eval mode (its mode restored after)."""
    model = reference.model
    training = model.training
    try:
        with torch.no_grad():
            return reference.eval()(*inputs)
    finally:
        model.train(training)


@contextlib.contextmanager
def _symbolic_rnn_decompositions() -> Iterator[None]:
    """The while-loop decompositions of aten.lstm / aten.gru for the whole export (see module doc)."""
    try:
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:  # another torch version: check_graph still catches a fixed axis
        yield
        return
    with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide the exporter's progress logs and deprecation noise (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [log.level for log in loggers]
    try:
        for log in loggers:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            # two inputs share the batch axis (input_ids, lengths): the exporter notes it
            warnings.filterwarnings("ignore", message=r".*axis name.*will not be used", category=UserWarning)
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


__all__ = ["TOLERANCE", "check_graph", "export_onnx", "require_onnx", "verify_onnx"]
