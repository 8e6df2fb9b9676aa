"""Positional information: rotary embeddings (RoPE, Su et al. 2021).

Shape legend: B batch · H heads · T time · K head dim (even).

RoPE rotates each pair of channels (x_i, x_{i+K/2}) of queries and keys by the angle
``pos · base^(−2i/K)``, so ``q_m · k_n`` depends on positions only through m − n.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.errors import ShapeError


def rope(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """Rotate x (B, H, T, K) by per-row positions (B, T) (half-split channel pairing)."""
    K = x.shape[-1]
    if K % 2:
        raise ShapeError(f"RoPE needs an even head dimension, got {K}")
    inv_freq = base ** (-torch.arange(0, K, 2, device=x.device, dtype=torch.float64) / K)  # (K/2,)
    angles = positions.to(torch.float64)[..., None] * inv_freq  # (B, T, K/2)
    cos = angles.cos().to(x.dtype)[:, None]  # (B, 1, T, K/2)
    sin = angles.sin().to(x.dtype)[:, None]
    x1, x2 = x[..., : K // 2], x[..., K // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
