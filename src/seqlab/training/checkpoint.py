"""Checkpoints: safetensors weights + JSON metadata, written atomically, verified, no pickle.

A checkpoint directory holds ``model.safetensors`` and ``meta.json``; a *training* checkpoint also
``trainer.safetensors`` (optimiser moments, RNG states, carried recurrent state) and
``trainer.json`` (step, counters, schedule / clipper / tracker states, data position). Every file
is written to a temp file and renamed; ``meta.json`` is written last and records the SHA-256 of
the other files, so a truncated or mixed-up directory is detected on load, never half-trusted.

:class:`CheckpointManager` keeps a run's training checkpoints in ``checkpoints/step-NNNNNNNN/``:
each is written into a hidden temp directory and renamed into place whole, the ``keep_last``
newest are kept, and :meth:`~CheckpointManager.latest` returns the newest one that verifies,
skipping (and reporting) corrupt ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from seqlab.errors import RunDirError
from seqlab.fileio import UMASK, atomic_write, atomic_write_text, fsync_dir, read_json_object

log = logging.getLogger(__name__)

WEIGHTS, META = "model.safetensors", "meta.json"
STATE_TENSORS, STATE_JSON = "trainer.safetensors", "trainer.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    state: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None,
) -> None:
    """Write ``model.safetensors`` (+ the training ``state`` files) and then ``meta.json``.

    Tied parameters are stored once; :func:`load_checkpoint` restores them through the module.
    ``state`` is (tensors, JSON-able dict) of the trainer, for exact resumption.
    """
    directory = Path(directory)
    tensors = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen and tensor.numel():  # tied weights: keep the first name
            continue
        seen.add(tensor.data_ptr())
        tensors[name] = tensor.detach().contiguous().cpu()
    files = {WEIGHTS: tensors}
    if state is not None:
        files[STATE_TENSORS] = {k: v.detach().contiguous().cpu() for k, v in state[0].items()}
        atomic_write_text(directory / STATE_JSON, json.dumps(state[1]) + "\n")
    for name, content in files.items():
        atomic_write(directory / name, lambda tmp, content=content: save_file(content, tmp))
    names = [*files, *([STATE_JSON] if state is not None else [])]
    meta = dict(meta) | {"files": {name: sha256(directory / name) for name in names}}
    atomic_write_text(directory / META, json.dumps(meta, indent=2) + "\n")


def read_meta(directory: str | Path) -> dict[str, Any]:
    """``meta.json`` of a checkpoint, after checking every file it lists against its SHA-256."""
    directory = Path(directory)
    meta_path = directory / META
    meta = read_json_object(meta_path, RunDirError, f"missing checkpoint file {meta_path}")
    for name, digest in meta.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise RunDirError(f"missing checkpoint file {path}")
        if sha256(path) != digest:
            raise RunDirError(f"corrupt checkpoint {path}: its SHA-256 does not match {meta_path}")
    return meta


def load_checkpoint(directory: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (strict up to tied copies); returns the metadata."""
    directory = Path(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise RunDirError(f"missing checkpoint file {weights}")
    meta = read_meta(directory)
    tensors = _load_tensors(weights)
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
    return {k: v for k, v in meta.items() if k != "files"}


def load_state(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The trainer state (tensors, JSON dict) of a verified training checkpoint."""
    directory = Path(directory)
    read_meta(directory)
    if not (directory / STATE_JSON).is_file():
        raise RunDirError(f"{directory} is not a training checkpoint (no {STATE_JSON})")
    return _load_tensors(directory / STATE_TENSORS), json.loads((directory / STATE_JSON).read_text())


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise RunDirError(f"corrupt checkpoint {path}: {err}") from None


def _is_tied(model: nn.Module, key: str, loaded: dict[str, torch.Tensor]) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    p = params.get(key)
    return p is not None and any(params.get(k) is p for k in loaded)


class CheckpointManager:
    """``run_dir/checkpoints/step-NNNNNNNN/``: atomic directories, newest ``keep_last`` kept."""

    def __init__(self, run_dir: str | Path, keep_last: int) -> None:
        self.root = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last

    def path(self, step: int) -> Path:
        return self.root / f"step-{step:08d}"

    def steps(self) -> list[int]:
        """Steps of the complete checkpoint directories, oldest first."""
        if not self.root.is_dir():
            return []
        names = (p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("step-"))
        return sorted(int(n[5:]) for n in names if n[5:].isdigit())

    def save(self, step: int, model: nn.Module, meta: dict[str, Any], state) -> Path:
        """Write the checkpoint of ``step`` whole (temp directory, then rename); prune old ones."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.", dir=self.root))
        try:
            save_checkpoint(tmp, model, meta, state)
            final = self.path(step)
            if final.exists():  # re-saving a step (after a resume): the new one replaces it
                shutil.rmtree(final)
            os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700 directories
            tmp.rename(final)
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.steps()[: -self.keep_last]:
            shutil.rmtree(self.path(old), ignore_errors=True)
        return final

    def drop_after(self, path: Path | None) -> None:
        """Delete the checkpoints newer than ``path`` (all if None): on resume they are corrupt,
        and a higher step number would make ``keep_last`` prune the fresh ones instead."""
        keep = int(path.name[5:]) if path is not None else -1
        for step in self.steps():
            if step > keep:
                log.warning("removing unusable checkpoint %s", self.path(step))
                shutil.rmtree(self.path(step), ignore_errors=True)

    def latest(self) -> Path | None:
        """The newest checkpoint that verifies; corrupt ones are reported and skipped."""
        for step in reversed(self.steps()):
            path = self.path(step)
            try:
                load_state(path)
            except RunDirError as err:
                log.warning("skipping checkpoint %s: %s", path, err)
                continue
            return path
        return None

    def clean_partial(self) -> None:
        """Remove temp directories and files left by a run killed while writing a checkpoint."""
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith(".step-"):
                    shutil.rmtree(p, ignore_errors=True)
            for p in self.root.glob("best/.*.tmp"):
                p.unlink(missing_ok=True)
