"""The experiment config: task + model + train, as one strict, serialisable dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from seqlab.config import check_positive, check_range, from_dict, to_dict
from seqlab.errors import ConfigError
from seqlab.models import ModelConfig, dump_model, parse_model
from seqlab.tasks import TASKS


@dataclass
class TrainConfig:
    """Optimisation, precision, checkpointing and evaluation settings of a run.

    Batches: ``batch_size`` sequences per step, or ``batch_tokens`` padded tokens per step
    (length-bucketed); ``grad_accum`` micro-batches per optimiser step. ``tbptt`` > 0 switches a
    streaming task (e.g. ``charlm``) to stateful truncated BPTT: consecutive chunks of ``tbptt``
    steps continue the same rows, the state is carried across them and detached at each chunk
    boundary; gradients reach back ``tbptt_backprop`` ≥ ``tbptt`` steps (default = ``tbptt``).

    Optimiser ``adamw`` | ``adam`` | ``sgd`` (momentum, Nesterov off) | ``rmsprop`` with decay groups
    (no decay on biases, norms, embeddings); ``schedule`` ``cosine`` | ``linear`` (warmup, then decay
    to ``min_lr_ratio``) | ``noam`` (``lr`` a factor on it) | ``constant`` | ``plateau`` (warmup, then
    ×``plateau_factor`` after ``plateau_patience`` evaluations without improvement of ``metric``).

    Clipping ``clip``: ``norm`` (global L2 norm ≤ ``clip_norm``), ``value`` (each entry in
    ±``clip_value``), ``adaptive`` (global norm ≤ a running threshold
    ``thr_t = α·thr_{t−1} + (1−α)·c·min(‖g_t‖, thr_{t−1})``, α = ``clip_alpha``, c = ``clip_factor``)
    or ``none``.

    ``precision``: ``fp32``, ``bf16`` (autocast, CPU and CUDA) or ``fp16`` (autocast + GradScaler,
    CUDA only). ``metric`` / ``metric_mode`` name what ``best`` checkpoints, early stopping
    (``patience`` evaluations, ``min_delta``) and the plateau schedule track (default: the task's
    headline metric, on the validation split; ``auto`` maximises accuracies/F1/BLEU and minimises
    the rest).

    ``gemm`` (``auto`` | ``torch`` | ``onednn``): the GEMM library of the model's linear layers
    on CPU — ``auto`` takes oneDNN on AMD CPUs for float32 training; ``malloc`` (``auto`` |
    ``system`` | ``keep``): ``auto``/``keep`` make glibc keep freed memory on a CPU run (no page
    faults for big activations, a higher resident size). See :mod:`seqlab.training.cpu`.

    ``time_budget`` > 0: stop after that many seconds of training (evaluation not counted) or at
    ``steps``, whichever comes first; cosine and linear decay then follow the larger of the step
    and the time fraction, so the run anneals within its budget (matched wall-clock comparisons).
    """

    steps: int = 1000
    time_budget: float = 0.0
    batch_size: int = 32
    batch_tokens: int = 0
    grad_accum: int = 1
    eval_batch_size: int = 256
    tbptt: int = 0
    tbptt_backprop: int = 0
    optimizer: Literal["adamw", "adam", "sgd", "rmsprop"] = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.9
    eps: float = 1e-8
    schedule: Literal["cosine", "linear", "noam", "constant", "plateau"] = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    label_smoothing: float = 0.0
    clip: Literal["norm", "value", "adaptive", "none"] = "norm"
    clip_norm: float = 1.0
    clip_value: float = 1.0
    clip_alpha: float = 0.95
    clip_factor: float = 2.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_checkpointing: bool = False
    compile: bool = False
    eval_every: int = 250
    log_every: int = 25
    checkpoint_every: int = 0
    keep_last: int = 2
    keep_best: bool = True
    metric: str = ""
    metric_mode: Literal["auto", "min", "max"] = "auto"
    patience: int = 0
    min_delta: float = 0.0
    on_nonfinite: Literal["skip", "stop"] = "stop"
    tensorboard: bool = True
    mlflow: bool = False
    seed: int = 0
    deterministic: bool = False
    device: str = "cpu"
    threads: int = 0
    gemm: Literal["auto", "torch", "onednn"] = "auto"
    malloc: Literal["auto", "system", "keep"] = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "eval_batch_size", "lr", "eps", "keep_last"):
            check_positive(name, getattr(self, name))
        for name in (
            "batch_tokens",
            "tbptt",
            "tbptt_backprop",
            "weight_decay",
            "warmup_steps",
            "eval_every",
            "log_every",
            "checkpoint_every",
            "patience",
            "min_delta",
            "threads",
            "time_budget",
        ):
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ("clip_norm", "clip_value", "clip_factor", "plateau_patience"):
            check_positive(name, getattr(self, name))
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        for name in ("beta1", "beta2", "momentum", "clip_alpha"):
            check_range(name, getattr(self, name), 0.0, 0.999999)
        check_range("plateau_factor", self.plateau_factor, 1e-6, 1.0)
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.99)
        if self.tbptt_backprop and self.tbptt_backprop < self.tbptt:
            raise ConfigError(
                f"tbptt_backprop: expected >= tbptt ({self.tbptt}) — every chunk's own steps are "
                f"back-propagated; got {self.tbptt_backprop}"
            )
        if self.tbptt and self.batch_tokens:
            raise ConfigError(
                "batch_tokens: stateful TBPTT reads batch_size rows of tbptt steps; set one of them"
            )
        if self.tbptt_backprop and not self.tbptt:
            raise ConfigError("tbptt_backprop: needs tbptt > 0 (the chunk length of stateful training)")

    @property
    def backprop_len(self) -> int:
        """k2 of TBPTT(k1, k2): how far back gradients reach (= tbptt unless set)."""
        return self.tbptt_backprop or self.tbptt


@dataclass
class TaskSection:
    """``task: {name: parity, <options of that task>}``."""

    name: str
    options: Any


def _parse_task(value: Any, path: str) -> TaskSection:
    if isinstance(value, TaskSection):
        return value
    if isinstance(value, str):  # shorthand: `task: parity`
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(
            f"{path}: expected a mapping with a 'name' key (one of: {', '.join(TASKS.names())})"
        )
    options = dict(value)
    name = options.pop("name")
    return TaskSection(name, from_dict(TASKS.get(name).Config, options, path))


def _dump_task(section: TaskSection) -> dict[str, Any]:
    return {"name": section.name, **to_dict(section.options)}


@dataclass
class ExperimentConfig:
    """Everything a run needs; ``to_dict`` of it is saved as the run's ``config.yaml``."""

    task: TaskSection = field(metadata={"parse": _parse_task, "dump": _dump_task})
    model: Any = field(default_factory=ModelConfig, metadata={"parse": parse_model, "dump": dump_model})
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        if not isinstance(data, dict) or "task" not in data:
            raise ConfigError("config: expected a mapping with a 'task' section")
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def resolve_config(
    task: str | None, model: str | None, config_file: str | Path | None, overrides: list[str]
) -> ExperimentConfig:
    """The experiment of ``seqlab train``: defaults (the task's train settings, the model preset
    and its train settings) <- a config file <- ``--set KEY=VALUE`` overrides, validated."""
    from seqlab.config import apply_overrides, load_file
    from seqlab.models import MODELS

    file_data = load_file(config_file) if config_file else {}
    if isinstance(file_data.get("task"), str):  # shorthand: `task: parity`
        file_data["task"] = {"name": file_data["task"]}
    file_task = file_data.get("task") if isinstance(file_data.get("task"), dict) else {}
    task_name = task or file_task.get("name")
    if not task_name:
        raise ConfigError("no task given: pass --task NAME (one of: " + ", ".join(TASKS.names()) + ")")
    preset = MODELS.get(model or "lstm")
    data: dict[str, Any] = {
        "task": {"name": task_name},
        "model": preset(),
        "train": dict(TASKS.get(task_name).train_defaults) | getattr(preset, "train_defaults", {}),
    }
    file_model = file_data.get("model")
    other_arch = isinstance(file_model, dict) and file_model.get("arch", "sequence") != data["model"].get(
        "arch", "sequence"
    )
    if model is None and other_arch:
        data["model"] = {}  # another architecture: the file's section stands alone
    for section, values in file_data.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = data[section] | values
        else:
            data[section] = values  # validated (and rejected if malformed) below
    if task and isinstance(data.get("task"), dict):
        data["task"]["name"] = task
    return ExperimentConfig.from_dict(apply_overrides(data, overrides))
