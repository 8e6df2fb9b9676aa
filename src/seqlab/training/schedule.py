"""Learning-rate schedules, as multipliers of the base learning rate ``train.lr``.

* ``cosine``: linear warmup then cosine decay to ``min_lr_ratio · lr``;
* ``linear``: linear warmup then linear decay to ``min_lr_ratio · lr``;
* ``noam`` (Vaswani et al. 2017, eq. 3): ``d_model^−½ · min(s^−½, s · warmup^−³ᐟ²)`` with s the
  1-based step — linear warmup to a peak at s = warmup, then decay ∝ 1/√s. ``lr`` is a factor on
  it (1.0 reproduces the paper);
* ``constant``: linear warmup then flat;
* ``plateau``: linear warmup then flat, times a factor that drops each time the validation metric
  stops improving (:class:`~seqlab.training.tracking.Plateau`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from seqlab.training.tracking import Plateau


def decay_progress(step: int, warmup: int, total: int, time_fraction: float = 0.0) -> float:
    """p ∈ [0, 1], the fraction of the decay done after warmup at 0-based ``step``.

    ``p = min(1, max((step − warmup) / (total − warmup), f))`` with f the fraction of a wall-clock
    budget (``train.time_budget``) spent so far, 0 without one — so a time-limited run anneals
    fully by the end of its budget even though it never reaches ``total`` steps.
    """
    return min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))


def warmup_cosine(
    step: int, warmup: int, total: int, min_ratio: float = 0.1, time_fraction: float = 0.0
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    ``(step+1)/warmup`` for the first ``warmup`` steps, then
    ``min_ratio + (1 − min_ratio)·½(1 + cos(π·p))`` with p = :func:`decay_progress`.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = decay_progress(step, warmup, total, time_fraction)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_linear(
    step: int, warmup: int, total: int, min_ratio: float = 0.1, time_fraction: float = 0.0
) -> float:
    """Warmup as in :func:`warmup_cosine`, then ``1 − (1 − min_ratio)·p``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = decay_progress(step, warmup, total, time_fraction)
    return 1.0 - (1.0 - min_ratio) * progress


def noam(step: int, d_model: int, warmup: int) -> float:
    """``d_model^−½ · min(s^−½, s · warmup^−³ᐟ²)`` at 0-based ``step`` (s = step + 1)."""
    s = step + 1
    return d_model**-0.5 * min(s**-0.5, s * max(warmup, 1) ** -1.5)


def constant(step: int, warmup: int) -> float:
    return (step + 1) / warmup if warmup > 0 and step < warmup else 1.0


def build_schedule(
    optimizer: torch.optim.Optimizer,
    train,
    d_model: int,
    plateau: Plateau | None = None,
    time_fraction: Callable[[], float] = lambda: 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """The ``train.schedule`` of a TrainConfig as a LambdaLR over ``optimizer``.

    ``plateau`` (required for ``schedule: plateau``) supplies the reduce-on-plateau factor;
    ``time_fraction()`` the share of ``train.time_budget`` spent (cosine and linear decay by it).
    """
    t = train
    if t.schedule == "plateau" and plateau is None:
        raise ValueError("schedule 'plateau' needs a Plateau tracker")
    rules = {
        "cosine": lambda s: warmup_cosine(s, t.warmup_steps, t.steps, t.min_lr_ratio, time_fraction()),
        "linear": lambda s: warmup_linear(s, t.warmup_steps, t.steps, t.min_lr_ratio, time_fraction()),
        "noam": lambda s: noam(s, d_model, t.warmup_steps),
        "constant": lambda s: constant(s, t.warmup_steps),
        "plateau": lambda s: constant(s, t.warmup_steps) * plateau.scale,
    }
    return torch.optim.lr_scheduler.LambdaLR(optimizer, rules[t.schedule])
