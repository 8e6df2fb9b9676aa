"""The minimal trainer: joins a task and a model, trains, evaluates, writes a run directory.

Run directory::

    config.yaml          the resolved ExperimentConfig
    metrics.jsonl        one JSON object per logged step / evaluation
    checkpoint/          model.safetensors + meta.json (config, step, metrics)
    final_metrics.json   the last evaluation
    <task files>         e.g. tokenizer.json, written by the task

The full engine (TBPTT, resume, mixed precision, ...) replaces this loop in its own issue.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from seqlab.config import save_file
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.models import build_model
from seqlab.models.decoding import greedy_decode
from seqlab.tasks import Batch, Task, build_task
from seqlab.training.checkpoint import save_checkpoint
from seqlab.training.config import ExperimentConfig
from seqlab.training.optim import build_optimizer
from seqlab.training.schedule import build_schedule

log = logging.getLogger(__name__)


RUN_FILES = ("config.yaml", "metrics.jsonl", "final_metrics.json", "tokenizer.json", "checkpoint")


def clear_run_dir(run_dir: Path) -> None:
    """Remove the files a previous run wrote into ``run_dir`` (other files are left alone)."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


class MetricsLog:
    """JSONL metrics file, one object per line, flushed per line (a killed run keeps its history)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use 'cpu'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: expected 'cpu' or 'cuda[:N]', got {name!r}") from None


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


def evaluate(model: torch.nn.Module, task: Task, batch_size: int) -> dict[str, Any]:
    was_training = model.training
    model.eval()
    try:
        return task.evaluate(Predictor(model), batch_size)
    finally:
        model.train(was_training)


def train(config: ExperimentConfig, run_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Train ``config`` into ``run_dir``; returns the final metrics (also in final_metrics.json)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = config.train
    device = resolve_device(tc.device)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    save_file(config.to_dict(), run_dir / "config.yaml")

    # 1. task, model, optimiser, schedule — all seeded
    torch.manual_seed(tc.seed)
    task = build_task(config.task.name, config.task.options, seed=tc.seed)
    task.save(run_dir)
    model = build_model(config.model, task.io).to(device)
    optimizer = build_optimizer(model, tc.lr, tc.weight_decay, tc.beta2, tc.eps)
    schedule = build_schedule(optimizer, tc, config.model.d_model)
    generator = torch.Generator().manual_seed(tc.seed)
    metrics_log = MetricsLog(run_dir / "metrics.jsonl")
    metrics_log.write({"event": "start", "params": model.num_params(), "state_size": model.state_size()})
    log.info("model: %s parameters", f"{model.num_params():,}")

    # 2. the loop
    bar = tqdm(total=tc.steps, disable=not progress, file=sys.stderr, desc="train", dynamic_ncols=True)
    start, tokens, eval_time = time.perf_counter(), 0, 0.0
    for step in range(1, tc.steps + 1):
        batch = task.train_batch(tc.batch_size, generator).to(device)
        loss = task.loss(run_model(model, batch), batch, label_smoothing=tc.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm or float("inf"))
        optimizer.step()
        schedule.step()
        tokens += (
            int(batch.mask.sum()) if batch.mask is not None else batch.inputs.shape[0] * batch.inputs.shape[1]
        )
        bar.update(1)
        if step % max(tc.log_every, 1) == 0 or step == tc.steps:
            elapsed = time.perf_counter() - start
            record = {
                "step": step,
                "loss": loss.item(),
                "grad_norm": float(grad_norm),
                "lr": schedule.get_last_lr()[0],
                "time_s": round(elapsed, 3),
                "tokens_per_s": round(tokens / max(elapsed - eval_time, 1e-9), 1),  # training only
            }
            metrics_log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        if tc.eval_every and step % tc.eval_every == 0 and step < tc.steps:
            eval_start = time.perf_counter()
            last = evaluate(model, task, tc.eval_batch_size)
            eval_time += time.perf_counter() - eval_start
            metrics_log.write({"step": step, "eval": last})
            bar.write(f"step {step}: " + _headline(last, task))
    bar.close()

    # 3. final evaluation and checkpoint
    final = evaluate(model, task, tc.eval_batch_size)
    final |= {
        "step": tc.steps,
        "train_time_s": round(time.perf_counter() - start, 2),
        "params": model.num_params(),
    }
    metrics_log.write({"step": tc.steps, "eval": final})
    metrics_log.close()
    save_checkpoint(
        run_dir / "checkpoint",
        model,
        {"step": tc.steps, "config": config.to_dict(), "metrics": _scalars(final)},
    )
    atomic_write_text(run_dir / "final_metrics.json", json.dumps(final, indent=2) + "\n")
    return final


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def _headline(metrics: dict[str, Any], task: Task) -> str:
    keys = [task.primary_metric] + [k for k in metrics if k.startswith("val_") and k != task.primary_metric]
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), float))
