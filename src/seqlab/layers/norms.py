"""Normalisation layers by name: ``layernorm`` (Ba et al. 2016), ``rmsnorm``, ``none``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import UnknownNameError

NORMS = ("layernorm", "rmsnorm", "none")


def build_norm(name: str, d_model: int) -> nn.Module:
    """LayerNorm ``(x − μ)/σ · γ + β``, RMSNorm ``x / rms(x) · γ``, or identity."""
    if name == "layernorm":
        return nn.LayerNorm(d_model)
    if name == "rmsnorm":
        return nn.RMSNorm(d_model)
    if name == "none":
        return nn.Identity()
    raise UnknownNameError(f"unknown norm {name!r}; choose from: {', '.join(NORMS)}")


class MultiHeadNorm(nn.Module):
    """Group norm with one group per head: each head's features normalised on their own.

    ``y[..., h, :] = (x_h − μ_h) / σ_h · γ_h (+ β_h)`` over the K features of head h. The xLSTM
    cells normalise their per-head outputs this way, so heads with very different scales (each
    has its own gates and memory) reach the output projection on an equal footing.
    """

    def __init__(self, num_heads: int, dim: int, eps: float = 1e-5, bias: bool = False) -> None:
        super().__init__()
        self.num_heads, self.eps = num_heads, eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., NH·K) -> (..., NH·K)."""
        # layer norm over each head's K features (= group norm with NH groups; faster on CPU)
        heads = x.unflatten(-1, (self.num_heads, -1))  # (..., NH, K)
        y = F.layer_norm(heads, heads.shape[-1:], eps=self.eps).flatten(-2) * self.weight
        return y if self.bias is None else y + self.bias
