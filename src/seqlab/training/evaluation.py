"""How tasks see a model: teacher-forced outputs and greedy decoding, without gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqlab.errors import ConfigError
from seqlab.models.decoding import greedy_decode
from seqlab.tasks import Batch, Task


def run_model(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The model's outputs (B, T, O) for a batch: teacher-forced for seq2seq batches."""
    if batch.source is not None:
        return model(batch.source, batch.inputs, source_mask=batch.source_mask, mask=batch.mask)[0]
    if batch.segments is not None:
        return model(batch.inputs, mask=batch.mask, segments=batch.segments)[0]
    return model(batch.inputs, mask=batch.mask)[0]


class Predictor:
    """What tasks evaluate through: outputs and greedy decoding, without gradients, on CPU."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        return run_model(self.model, batch.to(self.device)).float().cpu()

    @torch.no_grad()
    def decode(self, batch: Batch, max_new_tokens: int, bos: int, eos: int, pad: int) -> torch.Tensor:
        batch = batch.to(self.device)
        if batch.source is None:
            raise ConfigError("decode needs a sequence-to-sequence batch (with a source)")
        state = self.model.start(batch.source, batch.source_mask)
        start = torch.full((batch.source.shape[0],), bos, dtype=torch.long, device=self.device)
        return greedy_decode(self.model, state, start, max_new_tokens, eos, pad).cpu()


def write_predictions(model: torch.nn.Module, task: Task, run_dir: Path, batch_size: int) -> None:
    """``task.write_predictions`` through a :class:`Predictor`, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        task.write_predictions(run_dir, Predictor(model), batch_size)
    finally:
        model.train(was_training)


def evaluate(model: torch.nn.Module, task: Task, batch_size: int) -> dict[str, Any]:
    """``task.evaluate`` through a :class:`Predictor`, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return task.evaluate(Predictor(model), batch_size)
    finally:
        model.train(was_training)
