"""Tasks: batches, loss and metrics. Registered by name in :data:`TASKS`."""

from seqlab.tasks import (  # noqa: F401  (registration)
    adding,
    anomaly,
    charlm,
    chomsky_context_free,
    chomsky_regular,
    chomsky_sensitive,
    classify,
    condlm,
    copy,
    echo,
    forecast,
    mlm,
    pairs,
    parity,
    recall,
    seq2seq,
    tag,
)
from seqlab.tasks.base import IGNORE, TASKS, Batch, Task, build_task

__all__ = ["IGNORE", "TASKS", "Batch", "Task", "build_task"]
