"""Copy an official ``xlstm.mLSTMLayer`` (NX-AI/xlstm, Apache-2.0) into a seqlab ``MLSTMMixer``.

The official layer's parameters map one to one onto ours; the only difference in layout is the
per-head norm, which stores its weight as an offset from 1 there (``1 + w``) and as the weight
itself here. Nothing here imports ``xlstm``: any module with the same parameter names works.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.mixers.mlstm import MLSTMMixer

# official name -> ours
MLSTM_NAMES = {
    "proj_up.weight": "proj_up.weight",
    "proj_up.bias": "proj_up.bias",
    "q_proj.weight": "q_proj.weight",
    "q_proj.bias": "q_proj.bias",
    "k_proj.weight": "k_proj.weight",
    "k_proj.bias": "k_proj.bias",
    "v_proj.weight": "v_proj.weight",
    "v_proj.bias": "v_proj.bias",
    "conv1d.conv.weight": "conv.weight",
    "conv1d.conv.bias": "conv.bias",
    "mlstm_cell.igate.weight": "igate.weight",
    "mlstm_cell.igate.bias": "igate.bias",
    "mlstm_cell.fgate.weight": "fgate.weight",
    "mlstm_cell.fgate.bias": "fgate.bias",
    "mlstm_cell.outnorm.weight": "norm.weight",
    "learnable_skip": "skip",
    "proj_down.weight": "proj_down.weight",
    "proj_down.bias": "proj_down.bias",
}
RESIDUAL_WEIGHTS = {"mlstm_cell.outnorm.weight"}  # stored as w, used as 1 + w


@torch.no_grad()
def load_official_mlstm_layer(ours: MLSTMMixer, official: nn.Module) -> MLSTMMixer:
    """Copy the weights of an official ``mLSTMLayer`` into ``ours`` (same widths and heads).

    Build ``ours`` with the official layer's settings: ``MLSTMConfig(num_heads=NH,
    proj_factor=pf, qkv_block_size=bs, conv_kernel_size=ks, bias=bias)`` and the same d_model.
    Every parameter of both modules must be matched, with the same shape, or this raises.
    """
    copy_parameters(ours, official, MLSTM_NAMES, RESIDUAL_WEIGHTS)
    return ours


def copy_parameters(ours: nn.Module, official: nn.Module, names: dict[str, str], residual: set[str]) -> None:
    """Copy ``official``'s parameters into ``ours`` by the name map; all must be used, shapes equal."""
    theirs = dict(official.named_parameters())
    mine = dict(ours.named_parameters())
    unmapped = sorted(set(theirs) - set(names))
    if unmapped:
        raise ConfigError(f"official module has parameters seqlab does not know: {', '.join(unmapped)}")
    used = set()
    for their_name, tensor in theirs.items():
        my_name = names[their_name]
        if my_name not in mine:
            raise ConfigError(
                f"official parameter {their_name} has no counterpart {my_name} here (bias setting?)"
            )
        value = tensor + 1 if their_name in residual else tensor
        if mine[my_name].shape != value.shape:
            raise ConfigError(
                f"{their_name} {tuple(value.shape)} does not fit {my_name} {tuple(mine[my_name].shape)}: "
                "build the seqlab module with the official module's widths and heads"
            )
        mine[my_name].copy_(value)
        used.add(my_name)
    missing = sorted(set(mine) - used)
    if missing:
        raise ConfigError(f"no official value for {', '.join(missing)} (bias or kernel settings differ?)")
