"""Block-diagonal ("head-wise") linear map: each of NH heads maps its own slice of the input.

Shape legend: B batch · T time · NH heads · I = in_features / NH · O = out_features / NH.

    y[..., h, :] = W_h x[..., h, :] (+ b_h),   W_h ∈ R^{O×I}

NH·I·O parameters instead of (NH·I)(NH·O): the q/k/v projections of the xLSTM mLSTM (blocks of
4 channels) and the gate projections of the sLSTM (one block per head) are of this kind. The
weight layout (NH, O, I) is the official xLSTM ``LinearHeadwiseExpand``'s. With ``compiled``
set (the xLSTM mixers' ``backend="compiled"``) float32/64 CPU inputs go through the one-pass C++
loop of :mod:`seqlab.ops.compiled_layers` (same math; the einsum where it cannot run).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.ops import compiled_layers


class HeadwiseLinear(nn.Module):
    """``in_features -> out_features`` as NH independent blocks (both must be divisible by NH)."""

    def __init__(self, in_features: int, out_features: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        if in_features % num_heads or out_features % num_heads:
            raise ConfigError(
                f"head-wise linear: num_heads={num_heads} must divide in_features={in_features} "
                f"and out_features={out_features}"
            )
        self.in_features, self.out_features, self.num_heads = in_features, out_features, num_heads
        self.compiled = False
        self.weight = nn.Parameter(
            torch.empty(num_heads, out_features // num_heads, in_features // num_heads)
        )
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ "Small init" N(0, 2/(5·I)) per block (Nguyen & Salazar 2019), zero bias."""
        nn.init.normal_(self.weight, std=math.sqrt(2 / (5 * self.weight.shape[-1])))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features)."""
        if self.compiled and compiled_layers.available(x) and x.dtype == self.weight.dtype:
            return compiled_layers.headwise_linear(x, self.weight, self.bias)
        x = x.unflatten(-1, (self.num_heads, -1))  # (..., NH, I)
        y = torch.einsum("...hi,hoi->...ho", x, self.weight).flatten(-2)  # (..., NH·O)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"{self.in_features}, {self.out_features}, num_heads={self.num_heads}, bias={bias}"
