"""Hugging-Face-style pretrained directories: ``config.json`` + ``model.safetensors`` (+ tokenizer).

``save_pretrained(model_or_run, directory)`` writes::

    config.json         {"format": "seqlab-pretrained", "format_version": 1, "seqlab_version",
                         "model": {"arch", ...the model config}, "io": {...the IOSpec},
                         "task", "readout", "labels"}
    model.safetensors   the weights (tied tensors stored once, as in checkpoints)
    tokenizer.json      when the run (or the caller) has a tokenizer

and ``load_pretrained(directory)`` rebuilds the model from the config and loads the weights:
JSON and safetensors only — nothing is unpickled. Every file is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqlab.errors import ConfigError, RunDirError, SeqlabError
from seqlab.fileio import atomic_write, atomic_write_text, read_json_object

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"
FORMAT, FORMAT_VERSION = "seqlab-pretrained", 1
IO_FIELDS = ("output_dim", "vocab_size", "input_dim", "source_vocab_size", "shared_vocab")


@dataclass
class Pretrained:
    """A loaded pretrained directory: the model (eval mode), its tokenizer (or None), config.json."""

    model: nn.Module
    tokenizer: Any  # seqlab.data.Tokenizer | None
    config: dict[str, Any]


def save_pretrained(
    model_or_run: Any,
    directory: str | Path,
    *,
    tokenizer: Any = None,
    task: str | None = None,
    labels: list[str] | None = None,
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and (if any) ``tokenizer.json`` to ``directory``.

    Args:
        model_or_run: a model with ``config`` and ``io`` attributes (any registered arch), or a
            :class:`~seqlab.training.rundir.TrainedRun` (its tokenizer.json and labels.json
            are taken from the run directory unless given).
        directory: created if needed; existing files of the same names are replaced.
        tokenizer: a :class:`~seqlab.data.Tokenizer` or the path of a tokenizer.json.
        task: the task name to record (a TrainedRun's own by default).
        labels: class names of a classifier, in output order.

    Returns:
        ``directory`` as a Path.
    """
    model, config, io, task, tokenizer, labels = _unpack(model_or_run, tokenizer, task, labels)
    directory = Path(directory)
    save_weights(model, config, io, directory, task=task, labels=labels)
    if isinstance(tokenizer, str | Path):
        data = Path(tokenizer).read_bytes()
        atomic_write(directory / TOKENIZER, lambda tmp: Path(tmp).write_bytes(data))
    elif tokenizer is not None:
        tokenizer.save(directory / TOKENIZER)
    return directory


def export_safetensors(model_or_run: Any, directory: str | Path) -> Path:
    """The weights alone: ``model.safetensors`` + ``config.json`` (no tokenizer)."""
    model, config, io, task, _, labels = _unpack(model_or_run, None, None, None)
    return save_weights(model, config, io, Path(directory), task=task, labels=labels)


def save_weights(
    model: nn.Module, config: Any, io: Any, directory: Path, *, task: str | None, labels: list[str] | None
) -> Path:
    """``model.safetensors`` (tied tensors once) then ``config.json``, each written atomically."""
    from seqlab import __version__
    from seqlab.export.wrapper import readout_for_task
    from seqlab.models import dump_model

    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        if tensor.numel() and tensor.data_ptr() in seen:  # tied weights: the first name keeps them
            continue
        seen.add(tensor.data_ptr())
        tensors[name] = tensor.detach().contiguous().cpu()
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(tensors, tmp))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seqlab_version": __version__,
        "model": dump_model(config),
        "io": {k: v for k, v in asdict(io).items() if k in IO_FIELDS},
        "task": task,
        "readout": readout_for_task(task),
        "labels": labels,
    }
    atomic_write_text(directory / CONFIG, json.dumps(meta, indent=2) + "\n")
    return directory


