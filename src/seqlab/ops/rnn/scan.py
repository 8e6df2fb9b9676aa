"""The masked time loop shared by every naive recurrent cell.

Shape legend: B batch · T time · G·H pre-activation width · O output width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

StepFn = Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, ...]]


def scan(
    step: StepFn,
    gx: Tensor,
    state: tuple[Tensor, ...],
    mask: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run ``state = step(gx[:, t], state)`` over time; the output at t is ``state[0]``.

    Padding: where ``mask[b, t]`` is False the state of row b is carried through unchanged and
    the output is zero (as ``pad_packed_sequence`` gives). With ``reverse=True`` time runs from
    T-1 down to 0, so for right-padded rows the backward direction starts at the last real token.

    Args:
        step: one cell step, ``(gx_t (B, G·H), state) -> new state``; ``new_state[0]`` is the output.
        gx: hoisted input projections, shape (B, T, G·H).
        state: initial state tensors, each (B, ·).
        mask: (B, T) bool, True at real tokens; None means all real.
        reverse: run right to left.

    Returns:
        (outputs (B, T, O), final state).
    """
    T = gx.shape[1]
    # unbind (not gx[:, t]): its backward is one stack, where T separate selects would each
    # materialise a zero tensor of gx's full size, O(T²) memory traffic.
    steps = gx.unbind(1)  # T × (B, G·H)
    outputs: list[Tensor] = [gx.new_empty(0)] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        new = step(steps[t], state)
        if mask is None:
            state = new
            outputs[t] = new[0]
        else:
            m = mask[:, t, None]  # (B, 1)
            state = tuple(torch.where(m, n, s) for n, s in zip(new, state, strict=True))
            outputs[t] = new[0] * m
    return torch.stack(outputs, dim=1), state  # (B, T, O)
