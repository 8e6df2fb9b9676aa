"""Causal depthwise 1-D convolution over time, with a carried state and padding masks.

Shape legend: B batch · T time · C channels · k kernel size.

    y_t = b + Σ_{j=0}^{k−1} w_j ⊙ x_{t−k+1+j}        (per channel; x_s = state for s < 0)

Used in front of the xLSTM gates (Beck et al. 2024: kernel 4, followed by SiLU). The state is the
last k − 1 real inputs, so a forward over [t, T) with the state of [0, t) equals the full forward,
and ``step`` costs O(k·C) per token. Padded steps (``mask`` False) are skipped: the kernel always
sees the previous k − 1 *real* inputs, and the output at a padded step is zero. The weight has
the layout of ``nn.Conv1d(C, C, k, groups=C)`` — (C, 1, k), oldest tap first. With ``compiled``
set (the xLSTM mixers' ``backend="compiled"``) float32/64 CPU inputs go through the one-pass C++
loop of :mod:`seqlab.ops.compiled_layers` (same math; ``F.conv1d`` where it cannot run).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError
from seqlab.ops import compiled_layers


class CausalConv1d(nn.Module):
    """Depthwise causal convolution; ``kernel_size=0`` is the identity (no parameters, empty state)."""

    def __init__(self, channels: int, kernel_size: int = 4, bias: bool = True) -> None:
        super().__init__()
        if kernel_size < 0:
            raise ConfigError(f"conv kernel_size must be >= 0 (0 = no convolution), got {kernel_size}")
        self.channels, self.kernel_size = channels, kernel_size
        self.compiled = False
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size)) if kernel_size else None
        self.bias = nn.Parameter(torch.empty(channels)) if kernel_size and bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv1d``'s default: U(−1/√k, 1/√k) for weight and bias (fan-in k per channel)."""
        if self.weight is None:
            return
        bound = 1 / math.sqrt(self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def init_state(self, batch_size: int, like: Tensor) -> Tensor:
        """Zeros (B, k − 1, C): nothing seen yet."""
        return like.new_zeros(batch_size, max(self.kernel_size - 1, 0), self.channels)

    def forward(
        self, x: Tensor, state: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x (B, T, C) -> (y (B, T, C), state (B, k − 1, C): the last k − 1 real inputs)."""
        B, T, C = x.shape
        state = self.init_state(B, x) if state is None else state
        if state.shape != (B, max(self.kernel_size - 1, 0), C):
            raise ShapeError(
                f"conv: expected state of shape ({B}, {max(self.kernel_size - 1, 0)}, {C}), "
                f"got {tuple(state.shape)}"
            )
        if self.weight is None:
            return x, state
        # 1. padded steps anywhere in a row: move the real steps to the front, in order
        order = None
        if mask is not None and not bool(mask.all()):
            order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # (B, T)
            x = x.gather(1, order[..., None].expand_as(x))  # (B, T, C) real steps first
        # 2. convolve [state; x]: output t sees inputs t − k + 1 .. t
        P = self.kernel_size - 1
        if self.compiled and compiled_layers.available(x) and x.dtype == self.weight.dtype:
            y = compiled_layers.causal_conv(x, state, self.weight.view(C, -1), self.bias)  # (B, T, C)
            full = torch.cat([state, x[:, max(T - P, 0) :]], 1) if order is None else torch.cat([state, x], 1)
        else:
            full = torch.cat([state, x], 1)  # (B, k − 1 + T, C)
            y = F.conv1d(full.transpose(1, 2), self.weight, self.bias, groups=C).transpose(1, 2)  # (B, T, C)
        # 3. the new state: the k − 1 inputs ending at each row's last real step (of the whole
        #    [state; x], or of its last k − 1 + min(T, k − 1) steps when nothing is padded)
        if order is None:
            new_state = full[:, full.shape[1] - P :]  # (B, k − 1, C)
        else:
            idx = mask.sum(1)[:, None] + torch.arange(P, device=x.device)  # (B, k − 1)
            new_state = full.gather(1, idx[..., None].expand(B, P, C))  # (B, k − 1, C)
        if order is not None:  # back to the input order, zero at padded steps
            y = y.gather(1, order.argsort(1)[..., None].expand_as(y))  # (B, T, C)
            y = torch.where(mask[..., None], y, 0.0)
        return y, new_state
