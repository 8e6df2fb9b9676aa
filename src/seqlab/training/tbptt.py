"""Truncated BPTT over a stream: TBPTT(k1, k2) with the state carried across chunks.

Each update consumes the next k1 steps of every row (see :mod:`seqlab.tasks.stream`). With
k2 = k1 (the default) the window is exactly those steps: the model starts from the state the
previous chunk ended in, *detached* (same values, no gradient history), so gradients reach back
at most k1 steps. With k2 > k1 the window is the last k2 steps: it starts from the detached state
at the window's start and re-runs the k2 − k1 steps before the new ones, which are not scored
again but carry gradient — every scored step sees up to k2 steps of history::

    k1 = 3, k2 = 5:   window 0: [0 1 2]            scored 0-2
                      window 1: [1 2 | 3 4 5]      scored 3-5, state carried from step 1
                      window 2: [4 5 | 6 7 8]      scored 6-8, state carried from step 4

The window runs in two calls, [start, next start) then the rest, so the state at the next
window's start comes out of the first call without any extra computation. At the end of the
rows a new epoch starts from position 0 with a fresh state. The cursor only lays windows out;
the trainer runs them in order (several per update with gradient accumulation), hands each the
state the previous one ended in, and commits the last one to :attr:`StreamCursor.state` once the
update has proved finite.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from seqlab.errors import ConfigError
from seqlab.tasks.base import Batch
from seqlab.tasks.stream import StreamTask


class Window(NamedTuple):
    batch: Batch  # the window's steps, target_mask False on the re-run steps before the new ones
    split: int  # where the next window starts, relative to this one (== its length if k2 == k1)
    fresh: bool  # the window starts the rows (an epoch): no state to carry in


class StreamCursor:
    """Where a stateful run is in its stream: position per row and the carried state."""

    def __init__(self, task: StreamTask, batch_size: int, k1: int, k2: int) -> None:
        self.task, self.batch_size, self.k1, self.k2 = task, batch_size, k1, k2
        self.rows = task.stream_rows(batch_size)
        if max(k1, k2) > self.rows:
            raise ConfigError(
                f"train.tbptt: windows of {max(k1, k2)} steps do not fit the stream's rows of {self.rows} "
                f"steps (the training stream split into batch_size={batch_size} rows); use shorter "
                "windows or a smaller batch"
            )
        self.position = 0  # first new step of the next window
        self.window_start = 0
        self.state: Any = None  # detached state at window_start
        self.epoch = 0

    def next_window(self) -> Window:
        if self.position + self.k1 > self.rows:  # end of the rows: a new epoch, a fresh state
            self.position = self.window_start = 0
            self.state, self.epoch = None, self.epoch + 1
        end = self.position + self.k1
        batch = self.task.stream_batch(self.batch_size, self.window_start, end - self.window_start)
        batch.target_mask[:, : self.position - self.window_start] = False  # already scored
        next_start = max(0, end - self.k2 + self.k1) if self.k2 > self.k1 else end
        next_start = max(next_start, self.window_start)
        window = Window(batch, next_start - self.window_start, self.window_start == 0)
        self.position, self.window_start = end, next_start
        return window

    def carry(self, state: Any) -> None:
        """Commit the detached state at the next window's start (None: start it afresh)."""
        self.state = state

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "window_start": self.window_start, "epoch": self.epoch}

    def load_state_dict(self, data: dict[str, Any], state: Any) -> None:
        self.position, self.window_start, self.epoch = data["position"], data["window_start"], data["epoch"]
        self.state = state
