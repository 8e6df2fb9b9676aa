"""The masked time loop shared by every naive recurrent cell.

Shape legend: B batch · T time · G·H pre-activation width · O output width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

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


class _RecurrentWeightGrad(torch.autograd.Function):
    """Identity on ``gx`` whose backward also returns ``∂L/∂W_hh = Σ_t δz_tᵀ h_{t−1}``.

    For cells whose pre-activation is additive, ``z_t = gx_t + h_{t−1} W_hhᵀ``, the gradient
    reaching ``gx_t`` *is* δz_t. So the loop may multiply by a detached ``W_hh`` (autograd then
    skips T small (G·H × B)·(B × H) products and T accumulations of a G·H × H matrix) and the
    weight gradient is formed here, after backpropagation through time, as one large GEMM over
    all B·T steps. ``inputs`` is filled by the loop with the h_{t−1} it multiplied.
    """

    @staticmethod
    def forward(ctx, gx: Tensor, w_hh: Tensor, inputs: list[Tensor], reverse: bool) -> Tensor:
        ctx.inputs, ctx.reverse = inputs, reverse
        return gx.view_as(gx)

    @staticmethod
    @once_differentiable  # the W_hh gradient treats h as constant: first-order only
    def backward(ctx, d_gx: Tensor):
        inputs = ctx.inputs[::-1] if ctx.reverse else ctx.inputs
        h_prev = torch.stack(inputs, dim=1)  # (B, T, H), in time order
        d_w = d_gx.reshape(-1, d_gx.shape[-1]).t() @ h_prev.reshape(-1, h_prev.shape[-1])  # (G·H, H)
        return d_gx, d_w, None, None


def hoist_recurrent_weight_grad(
    gx: Tensor, w_hh: Tensor, reverse: bool = False
) -> tuple[Tensor, Tensor, Callable[[Tensor], Tensor]]:
    """Prepare a loop whose ``W_hh`` gradient is one GEMM (see :class:`_RecurrentWeightGrad`).

    Returns ``(gx, w_hh_detached, record)``: the loop must use the returned ``gx`` and
    ``w_hh_detached``, and pass every recurrent input through ``record`` (which returns it).
    Only valid when the pre-activation is ``gx_t + h_{t−1} W_hhᵀ`` exactly (Elman RNN, LSTM
    without layer norm); outputs and first-order gradients are unchanged (tests compare with
    ``torch.nn``). Differentiating twice raises an error instead of returning a wrong value.
    """
    if not (torch.is_grad_enabled() and w_hh.requires_grad):
        return gx, w_hh, no_record
    inputs: list[Tensor] = []

    def record(h: Tensor) -> Tensor:
        inputs.append(h.detach())
        return h

    return _RecurrentWeightGrad.apply(gx, w_hh, inputs, reverse), w_hh.detach(), record


def no_record(h: Tensor) -> Tensor:
    return h
