"""Learning-rate schedule: linear warmup then cosine decay to ``min_ratio · lr``."""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float = 0.1) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    ``(step+1)/warmup`` for the first ``warmup`` steps, then
    ``min_ratio + (1 − min_ratio)·½(1 + cos(π·p))`` with p the fraction of the decay done.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
