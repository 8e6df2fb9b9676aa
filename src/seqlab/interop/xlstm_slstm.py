"""Copy an official ``xlstm.sLSTMLayer`` (NX-AI/xlstm, Apache-2.0) into a seqlab ``SLSTMMixer``.

Three differences in layout, all handled here:

* the official layer computes the input gate from its module named ``fgate`` and the forget
  gate from ``igate`` (``i, f, z, o = fgate(x), igate(x), ...``): their weights swap names;
* the cell keeps R and the biases in a backend-specific internal layout; the cell's own
  ``_recurrent_kernel_int2ext`` / ``_bias_int2ext`` give the backend-independent ones,
  R (NH, DH, 4, DH) and b (NH, 4, DH) with gates (i, f, z, o) — exactly ours;
* the per-head norm stores its weight as an offset from 1 (``1 + w``); no weight = 1.

Nothing here imports ``xlstm``; the official module is only read.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.interop._copy import copy_into
from seqlab.mixers.slstm import SLSTMMixer

# official name -> ours, for the parameters that are copied as they are
SLSTM_NAMES = {
    "conv1d.conv.weight": "conv.weight",
    "conv1d.conv.bias": "conv.bias",
    "fgate.weight": "igate.weight",  # the official layer feeds fgate's output to the input gate
    "igate.weight": "fgate.weight",
    "zgate.weight": "zgate.weight",
    "ogate.weight": "ogate.weight",
}


@torch.no_grad()
def load_official_slstm_layer(ours: SLSTMMixer, official: nn.Module) -> SLSTMMixer:
    """Copy the weights of an official ``sLSTMLayer`` into ``ours``.

    Build ``ours`` with the official layer's settings: ``SLSTMMixer(embedding_dim,
    SLSTMConfig(num_heads=NH, conv_kernel_size=conv1d_kernel_size))`` (the official cell is the
    sigmoid-forget-gate sLSTM). Every parameter must find its counterpart with the same shape,
    or this raises :class:`ConfigError` naming it.
    """
    cfg = official.config
    if getattr(cfg, "function", "slstm") != "slstm":
        raise ConfigError(f"official cell computes {cfg.function!r}; only 'slstm' maps onto SLSTMMixer")
    if ours.config.forget_gate != "sigmoid":
        raise ConfigError(
            "the official sLSTM has a sigmoid forget gate: build ours with forget_gate='sigmoid'"
        )
    if (bias := getattr(official.group_norm, "bias", None)) is not None:
        raise ConfigError(f"official group norm has a bias {tuple(bias.shape)}; ours has none")
    cell = official.slstm_cell
    theirs = dict(official.named_parameters())
    values = {ours_name: theirs[name] for name, ours_name in _present(official)}
    values["recurrent"] = cell._recurrent_kernel_int2ext(cell._recurrent_kernel)  # (NH, DH, 4, DH)
    values["bias"] = cell._bias_int2ext(cell._bias)  # (NH, 4, DH)
    weight = official.group_norm.weight
    values["norm.weight"] = 1 + weight if weight is not None else torch.ones(ours.d_model)
    copy_into(ours, values)
    return ours


def _present(official: nn.Module) -> list[tuple[str, str]]:
    """The name pairs of :data:`SLSTM_NAMES` the official layer has; unknown parameters raise."""
    names = {name for name, _ in official.named_parameters()}
    known = set(SLSTM_NAMES) | {"slstm_cell._recurrent_kernel_", "slstm_cell._bias_", "group_norm.weight"}
    if unknown := sorted(names - known):
        raise ConfigError(f"official sLSTM layer has parameters seqlab does not know: {', '.join(unknown)}")
    return [(name, ours) for name, ours in SLSTM_NAMES.items() if name in names]
