"""The ``backend="torch"`` path of :class:`seqlab.nn.RNNBase`: torch's fused kernels.

Calls the same ATen entry points as ``torch.nn.LSTM/GRU/RNN`` on seqlab's own parameters
(which are laid out identically), packing right-padded batches for variable lengths.

Shape legend: B batch · T time · D input · L·K layers × directions · O output width.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqlab.nn.masking import mask_to_lengths

_KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def forward(module, x: Tensor, h0: Tensor, c0: Tensor | None, mask: Tensor | None):
    """x (B, T, D) batch-first; h0/c0 (L·K, B, ·) -> (out (B, T, O), h_n, c_n or None)."""
    kernel = _KERNELS[module.mode]
    hx = (h0.contiguous(), c0.contiguous()) if c0 is not None else h0.contiguous()
    args = (
        module._flat_weights,
        module.bias,
        module.num_layers,
        module.dropout,
        module.training,
        module.bidirectional,
    )
    if mask is None:
        result = kernel(x, hx, *args, True)
        return result[0], result[1], (result[2] if c0 is not None else None)

    # Variable lengths: pack (rows of length 0 run one step and are restored below).
    T = x.shape[1]
    lengths = mask_to_lengths(mask)
    packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx = tuple(h.index_select(1, order) for h in hx) if c0 is not None else hx.index_select(1, order)
    result = kernel(packed.data, packed.batch_sizes, hx, *args)
    out, _ = pad_packed_sequence(
        PackedSequence(result[0], packed.batch_sizes, order, unorder), batch_first=True, total_length=T
    )
    h_n = result[1].index_select(1, unorder)
    c_n = result[2].index_select(1, unorder) if c0 is not None else None
    empty = lengths == 0
    if bool(empty.any()):
        out = out * mask[..., None]
        h_n = torch.where(empty[None, :, None], h0, h_n)
        c_n = torch.where(empty[None, :, None], c0, c_n) if c0 is not None else None
    return out, h_n, c_n
