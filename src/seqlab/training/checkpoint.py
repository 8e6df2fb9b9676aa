"""Checkpoints: safetensors weights + JSON metadata, written atomically, loaded without pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqlab.errors import RunDirError
from seqlab.fileio import atomic_write, atomic_write_text

WEIGHTS, META = "model.safetensors", "meta.json"


def save_checkpoint(directory: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``meta.json`` into ``directory`` (each atomically).

    Tied parameters are stored once; :func:`load_checkpoint` restores them through the module.
    """
    directory = Path(directory)
    tensors = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen and tensor.numel():  # tied weights: keep the first name
            continue
        seen.add(tensor.data_ptr())
        tensors[name] = tensor.detach().contiguous().cpu()
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(tensors, tmp))
    atomic_write_text(directory / META, json.dumps(meta, indent=2) + "\n")


def load_checkpoint(directory: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (strict up to tied copies); returns the metadata."""
    directory = Path(directory)
    weights, meta_path = directory / WEIGHTS, directory / META
    for path in (weights, meta_path):
        if not path.is_file():
            raise RunDirError(f"missing checkpoint file {path}")
    try:
        tensors = load_file(weights)
    except (SafetensorError, OSError) as err:
        raise RunDirError(f"corrupt checkpoint {weights}: {err}") from None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RunDirError(f"{meta_path}:{err.lineno}: invalid JSON: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunDirError(f"cannot read {meta_path}: {err}") from None
    if not isinstance(meta, dict):
        raise RunDirError(f"{meta_path}: expected a JSON object")
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shape mismatches
        detail = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise RunDirError(f"checkpoint {weights} does not fit the model: {detail}") from None
    missing = [k for k in missing if not _is_tied(model, k, tensors)]
    if missing or unexpected:
        raise RunDirError(
            f"checkpoint {weights} does not fit the model: missing {missing}, unexpected {unexpected}"
        )
    return meta


def _is_tied(model: nn.Module, key: str, loaded: dict[str, torch.Tensor]) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    p = params.get(key)
    return p is not None and any(params.get(k) is p for k in loaded)
