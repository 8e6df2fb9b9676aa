"""The training engine: joins a task and a model, trains, evaluates, checkpoints, resumes.

Run directory::

    config.yaml          the resolved ExperimentConfig
    metrics.jsonl        one JSON object per logged step / evaluation / event
    tb/                  TensorBoard event files
    checkpoints/         step-NNNNNNNN/ (the newest keep_last) and best/: weights + trainer state
    checkpoint/          the final model (model.safetensors + meta.json), what inference loads
    final_metrics.json   the last evaluation
    <task files>         e.g. tokenizer.json, written by the task

One update = ``grad_accum`` micro-batches (each this rank's share of a global batch, or the next
TBPTT window of a stream), losses weighted by scored positions over the whole update, then the
non-finite guard, clipping, the optimiser and the schedule. Helpers live beside this file:
checkpoint/state (what is saved), clipping, schedule/tracking, tbptt, guard, loggers, distributed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from seqlab.config import save_file
from seqlab.errors import ConfigError, InvalidInputError
from seqlab.fileio import atomic_write_text
from seqlab.models import ModelConfig, build_model
from seqlab.tasks import Batch, Task, build_task
from seqlab.tasks.stream import is_stream_task
from seqlab.training import distributed as dist
from seqlab.training.checkpoint import CheckpointManager, load_checkpoint, load_state, save_checkpoint
from seqlab.training.clipping import GradClipper
from seqlab.training.config import ExperimentConfig
from seqlab.training.cpu import apply_gemm, apply_malloc
from seqlab.training.evaluation import evaluate, run_model, write_predictions
from seqlab.training.guard import NonFiniteError, diagnose, grads_finite
from seqlab.training.loggers import Progress, RunLoggers
from seqlab.training.memory import enable_activation_checkpointing, memory_mb
from seqlab.training.optim import build_optimizer
from seqlab.training.rundir import PreviousRun, check_resumable
from seqlab.training.schedule import build_schedule
from seqlab.training.state import (
    detach_state,
    pack_carry,
    pack_optimizer,
    pack_rng,
    unpack_carry,
    unpack_optimizer,
    unpack_rng,
)
from seqlab.training.tbptt import StreamCursor, Window
from seqlab.training.tracking import MetricTracker, Plateau, resolve_mode

log = logging.getLogger(__name__)

MAX_SKIPS_IN_A_ROW = 20  # on_nonfinite=skip gives up after this many consecutive bad steps
Callback = Callable[["Trainer"], None]


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use 'cpu'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: expected 'cpu' or 'cuda[:N]', got {name!r}") from None


class Trainer:
    """One run. ``callbacks`` are called with the trainer before every update (e.g. to inspect or
    perturb it in tests); :meth:`fit` returns the final metrics."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: str | Path,
        *,
        progress: bool = True,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        tc = self.tc = config.train
        self.config, self.run_dir, self.callbacks = config, Path(run_dir), list(callbacks)
        self.dist = dist.init_distributed(tc.device)
        self.device = resolve_device(dist.device_for(self.dist, tc.device))
        if tc.threads:
            torch.set_num_threads(tc.threads)
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
            torch.use_deterministic_algorithms(True)
        if tc.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("train.precision: fp16 needs CUDA (use bf16 on CPU)")

        self.counters = {"tokens": 0, "train_time": 0.0, "clipped": 0, "skipped": 0, "skips_in_a_row": 0}
        # 1. task, model, optimiser, schedule, clipping — all seeded
        torch.manual_seed(tc.seed)
        self.task: Task = build_task(config.task.name, config.task.options, seed=tc.seed)
        self.model = build_model(config.model, self.task.io).to(self.device)
        self.cpu_choices = {
            "gemm": apply_gemm(self.model, tc.gemm, self.device, tc.precision, tc.compile),
            "malloc": apply_malloc(tc.malloc, self.device),
        }
        if tc.grad_checkpointing:
            enable_activation_checkpointing(self.model)
        self.net = dist.wrap(self.model, self.dist, self.device)
        self.forward_net = torch.compile(self.net) if tc.compile else self.net
        self.optimizer = build_optimizer(self.model, tc)
        self.metric = tc.metric or selection_metric(self.task.primary_metric)
        mode = resolve_mode(self.metric, tc.metric_mode)
        self.plateau = Plateau(mode, tc.plateau_factor, tc.plateau_patience, tc.min_delta)
        self.schedule = build_schedule(
            self.optimizer, tc, getattr(config.model, "d_model", 512), self.plateau, self._time_fraction
        )
        self.clipper = GradClipper.from_config(tc)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.precision == "fp16")
        self.tracker = MetricTracker(mode, tc.min_delta)
        self.generator = torch.Generator().manual_seed(tc.seed)
        self.cursor = self._stream_cursor() if tc.tbptt else None
        self.checkpoints = CheckpointManager(self.run_dir, tc.keep_last)
        self.step = 0
        self.show_progress = progress and self.dist.is_main
        self.stopped = False  # early stopping fired (saved, so a resume does not train on)
        self.last_eval: tuple[int, dict[str, Any]] = (-1, {})  # (step, metrics) of the newest evaluation

    # -- setup -----------------------------------------------------------------------------------

    def _stream_cursor(self) -> StreamCursor:
        tc, name = self.tc, self.config.task.name
        if not is_stream_task(self.task):
            raise ConfigError(
                f"train.tbptt: task {name!r} has no training stream; stateful TBPTT needs a "
                "streaming task such as charlm"
            )
        grows = self.model.state_size(4096) != self.model.state_size(8192)  # bounded states stop growing
        if not isinstance(self.config.model, ModelConfig) or grows:
            raise ConfigError(
                "train.tbptt: the model's state grows with the context (plain attention's KV cache); "
                "use xl-attention (segment memory) or recurrent mixers"
            )
        if self.dist.active:  # each rank carries its own rows, and checkpoints hold rank 0's only
            raise ConfigError(
                "train.tbptt is not supported under torchrun yet; train the stream in one process"
            )
        return StreamCursor(self.task, tc.batch_size, tc.tbptt, tc.backprop_len)

    def start(self, resume: bool) -> None:
        """Write the run's config and task files, or load the newest good checkpoint to resume."""
        if resume and self._resume():
            return
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_file(self.config.to_dict(), self.run_dir / "config.yaml")
            self.task.save(self.run_dir)
        self.loggers = RunLoggers(self.run_dir, self.config, None, self.dist.is_main)
        params, size = self.model.num_params(), self.model.state_size()
        start = {"event": "start", "step": 0, "params": params, "state_size": size, **self.cpu_choices}
        self.loggers.write(start, 0)
        log.info("model: %s parameters; gemm %s, malloc %s", f"{params:,}", *self.cpu_choices.values())
        if self.tc.metric:  # a name the user typed: check it before any training, on step 0's model
            metrics = evaluate(self.model, self.task, self.tc.eval_batch_size)
            self._check_metric(metrics)
            self.loggers.write({"step": 0, "eval": metrics}, 0)

    def _resume(self) -> bool:
        if self.dist.is_main:
            self.checkpoints.clean_partial()
        dist.barrier(self.dist)
        path = self.checkpoints.latest()
        if self.dist.is_main:
            self.checkpoints.drop_after(path)  # corrupt newer ones would outrank fresh saves
        if path is None:
            log.warning("%s: no checkpoint to resume from; starting from step 0", self.run_dir)
            return False
        load_checkpoint(path, self.model)
        tensors, data = load_state(path)
        unpack_optimizer(self.optimizer, tensors, data["optimizer"])
        self.schedule.load_state_dict(data["schedule"])
        if data["scaler"]:
            self.scaler.load_state_dict(data["scaler"])
        self.clipper.load_state_dict(data["clipper"])
        self.tracker.load_state_dict(data["tracker"])
        self.plateau.load_state_dict(data["plateau"])
        self.step, self.counters, self.stopped = data["step"], data["counters"], data["stopped"]
        if self.cursor is not None:
            carry = unpack_carry(tensors, self._state_template(), self.device) if data["carry"] else None
            self.cursor.load_state_dict(data["cursor"], carry)
        unpack_rng(self.generator, tensors)  # last: nothing above may draw from the RNGs
        if self.dist.is_main:
            save_file(self.config.to_dict(), self.run_dir / "config.yaml")  # train.* may have changed
        self.loggers = RunLoggers(self.run_dir, self.config, self.step, self.dist.is_main)
        self.loggers.write({"event": "resume", "step": self.step, "checkpoint": str(path)}, self.step)
        log.info("resumed from %s (step %d)", path, self.step)
        return True

    def _state_template(self) -> Any:
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            batch = dist.shard(self.task.stream_batch(self.tc.batch_size, 0, 1), self.dist).to(self.device)
            state = self.model(batch.inputs)[1]
        self.model.train(was_training)
        return state

    # -- the loop --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        tc = self.tc
        progress = Progress(tc.steps, self.step, self.show_progress, tc.log_every)
        clock = time.perf_counter()
        while self._more_steps() and not self.stopped:
            for callback in self.callbacks:
                callback(self)
            record = self._update()
            self.step += 1
            self.counters["train_time"] += time.perf_counter() - clock
            if tc.time_budget and self.dist.active:  # one clock for all ranks: same schedule, same last step
                self.counters["train_time"] = (
                    dist.all_sum(self.counters["train_time"], self.dist, self.device) / self.dist.world
                )
            if self.step % max(tc.log_every, 1) == 0 or not self._more_steps():
                self.loggers.write(self._step_record(record), self.step)
            progress.update(self.step, record["loss"], self._tokens_per_s())
            if tc.eval_every and self.step % tc.eval_every == 0 and self._more_steps():
                metrics = evaluate(self.model, self.task, tc.eval_batch_size)
                self.stopped = self._track(metrics)
                self.last_eval = (self.step, metrics)
                self.loggers.write({"step": self.step, "eval": metrics}, self.step)
                progress.message(f"step {self.step}: " + _headline(metrics, self.task))
            if self._checkpoint_due() and self._more_steps() and not self.stopped:
                self.save()  # the last step's is written by _finish, after the final evaluation
            clock = time.perf_counter()
        progress.close()
        return self._finish()

    def _more_steps(self) -> bool:
        """Steps and time budget left (the final step's evaluation and checkpoint are _finish's)."""
        return self.step < self.tc.steps and self._time_fraction() < 1.0

    def _time_fraction(self) -> float:
        """Share of ``train.time_budget`` spent on training steps so far (0 without a budget)."""
        return self.counters["train_time"] / self.tc.time_budget if self.tc.time_budget else 0.0

    def _update(self) -> dict[str, Any]:
        """One optimiser step over ``grad_accum`` micro-batches; returns what to log.

        Each micro-batch's mean loss is weighted by its share of the scored positions of the whole
        update (all micro-batches, all ranks), so the gradient is that of the global mean. TBPTT
        windows run in order, each from the state the previous one handed on; the cursor keeps
        the last state only once the update has proved finite.
        """
        items = [self._next_item() for _ in range(self.tc.grad_accum)]
        counts = [float(batch.target_mask.sum()) for batch, _ in items]
        total = dist.all_sum(sum(counts), self.dist, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        carry = self.cursor.state if self.cursor is not None else None
        starts, loss_sum, tokens = [], 0.0, 0
        try:
            for i, ((batch, window), count) in enumerate(zip(items, counts)):
                sync = i == len(items) - 1 or not self.dist.active
                starts.append(None if window is None or window.fresh else carry)
                with contextlib.nullcontext() if sync else self.net.no_sync():
                    loss, carry = self._loss(batch, window, starts[-1])
                    self.scaler.scale(loss * (count * self.dist.world / max(total, 1.0))).backward()
                loss_sum += loss.item() * count
                tokens += int(batch.mask.sum()) if batch.mask is not None else batch.target_mask.numel()
        except InvalidInputError:  # a mixer refused NaN/Inf coming from an earlier layer
            loss_sum = math.nan
        loss_value = dist.all_sum(loss_sum, self.dist, self.device) / total if total else 0.0
        self.counters["tokens"] += tokens * self.dist.world
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        # with fp16 the scaler checks the gradients itself (and skips overflowing steps)
        finite = math.isfinite(loss_value) and (self.scaler.is_enabled() or grads_finite(params))
        if not finite:
            return self._nonfinite(loss_value, items[0], starts[0] if starts else None)
        if self.cursor is not None:
            self.cursor.carry(carry)
        self.counters["skips_in_a_row"] = 0
        clip = self.clipper(params)
        self.counters["clipped"] += clip.clipped
        if total:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.step()
        else:  # nothing scored (e.g. echo's first steps): only the state moved; keep the schedule in step
            self.scaler.update()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
                self.schedule.step()
        return {"loss": loss_value, "grad_norm": clip.norm, "clipped": clip.clipped}

    def _next_item(self) -> tuple[Batch, Window | None]:
        tc = self.tc
        if self.cursor is not None:
            window = self.cursor.next_window()
            return dist.shard(window.batch, self.dist).to(self.device), window
        if tc.batch_tokens:
            batch = self.task.train_batch_tokens(tc.batch_tokens, self.generator)
        else:
            batch = self.task.train_batch(tc.batch_size, self.generator)
        return dist.shard(batch, self.dist).to(self.device), None

    def _loss(self, batch: Batch, window: Window | None, state: Any) -> tuple[torch.Tensor, Any]:
        """Mean loss over this micro-batch's scored positions (0 if none), and for a TBPTT window
        the detached state at the next window's start."""
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.tc.precision)
        carry = None
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if window is None:
                outputs = run_model(self.forward_net, batch)
            else:
                outputs, carry = self._window_outputs(self.forward_net, batch, window.split, state)
                carry = detach_state(carry)
            if not batch.target_mask.any():
                return outputs.sum() * 0.0, carry  # keeps every parameter in the graph (DDP)
            return self.task.loss(outputs, batch, label_smoothing=self.tc.label_smoothing), carry

    @staticmethod
    def _window_outputs(net, batch: Batch, split: int, state: Any) -> tuple[torch.Tensor, Any]:
        """Outputs of a TBPTT window from ``state`` and the state at the next window's start."""
        x = batch.inputs
        if 0 < split < x.shape[1]:  # k2 > k1: the next window starts inside this one
            head, mid = net(x[:, :split], state)
            tail, _ = net(x[:, split:], mid)
            return torch.cat([head, tail], dim=1), mid
        outputs, end = net(x, state)
        return outputs, (state if split == 0 else end)

    def _nonfinite(self, loss_value: float, item: tuple[Batch, Window | None], state: Any) -> dict[str, Any]:
        batch, window = item
        if window is None:
            forward = lambda: run_model(self.model, batch)  # noqa: E731
        else:
            forward = lambda: self._window_outputs(self.model, batch, window.split, state)  # noqa: E731
        message = diagnose(self.step + 1, loss_value, self.model, forward)
        if self.cursor is not None and self.cursor.state is not None:
            self.cursor.carry(None)  # the next window starts afresh rather than from a suspect state
            message += "; the carried TBPTT state was reset"
        self.optimizer.zero_grad(set_to_none=True)
        self.counters["skipped"] += 1
        self.counters["skips_in_a_row"] += 1
        self.loggers.write({"step": self.step + 1, "event": "nonfinite", "message": message}, self.step + 1)
        if self.tc.on_nonfinite == "stop" or self.counters["skips_in_a_row"] >= MAX_SKIPS_IN_A_ROW:
            params_ok = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
            if params_ok and not self.checkpoints.path(self.step).exists():
                self.save()  # a transient fault: the parameters are those of the last good step
            self.loggers.close()
            last = self.checkpoints.latest() if self.dist.is_main else None
            raise NonFiniteError(f"{message}; stopped, last good checkpoint: {last or 'none'}")
        log.warning("%s; step skipped", message)
        if self.scaler.is_enabled():
            self.scaler.update()  # unscale_ ran this step; the next one needs a fresh update
        self.schedule.step()
        return {"loss": loss_value, "grad_norm": math.nan, "clipped": False, "skipped": True}

    def _step_record(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "step": self.step,
            **record,
            "lr": self.schedule.get_last_lr()[0],
            "clip_rate": self.counters["clipped"] / max(self.step - self.counters["skipped"], 1),
            "time_s": round(self.counters["train_time"], 3),
            "tokens_per_s": round(self._tokens_per_s(), 1),
            "memory_mb": round(memory_mb(self.device), 1),
        }

    def _tokens_per_s(self) -> float:
        return self.counters["tokens"] / max(self.counters["train_time"], 1e-9)

    # -- evaluation, checkpoints, the end --------------------------------------------------------

    def _track(self, metrics: dict[str, Any]) -> bool:
        """Best checkpoint, plateau schedule, early stopping; True to stop."""
        self._check_metric(metrics)
        value = float(metrics[self.metric])
        if self.tracker.update(value) and self.tc.keep_best and self.dist.is_main:
            save_checkpoint(self.checkpoints.root / "best", self.model, self._meta(metrics))
        if self.tc.schedule == "plateau":
            self.plateau.observe(value)
        return bool(self.tc.patience) and self.tracker.bad_evals >= self.tc.patience

    def _check_metric(self, metrics: dict[str, Any]) -> None:
        if self.metric not in metrics:
            choices = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
            raise ConfigError(
                f"train.metric: {self.metric!r} is not a metric of this task; choose from {choices}"
            )

    def _checkpoint_due(self) -> bool:
        every = self.tc.checkpoint_every or self.tc.eval_every
        return bool(every) and self.step % every == 0

    def save(self) -> None:
        """A training checkpoint of the current step (rank 0 writes; every rank waits for it)."""
        if self.dist.is_main:
            self.checkpoints.save(self.step, self.model, self._meta(), self._state())
        dist.barrier(self.dist)

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        optim_tensors, optim_data = pack_optimizer(self.optimizer)
        carry = self.cursor.state if self.cursor is not None else None
        tensors = optim_tensors | pack_rng(self.generator) | (pack_carry(carry) if carry is not None else {})
        data = {
            "step": self.step,
            "counters": self.counters,
            "optimizer": optim_data,
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "clipper": self.clipper.state_dict(),
            "tracker": self.tracker.state_dict(),
            "plateau": self.plateau.state_dict(),
            "cursor": self.cursor.state_dict() if self.cursor is not None else None,
            "carry": carry is not None,
            "stopped": self.stopped,
        }
        return tensors, data

    def _meta(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"step": self.step, "config": self.config.to_dict(), "metrics": _scalars(metrics or {})}

    def _finish(self) -> dict[str, Any]:
        if self.last_eval[0] == self.step:  # stopped early right after evaluating this model
            final = dict(self.last_eval[1])
        else:
            final = evaluate(self.model, self.task, self.tc.eval_batch_size)
            self._track(final)  # the last evaluation may be the best
        final |= {
            "step": self.step,
            "train_time_s": round(self.counters["train_time"], 2),
            "params": self.model.num_params(),
            "stopped_early": self.stopped,
            "out_of_time": self._time_fraction() >= 1.0,
            "skipped_steps": self.counters["skipped"],
        }
        if self.tracker.best is not None:
            final[f"best_{self.metric}"] = self.tracker.best
        self.loggers.write({"step": self.step, "eval": final, "final": True}, self.step)
        self.loggers.close()
        if self.dist.is_main:
            self.checkpoints.save(self.step, self.model, self._meta(final), self._state())
            save_checkpoint(self.run_dir / "checkpoint", self.model, self._meta(final))
            atomic_write_text(self.run_dir / "final_metrics.json", json.dumps(final, indent=2) + "\n")
            write_predictions(self.model, self.task, self.run_dir, self.tc.eval_batch_size)
        dist.barrier(self.dist)
        return final


