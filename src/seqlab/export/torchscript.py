"""TorchScript export: ``torch.jit.trace`` of the export wrapper, reloaded and checked.

Shape legend: B batch · T time · O outputs.

TorchScript is deprecated in torch 2.13 in favour of ``torch.export`` (which the ONNX path
uses); this format is for programs that still load ``torch.jit`` archives. Inputs and outputs
are those of :mod:`seqlab.export.wrapper` (token ids (B, T) [+ lengths (B,)] -> outputs
(B, T, O) or (B, C)), from the zero initial state. The traced graph keeps the batch and time
sizes symbolic (they are read from the input's shape); the verification re-runs the reloaded
file at two other batch sizes and lengths to prove it.
"""

from __future__ import annotations

import warnings
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


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    example: Tensor | tuple[Tensor, ...] | None = None,
    *,
    readout: str = "sequence",
    verify: bool = True,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Trace ``model``'s export wrapper and save it as a TorchScript archive (atomically).

    Args:
        model: a :class:`~seqlab.models.SequenceModel` (not changed: a copy is traced).
        path: the ``.pt`` file to write; load it with ``torch.jit.load(path)``.
        example: example inputs (see :func:`seqlab.export.export_onnx`); None = random (2, 8).
        readout: ``sequence`` or ``last`` (classifiers).
        verify: reload the file and compare with the model on the example and two other shapes.
        tolerance: largest max-abs difference accepted.

    Returns:
        ``{"path", "inputs", "cases": [{"batch", "time", "max_abs_diff"}], "max_abs_diff"}``.

    Raises:
        ExportError: tracing failed or the reloaded module disagrees with the model.
    """
    path = Path(path)
    wrapper = wrap(model, readout)
    if isinstance(example, Tensor):
        example = (example,)
    example = check_example(wrapper, example or example_inputs(wrapper, 2, 8))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values; verified below
        try:
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        except Exception as err:
            raise ExportError(f"torch.jit.trace failed: {type(err).__name__}: {err}") from err
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # torch 2.13 deprecates torch.jit for torch.export
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp))
    result: dict[str, Any] = {"path": str(path), "inputs": input_names(wrapper)}
    result["cases"] = _verify(path, model, wrapper, example, tolerance) if verify else []
    result["max_abs_diff"] = max((c["max_abs_diff"] for c in result["cases"]), default=None)
    return result


def _verify(
    path: Path, model: nn.Module, wrapper: nn.Module, example: tuple[Tensor, ...], tolerance: float
) -> list[dict[str, Any]]:
    """Max-abs difference of the reloaded module vs the original model, per (batch, time)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    reference = type(wrapper)(model)
    B, T = example[0].shape[:2]
    cases = [example] + [
        example_inputs(wrapper, b, t, seed=i + 1) for i, (b, t) in enumerate(other_shapes(B, T))
    ]
    training = model.training
    results = []
    try:
        model.eval()
        for inputs in cases:
            with torch.no_grad():
                got, want = loaded(*inputs), reference(*inputs)
            b, t = int(inputs[0].shape[0]), int(inputs[0].shape[1])
            if got.shape != want.shape:
                raise ExportError(f"{path}: TorchScript output {tuple(got.shape)} != {tuple(want.shape)}")
            diff = float((got - want).abs().max())
            results.append({"batch": b, "time": t, "max_abs_diff": diff})
            if not diff <= tolerance:
                raise ExportError(
                    f"{path}: TorchScript differs from PyTorch by {diff:.3g} (> {tolerance:g}) "
                    f"at batch {b}, time {t}"
                )
    finally:
        model.train(training)
    return results
