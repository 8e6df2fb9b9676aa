"""Memory savers the trainer applies to any model without changing its code.

Activation (gradient) checkpointing per block: each residual block's forward runs under
``torch.utils.checkpoint`` (non-reentrant, RNG state preserved, so dropout masks and therefore
results are the same), keeping only the block inputs and recomputing the inside in backward.
"""

from __future__ import annotations

import functools
import resource

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from seqlab.models.blocks import Block
from seqlab.models.transformer_layers import DecoderLayer, EncoderLayer

CHECKPOINTED = (Block, EncoderLayer, DecoderLayer)


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Wrap every block's forward; returns how many blocks were wrapped."""
    count = 0
    for module in model.modules():
        if isinstance(module, CHECKPOINTED):
            module.forward = functools.partial(_checkpointed, module.forward, module)
            count += 1
    return count


def _checkpointed(forward, module: nn.Module, *args, **kwargs):
    if module.training and torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


def memory_mb(device: torch.device) -> float:
    """Peak memory so far: the CUDA allocator's on a GPU, the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
