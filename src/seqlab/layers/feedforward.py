"""Position-wise feed-forward networks, plain and gated.

Shape legend: B batch · T time · D model width · F hidden width (d_ff).

Plain (Vaswani et al. 2017 use ``relu``):   FFN(x) = act(x W_1 + b_1) W_2 + b_2
Gated (Shazeer 2020, "GLU Variants"):      FFN(x) = (act(x W_1 + b_1) ⊙ (x V + c)) W_2 + b_2
with ``swiglu`` = SiLU, ``geglu`` = GELU, ``reglu`` = ReLU gates. A gated FFN has three
matrices instead of two; pick a smaller ``d_ff`` (e.g. ⅔ of it) for the same parameter count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlab.errors import UnknownNameError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
GATED = {"swiglu": nn.SiLU, "geglu": nn.GELU, "reglu": nn.ReLU}
FFN_KINDS = tuple(ACTIVATIONS) + tuple(GATED)


class FeedForward(nn.Module):
    """Applied to every position independently; ``activation`` names a plain or gated kind."""

    def __init__(
        self, d_model: int, d_ff: int, activation: str = "gelu", dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if activation not in FFN_KINDS:
            raise UnknownNameError(
                f"unknown feed-forward activation {activation!r}; choose from: {', '.join(FFN_KINDS)}"
            )
        self.gated = activation in GATED
        self.up = nn.Linear(
            d_model, 2 * d_ff if self.gated else d_ff, bias=bias
        )  # gated: [W_1 | V] in one map
        self.act = (GATED if self.gated else ACTIVATIONS)[activation]()
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        self.up.reset_parameters()
        self.down.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        h = self.up(x)  # (B, T, F) or (B, T, 2F)
        if self.gated:
            a, gate = torch.chunk(h, 2, dim=-1)  # each (B, T, F)
            h = self.act(a) * gate
        else:
            h = self.act(h)
        return self.down(self.dropout(h))  # (B, T, D)
