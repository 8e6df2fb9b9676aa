"""The experiment config: task + model + train, as one strict, serialisable dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from seqlab.config import check_positive, check_range, from_dict, to_dict
from seqlab.errors import ConfigError
from seqlab.models import ModelConfig, dump_model, parse_model
from seqlab.tasks import TASKS


@dataclass
class TrainConfig:
    """Optimisation and evaluation settings of a run.

    AdamW(β1=0.9, ``beta2``, ``eps``) with decay groups; ``schedule`` ``cosine`` (warmup + cosine
    to ``min_lr_ratio``), ``noam`` (the Transformer's, ``lr`` a factor on it) or ``constant``;
    ``label_smoothing`` ε for classification losses; global-norm clipping (0 = off).
    """

    steps: int = 1000
    batch_size: int = 32
    eval_batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.01
    beta2: float = 0.99
    eps: float = 1e-8
    schedule: Literal["cosine", "noam", "constant"] = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    label_smoothing: float = 0.0
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
        check_range("beta2", self.beta2, 0.0, 0.999999)
        check_positive("eps", self.eps)
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.99)


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