def train(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Iterable[Callback] = (),
) -> dict[str, Any]:
    """Train ``config`` into ``run_dir``; returns the final metrics (also in final_metrics.json).

    ``resume`` continues from the newest good checkpoint (the saved config must describe the same
    task and model); ``overwrite`` replaces a previous run's files, which are kept aside until the
    new run has saved its first checkpoint — a run that fails before that (a bad setting, a
    metric name that does not exist: checked by an evaluation before step 1) never destroys an
    earlier one.
    """
    run_dir = Path(run_dir)
    if resume:
        check_resumable(config, run_dir)
    trainer = Trainer(config, run_dir, progress=progress, callbacks=callbacks)
    previous = PreviousRun(run_dir) if overwrite and not resume and trainer.dist.is_main else None
    try:
        trainer.start(resume)
        metrics = trainer.fit()
    except BaseException:
        if previous is not None and not trainer.checkpoints.steps():
            previous.restore()  # the new run failed before saving anything: the old one stands
        raise
    finally:
        dist.shutdown(trainer.dist)
    if trainer.dist.is_main:
        PreviousRun.discard(run_dir)
    return metrics


def selection_metric(primary: str) -> str:
    """What best checkpoints and early stopping track by default: the task's headline metric, but
    on the validation split when the headline is a test metric (never select on the test set)."""
    return "val_" + primary[5:] if primary.startswith("test_") else primary


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def _headline(metrics: dict[str, Any], task: Task) -> str:
    keys = [task.primary_metric] + [k for k in metrics if k.startswith("val_") and k != task.primary_metric]
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), float))
