"""``nn.Linear`` whose products run in oneDNN on CPU (see :mod:`seqlab.ops.gemm`), and a switch
that moves a whole model's linear layers onto it.

    model = use_onednn_linear(model)     # every nn.Linear (exactly that class) in place

The parameters, ``state_dict`` keys, hooks and the math stay the same (float rounding aside);
only the GEMM library changes. On the AMD CPU of BENCHMARKS.md it lifts a Transformer LM's
training throughput by about half (its projections were MKL GEMMs); on CPUs where MKL is fast it
may do nothing. Undo with :func:`use_torch_linear`.
"""

from __future__ import annotations

from torch import Tensor, nn

from seqlab.ops.gemm import linear


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` computed by :func:`seqlab.ops.gemm.linear` (float32 CPU: oneDNN, else F.linear)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def use_onednn_linear(model: nn.Module) -> nn.Module:
    """Switch every ``nn.Linear`` of ``model`` (exactly that class, not subclasses) to
    :class:`OneDNNLinear`, in place; returns the model."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
    return model


def use_torch_linear(model: nn.Module) -> nn.Module:
    """Undo :func:`use_onednn_linear`."""
    for module in model.modules():
        if type(module) is OneDNNLinear:
            module.__class__ = nn.Linear
    return model
