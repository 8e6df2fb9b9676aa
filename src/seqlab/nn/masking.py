"""Turn ``lengths`` or a ``mask`` into one validated (B, T) bool mask."""

from __future__ import annotations

import torch
from torch import Tensor

from seqlab.errors import ShapeError


def resolve_mask(
    mask: Tensor | None, lengths: Tensor | None, B: int, T: int, device: torch.device
) -> Tensor | None:
    """Validated (B, T) bool mask (True = real token), or None when every step is real.

    Args:
        mask: (B, T) bool or 0/1 tensor, or None.
        lengths: (B,) integer lengths in [0, T] (right padding), or None.
    """
    if mask is not None and lengths is not None:
        raise ShapeError("pass either lengths or mask, not both")
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.dim() != 1 or lengths.shape[0] != B or lengths.is_floating_point():
            raise ShapeError(
                f"expected lengths to be an integer tensor of shape ({B},), got "
                f"{lengths.dtype} of shape {tuple(lengths.shape)}"
            )
        if bool((lengths < 0).any()) or bool((lengths > T).any()):
            raise ShapeError(f"expected every length in [0, {T}], got {lengths.tolist()}")
        return torch.arange(T, device=device)[None, :] < lengths[:, None]
    if mask is None:
        return None
    if tuple(mask.shape) != (B, T):
        raise ShapeError(f"expected mask of shape ({B}, {T}) (batch, time), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ShapeError(f"expected a bool (or 0/1 integer) mask, got dtype {mask.dtype}")
        mask = mask.bool()
    return mask.to(device)


def mask_to_lengths(mask: Tensor) -> Tensor:
    """Lengths of a right-padded mask; raises if some row has a real token after padding."""
    lengths = mask.sum(dim=1)
    prefix = torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None]
    if not torch.equal(prefix, mask):
        raise ShapeError(
            "backend='torch' needs right-padded masks (real tokens first); use backend='naive' "
            "for arbitrary masks"
        )
    return lengths
