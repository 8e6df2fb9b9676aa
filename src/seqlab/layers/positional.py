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


def sinusoidal(positions: Tensor, d: int) -> Tensor:
    """The original Transformer encoding (Vaswani et al. 2017), computed for any position:

        PE(pos, 2i) = sin(pos / 10000^(2i/d)),   PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

    Args:
        positions: integer positions, any shape (...).
        d: model width.

    Returns:
        (..., d) float32 encodings.
    """
    two_i = torch.arange(0, d, 2, device=positions.device, dtype=torch.float64)  # 2i
    angles = positions.to(torch.float64)[..., None] / 10000.0 ** (two_i / d)  # (..., ceil(d/2))
    pe = torch.zeros(*positions.shape, d, dtype=torch.float64, device=positions.device)
    pe[..., 0::2] = torch.sin(angles)
    pe[..., 1::2] = torch.cos(angles[..., : d // 2])
    return pe.float()


def alibi_slopes(num_heads: int) -> Tensor:
    """ALiBi head slopes (Press et al. 2022): 2^(−8h/H) for h = 1..H (geometric; H a power of 2
    gives the paper's values; other H use the same formula)."""
    return 2.0 ** (-8.0 * torch.arange(1, num_heads + 1, dtype=torch.float64) / num_heads)
