"""The experiment config: task + model + train, as one strict, serialisable dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seqlab.config import check_positive, check_range, from_dict, to_dict
from seqlab.errors import ConfigError
from seqlab.models import ModelConfig
from seqlab.tasks import TASKS


@dataclass
class TrainConfig:
    """Optimisation and evaluation settings of a run (AdamW, clipping, warmup + cosine)."""

    steps: int = 1000
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    clip_norm: float = 1.0
    eval_every: int = 250
    log_every: int = 25
    seed: int = 0
    device: str = "cpu"
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_batch_size", "lr"):
            check_positive(name, getattr(self, name))
        for name in ("weight_decay", "warmup_steps", "clip_norm", "eval_every", "log_every", "threads"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)


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
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        if not isinstance(data, dict) or "task" not in data:
            raise ConfigError("config: expected a mapping with a 'task' section")
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)
