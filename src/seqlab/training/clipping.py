"""Gradient clipping: global norm, per value, and adaptive (a threshold that tracks the norm).

* ``norm``: if ‖g‖₂ > c, g ← g · c / ‖g‖₂ (Pascanu et al. 2013) — e.g. ‖g‖ = 15, c = 5: g/3;
* ``value``: each entry clamped to [−c, c];
* ``adaptive``: clip the global norm at a running threshold
  ``thr_t = α·thr_{t−1} + (1−α)·f·min(‖g_t‖, thr_{t−1})`` (f = ``factor``), started at
  ``f·‖g_1‖``; step t is clipped at ``thr_{t−1}``, so a sudden spike (‖g‖ ≫ its recent average)
  is cut back to a few times the usual norm — and counts only as the threshold, so it does not
  lift the threshold for the steps after it — while a slowly growing norm is followed;
* ``none``: only measure.

Every step reports the pre-clip global norm and whether it clipped (the clip rate is its mean).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

from torch import Tensor
from torch.nn.utils import clip_grad_norm_, clip_grad_value_


class ClipResult(NamedTuple):
    norm: float  # global L2 norm of the gradients before clipping
    clipped: bool  # whether this step changed the gradients


class GradClipper:
    """Clips the gradients of ``params`` in place by ``kind``; the adaptive threshold is state."""

    def __init__(self, kind: str, threshold: float, alpha: float = 0.95, factor: float = 2.0) -> None:
        if kind not in ("norm", "value", "adaptive", "none"):
            raise ValueError(f"clip: expected norm, value, adaptive or none, got {kind!r}")
        self.kind, self.threshold, self.alpha, self.factor = kind, threshold, alpha, factor
        self.running: float | None = None  # adaptive threshold thr_{t-1}

    @classmethod
    def from_config(cls, train) -> GradClipper:
        threshold = train.clip_value if train.clip == "value" else train.clip_norm
        return cls(train.clip, threshold, train.clip_alpha, train.clip_factor)

    def __call__(self, params: Iterable[Tensor]) -> ClipResult:
        params = [p for p in params if p.grad is not None]
        if self.kind in ("norm", "adaptive"):
            limit = self.threshold if self.kind == "norm" else self.running
            norm = float(clip_grad_norm_(params, limit if limit is not None else math.inf))
            clipped = limit is not None and norm > limit
            if self.kind == "adaptive" and math.isfinite(norm):
                seen = self.factor * (
                    min(norm, limit) if limit is not None else norm
                )  # a spike counts as thr
                self.running = seen if limit is None else self.alpha * limit + (1 - self.alpha) * seen
            return ClipResult(norm, clipped)
        norm = float(clip_grad_norm_(params, math.inf))  # measure only
        if self.kind == "value":
            clipped = any(bool((p.grad.abs() > self.threshold).any()) for p in params)
            clip_grad_value_(params, self.threshold)
            return ClipResult(norm, clipped)
        return ClipResult(norm, False)

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state["running"]