def load_pretrained(directory: str | Path) -> Pretrained:
    """Rebuild the model of a :func:`save_pretrained` directory and load its weights and tokenizer.

    Raises:
        RunDirError: a missing, unreadable or damaged file (the message names it), or weights
            that do not fit the model the config describes.
    """
    from seqlab.data import load_tokenizer

    directory = Path(directory)
    meta = read_config(directory)
    tokenizer = load_tokenizer(directory / TOKENIZER) if (directory / TOKENIZER).is_file() else None
    model = _build(meta, tokenizer, directory / CONFIG)
    load_weights(model, directory / WEIGHTS)
    return Pretrained(model.eval(), tokenizer, meta)


def from_pretrained(directory: str | Path) -> nn.Module:
    """The model of a pretrained directory, weights loaded, in eval mode."""
    return load_pretrained(directory).model


def read_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of a pretrained directory, checked for format and version."""
    path = directory / CONFIG
    missing = f"{directory} is not a seqlab pretrained directory: missing {path}"
    meta = read_json_object(path, RunDirError, missing)
    if meta.get("format") != FORMAT:
        raise RunDirError(f'{path}: not a seqlab pretrained config (expected "format": "{FORMAT}")')
    if meta.get("format_version") != FORMAT_VERSION:
        raise RunDirError(
            f"{path}: format_version {meta.get('format_version')!r} is not supported "
            f"(this seqlab reads version {FORMAT_VERSION})"
        )
    for key in ("model", "io"):
        if not isinstance(meta.get(key), dict):
            raise RunDirError(f"{path}: missing the {key!r} section")
    return meta


def load_weights(model: nn.Module, path: Path) -> None:
    """Load ``model.safetensors`` into ``model``: strict, except that tied copies may be absent."""
    if not path.is_file():
        raise RunDirError(f"missing weights file {path}")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as err:
        raise RunDirError(f"corrupt weights file {path}: {err}") from None
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shape mismatches
        detail = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise RunDirError(f"{path} does not fit the model of its config.json: {detail}") from None
    params = dict(model.named_parameters(remove_duplicate=False))
    tied = {k for k in missing if k in params and any(params.get(n) is params[k] for n in tensors)}
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RunDirError(f"{path} does not fit the model: missing {missing}, unexpected {unexpected}")


def _build(meta: dict[str, Any], tokenizer: Any, path: Path) -> nn.Module:
    """The model ``meta`` describes (random weights; the global RNG is left as it was)."""
    from seqlab.models import build_model, parse_model
    from seqlab.spec import IOSpec

    try:
        config = parse_model(meta["model"], f"{path}: model")
        io_fields = {k: v for k, v in meta["io"].items() if k in IO_FIELDS}
        vocab = tuple(tokenizer.words) if tokenizer is not None else None
        if vocab is not None and len(vocab) != io_fields.get("vocab_size"):
            vocab = None  # e.g. a condlm's control tokens: embeddings that need strings will say so
        io = IOSpec(**io_fields, vocab=vocab)
        with torch.random.fork_rng(devices=[]):
            return build_model(config, io)
    except (SeqlabError, TypeError, ValueError) as err:
        raise ConfigError(f"{path}: cannot build the model: {err}") from None


def _unpack(model_or_run: Any, tokenizer: Any, task: str | None, labels: list[str] | None):
    """(model, model config, IOSpec, task, tokenizer, labels) of a model or a TrainedRun."""
    from seqlab.training.rundir import TrainedRun

    if isinstance(model_or_run, TrainedRun):
        run = model_or_run
        if tokenizer is None and (run.run / TOKENIZER).is_file():
            tokenizer = run.run / TOKENIZER
        if labels is None:
            labels = getattr(run.task, "label_names", None)
        return run.model, run.config.model, run.task.io, task or run.config.task.name, tokenizer, labels
    model = model_or_run
    if not isinstance(model, nn.Module) or not hasattr(model, "config") or not hasattr(model, "io"):
        raise ConfigError(
            f"save_pretrained needs a seqlab model (with .config and .io) or a TrainedRun, "
            f"got {type(model).__name__}"
        )
    return model, model.config, model.io, task, tokenizer, labels
