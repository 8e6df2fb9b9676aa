"""The non-finite guard: catch a NaN/Inf loss or gradient at the step it happens, and say where.

The loss and the gradients are checked every step (before clipping, which would smear one bad
value over every parameter). On a hit, :func:`diagnose` re-runs the step's forward pass with
hooks on every module to find the first one (in execution order) whose output is non-finite,
and names the first parameter whose gradient is. The trainer then skips the step
(``on_nonfinite: skip``) or stops after keeping the last good checkpoint (``stop``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from seqlab.errors import SeqlabError


class NonFiniteError(SeqlabError, FloatingPointError):
    """Training produced NaN or infinity; the message names the step, module and parameter."""


def grads_finite(params: list[Tensor]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


def nonfinite_grads(model: nn.Module) -> list[str]:
    """Names of the parameters (in registration order) whose gradients hold NaN/Inf."""
    return [
        name
        for name, p in model.named_parameters()
        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]


def first_nonfinite_output(model: nn.Module, forward: Callable[[], object]) -> str | None:
    """Run ``forward()`` with hooks on every module; the first (in execution order, so innermost
    first) whose output (or its first tensor) is non-finite, as ``"name (Class)"``. Errors the
    non-finite values cause further on (a mixer refusing NaN input) are swallowed."""
    found: list[str] = []

    def hook(name: str):
        def check(module: nn.Module, _inputs, output) -> None:
            tensor = output[0] if isinstance(output, tuple) else output
            floating = isinstance(tensor, Tensor) and tensor.is_floating_point()
            if not found and floating and not bool(torch.isfinite(tensor).all()):
                found.append(f"{name} ({type(module).__name__})")

        return check

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            forward()
    except (SeqlabError, RuntimeError):
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


def diagnose(step: int, loss: float, model: nn.Module, forward: Callable[[], object] | None) -> str:
    """One line: the step, the loss, the first non-finite module output and parameter gradient."""
    text = f"step {step}: non-finite training step (loss {loss})"
    where = first_nonfinite_output(model, forward) if forward is not None else None
    if where:
        text += f"; first non-finite output in {where}"
    bad = nonfinite_grads(model)
    if bad:  # backward spreads NaN to everything below its origin, so the count says more
        total = sum(1 for _ in model.parameters())
        text += f"; non-finite gradients in {len(bad)} of {total} parameters (first: {bad[0]})"
    return text
