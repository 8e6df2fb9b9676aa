"""Streaming tasks: the training split is one long sequence, read in consecutive chunks.

For truncated BPTT the stream of N (input, target) steps is laid out as B contiguous rows of
L = ⌊N / B⌋ steps (row b = steps [b·L, (b+1)·L)), so chunk i+1 of row b continues chunk i
of row b and the recurrent state can be carried from one to the next::

    stream  a b c d e f g h i j k l m      B = 2, L = ⌊12 / 2⌋ = 6, chunk k = 3
    row 0   a b c | d e f                  chunk 0: [a b c], [g h i]
    row 1   g h i | j k l                  chunk 1: [d e f], [j k l]  (targets shifted by one)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqlab.errors import ConfigError
from seqlab.tasks.base import IGNORE, Batch


class StreamTask:
    """Mixin: subclasses provide :meth:`stream_data` (next-step prediction: inputs ``x_t``, targets
    ``x_{t+1}``) or override :meth:`stream_pairs` for other targets."""

    def stream_data(self) -> Tensor:
        """The training split as one sequence: (N,) token ids or (N, F) features."""
        raise NotImplementedError

    def stream_pairs(self) -> tuple[Tensor, Tensor]:
        """Aligned (inputs, targets) streams; targets IGNORE where nothing is scored."""
        data = self.stream_data()
        return data[:-1], data[1:]

    def stream_rows(self, batch_size: int) -> int:
        """L, the steps per row when the stream is split into ``batch_size`` rows."""
        N = len(self.stream_pairs()[0])
        L = N // batch_size
        if L < 2:
            raise ConfigError(
                f"the training stream has {N} steps, too few for {batch_size} rows; lower train.batch_size"
            )
        return L

    def stream_batch(self, batch_size: int, start: int, length: int) -> Batch:
        """Steps [start, start + length) of every row: inputs (B, k) and next-step targets."""
        inputs, targets = self.stream_pairs()
        L = self.stream_rows(batch_size)
        if not 0 <= start < start + length <= L:
            raise ValueError(f"window [{start}, {start + length}) is outside the rows' {L} steps")
        offsets = torch.arange(batch_size)[:, None] * L + torch.arange(start, start + length)[None, :]
        targets = targets[offsets]  # (B, k) or (B, k, O)
        scored = targets != IGNORE if targets.dim() == 2 else torch.ones(offsets.shape, dtype=torch.bool)
        return Batch(inputs[offsets], targets, scored)


def is_stream_task(task: Any) -> bool:
    return isinstance(task, StreamTask)
