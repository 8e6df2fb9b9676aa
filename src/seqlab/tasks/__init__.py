"""Tasks: batches, loss and metrics. Registered by name in :data:`TASKS`."""

from seqlab.tasks import adding, charlm, copy, echo, mlm, parity, seq2seq  # noqa: F401  (registration)
from seqlab.tasks.base import IGNORE, TASKS, Batch, Task, build_task

__all__ = ["IGNORE", "TASKS", "Batch", "Task", "build_task"]
