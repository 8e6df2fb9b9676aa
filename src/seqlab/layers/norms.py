"""Normalisation layers by name: ``layernorm`` (Ba et al. 2016), ``rmsnorm``, ``none``."""

from __future__ import annotations

from torch import nn

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
