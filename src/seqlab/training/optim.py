"""AdamW with weight-decay groups: decay matrices, not biases, norms or embeddings."""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups; every trainable parameter in exactly one (tied weights once).

    No decay for: biases and other 1-D parameters (norm gains, initial states), and embeddings.
    """
    no_decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay = [], []
    for _, p in model.named_parameters():  # deduplicated: a tied weight appears once
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or id(p) in no_decay_ids else decay).append(p)
    n_all = len({id(p) for p in model.parameters() if p.requires_grad})
    assert len(decay) + len(no_decay) == n_all, "every parameter must be in exactly one group"
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, beta2: float = 0.99, eps: float = 1e-8
) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, beta2), eps=eps)
