"""``seqlab export RUN_DIR --format onnx|torchscript|safetensors|pretrained``: a trained run's
model as a file another program can load.

- ``onnx``: ``RUN_DIR/export/model.onnx``, dynamic batch and sequence axes, checked with
  ``onnx.checker`` and verified in onnxruntime (CPU) against PyTorch at three (batch, length)
  shapes (``--no-verify`` skips it). Needs ``pip install 'seqlab[export]'``.
- ``torchscript``: ``RUN_DIR/export/model.pt`` (``torch.jit.load``), verified the same way.
- ``safetensors``: ``RUN_DIR/export/safetensors/`` with ``model.safetensors`` + ``config.json``.
- ``pretrained``: ``RUN_DIR/export/pretrained/``: the same plus ``tokenizer.json``, loaded by
  ``seqlab.export.from_pretrained``.

Graph inputs: ``input_ids`` (B, T) int64 (``features`` (B, T, F) for real-valued tasks; a
``classify`` run also takes ``lengths`` (B,) and returns (B, C)); output ``logits`` (B, T, V).

    $ seqlab export runs/lm --format onnx
    $ seqlab export runs/mr --format pretrained --out models/sentiment
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMATS = ("onnx", "torchscript", "safetensors", "pretrained")
DEFAULT_OUT = {
    "onnx": "export/model.onnx",
    "torchscript": "export/model.pt",
    "safetensors": "export/safetensors",
    "pretrained": "export/pretrained",
}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export",
        parents=[common],
        help="export a trained run's model (ONNX, TorchScript, safetensors, pretrained directory)",
        description="Export a run's model to ONNX or TorchScript (verified against PyTorch), or write "
        "its weights as safetensors or a from_pretrained directory.",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by `seqlab train`")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", type=Path, default=None, help="file (onnx, torchscript) or directory to write")
    p.add_argument(
        "--checkpoint", default=None, help="best | step-N (from checkpoints/); default: the final model"
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--no-verify", action="store_true", help="skip the comparison with PyTorch")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from seqlab.export import (
        export_onnx,
        export_safetensors,
        export_torchscript,
        readout_for_task,
        save_pretrained,
    )
    from seqlab.export.onnx import require_onnx
    from seqlab.training.rundir import load_trained

    if args.format == "onnx":
        require_onnx()  # before the (slower) loading of the run
    trained = load_trained(args.run_dir, args.checkpoint)
    out = args.out or args.run_dir / DEFAULT_OUT[args.format]
    readout = readout_for_task(trained.config.task.name)
    verify = not args.no_verify
    if args.format == "onnx":
        _report(
            export_onnx(trained.model, out, readout=readout, opset=args.opset, verify=verify), "onnxruntime"
        )
    elif args.format == "torchscript":
        _report(export_torchscript(trained.model, out, readout=readout, verify=verify), "TorchScript")
    elif args.format == "safetensors":
        export_safetensors(trained, out)
        print(f"wrote {out}/model.safetensors and {out}/config.json")
    else:
        save_pretrained(trained, out)
        files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        print(f"wrote {out}/ ({', '.join(files)}); load it with seqlab.export.from_pretrained({str(out)!r})")
    return 0


def _report(result: dict[str, Any], runtime: str) -> None:
    outputs = ", ".join(result.get("outputs", []))
    shown = f" -> {outputs}" if outputs else ""
    print(f"wrote {result['path']} (inputs: {', '.join(result['inputs'])}{shown})")
    for case in result["cases"]:
        print(
            f"  {runtime} vs PyTorch, batch {case['batch']:3d}, length {case['time']:4d}: "
            f"max |diff| = {case['max_abs_diff']:.2e}"
        )
    if not result["cases"]:
        print("  not verified (--no-verify)")
