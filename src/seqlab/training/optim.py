"""Optimisers from torch with weight-decay groups: decay matrices, not biases, norms or embeddings."""

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


def build_optimizer(model: nn.Module, train) -> torch.optim.Optimizer:
    """``train.optimizer`` of a TrainConfig over :func:`param_groups` of ``model``.

    ``adamw`` decouples the decay (Loshchilov & Hutter 2019); ``adam`` and ``rmsprop`` add it to
    the gradient (L2); ``sgd`` uses heavy-ball ``momentum``.
    """
    t = train
    groups = param_groups(model, t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
    if t.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=t.lr, alpha=t.beta2, eps=t.eps, momentum=t.momentum)
    raise AssertionError(f"unreachable: optimizer {t.optimizer!r} passed config validation")
