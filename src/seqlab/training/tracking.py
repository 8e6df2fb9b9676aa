"""Tracking a validation metric: best value, evaluations without improvement, plateau decay.

One rule decides "improved" everywhere (best checkpoint, early stopping, reduce-on-plateau):
``value < best − min_delta`` when minimising, ``value > best + min_delta`` when maximising.
"""

from __future__ import annotations

from typing import Any

MAXIMISE = ("acc", "f1", "bleu", "chrf", "rouge", "auc", "precision", "recall", "exact", "r2")


def resolve_mode(metric: str, mode: str) -> str:
    """``auto`` -> ``max`` for accuracies, F1, BLEU, chrF, ROUGE, AUC, ...; ``min`` otherwise."""
    if mode != "auto":
        return mode
    return "max" if any(word in metric.lower() for word in MAXIMISE) else "min"


class MetricTracker:
    """The best value of one metric and how many evaluations have passed without improving it."""

    def __init__(self, mode: str, min_delta: float = 0.0) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        self.mode, self.min_delta = mode, min_delta
        self.best: float | None = None
        self.bad_evals = 0

    def update(self, value: float) -> bool:
        """Record one evaluation; True if it improved on the best so far."""
        if self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        ):
            self.best, self.bad_evals = value, 0
            return True
        self.bad_evals += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_evals = state["best"], state["bad_evals"]


class Plateau:
    """Reduce-on-plateau as a learning-rate multiplier: ×``factor`` after ``patience`` evaluations
    without improvement (then the count restarts). Composes with warmup, unlike a scheduler that
    writes the learning rate itself."""

    def __init__(self, mode: str, factor: float, patience: int, min_delta: float = 0.0) -> None:
        self.tracker = MetricTracker(mode, min_delta)
        self.factor, self.patience = factor, patience
        self.scale = 1.0

    def observe(self, value: float) -> None:
        self.tracker.update(value)
        if self.tracker.bad_evals >= self.patience:
            self.scale *= self.factor
            self.tracker.bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, **self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = state["scale"]
        self.tracker.load_state_dict(state)
