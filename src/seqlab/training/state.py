"""The trainer's state as safetensors tensors + JSON, for exact resumption without pickle.

Optimiser moments, RNG states and a carried recurrent state are tensors (saved bit for bit);
everything else (param groups, schedule counters, scaler, trackers) is JSON. Keys are flat:
``optim.<param index>.<name>``, ``rng.torch``, ``rng.data``, ``rng.cuda.<device>``,
``carry.<leaf index>``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import _pytree as pytree

from seqlab.errors import RunDirError


def pack_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``optimizer.state_dict()`` split into tensors and a JSON-able rest."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in sd["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unpack_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], data: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            index, name = key[6:].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in data["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = data["param_groups"]
    for group in groups:  # JSON turned tuples into lists
        for key, value in group.items():
            if key != "params" and isinstance(value, list):
                group[key] = tuple(value)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as err:
        raise RunDirError(f"the checkpoint's optimiser state does not fit this model: {err}") from None


def pack_rng(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The global torch RNG (dropout, init), the data generator and every CUDA device's RNG."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return tensors


def unpack_rng(generator: torch.Generator, tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.split(".")[2]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])


def pack_carry(carry: Any) -> dict[str, torch.Tensor]:
    """The leaves of a carried model state (NamedTuples of tensors), in traversal order."""
    leaves, _ = pytree.tree_flatten(carry)
    return {f"carry.{i}": leaf for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)}


def unpack_carry(tensors: dict[str, torch.Tensor], template: Any, device: torch.device) -> Any:
    """Rebuild a carried state in the structure of ``template`` (a state of the same model)."""
    leaves, spec = pytree.tree_flatten(template)
    saved = [tensors.get(f"carry.{i}") for i in range(len(leaves))]
    if any(s is None for s, leaf in zip(saved, leaves) if isinstance(leaf, torch.Tensor)):
        raise RunDirError("the checkpoint's carried state does not fit this model")
    rebuilt = [s.to(device) if isinstance(leaf, torch.Tensor) else leaf for s, leaf in zip(saved, leaves)]
    return pytree.tree_unflatten(rebuilt, spec)


def detach_state(state: Any) -> Any:
    """The same state with every tensor detached: the TBPTT boundary (values kept, no history)."""
    return pytree.tree_map(lambda x: x.detach() if isinstance(x, torch.Tensor) else x, state)
