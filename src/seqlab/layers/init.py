"""Shared parameter initialisations."""

from __future__ import annotations

from torch import nn


def xavier_projections(*layers: nn.Linear) -> None:
    """Glorot-uniform weights and zero biases: the attention projections' initialisation."""
    for lin in layers:
        nn.init.xavier_uniform_(lin.weight)
        if lin.bias is not None:
            nn.init.zeros_(lin.bias)
