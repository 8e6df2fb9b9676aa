"""Copy an official ``xlstm.mLSTMLayer`` (NX-AI/xlstm, Apache-2.0) into a seqlab ``MLSTMMixer``.

The official layer's parameters map one to one onto ours; the only difference in layout is the
per-head norm, which stores its weight as an offset from 1 there (``1 + w``) and as the weight
itself here. Nothing here imports ``xlstm``: any module with the same parameter names works.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.interop._copy import copy_into
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
    theirs = dict(official.named_parameters())
    if unknown := sorted(set(theirs) - set(MLSTM_NAMES)):
        raise ConfigError(f"official mLSTM layer has parameters seqlab does not know: {', '.join(unknown)}")
    values = {MLSTM_NAMES[name]: t + 1 if name in RESIDUAL_WEIGHTS else t for name, t in theirs.items()}
    copy_into(ours, values)
    return ours
