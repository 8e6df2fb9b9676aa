"""Position-wise feed-forward network: ``FFN(x) = act(x W_1 + b_1) W_2 + b_2``.

Shape legend: B batch · T time · D model width · F hidden width (d_ff).
"""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class FeedForward(nn.Module):
    """Two linear maps with a nonlinearity between, applied to every position independently."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.act = ACTIVATIONS[activation]()
        self.down = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.up.reset_parameters()
        self.down.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.dropout(self.act(self.up(x))))  # (B, T, D) -> (B, T, F) -> (B, T, D)
