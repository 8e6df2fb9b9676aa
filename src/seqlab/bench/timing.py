"""Interleaved timing of several callables: one warm-up call each, then ``repeats`` rounds."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn


def interleaved_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every run; rounds interleave the runs so machine noise hits all alike."""
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def fwd_bwd(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``module(x)`` (the first output if it returns a tuple)."""

    def run() -> None:
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        module.zero_grad(set_to_none=True)

    return run
