"""Copy named values into a module's parameters, checking that every parameter gets one."""

from __future__ import annotations

from torch import Tensor, nn

from seqlab.errors import ConfigError


def copy_into(ours: nn.Module, values: dict[str, Tensor]) -> None:
    """``values`` maps our parameter names to tensors; all parameters must be covered, shapes equal."""
    mine = dict(ours.named_parameters())
    missing = sorted(set(mine) - set(values))
    if missing:
        raise ConfigError(
            f"no official value for {', '.join(missing)} (bias or conv kernel settings differ?)"
        )
    for name, value in values.items():
        if name not in mine:
            raise ConfigError(
                f"the official module has {name} but ours does not (bias or conv kernel settings?)"
            )
        if mine[name].shape != value.shape:
            raise ConfigError(
                f"official {name} {tuple(value.shape)} does not fit ours {tuple(mine[name].shape)}: "
                "build the seqlab module with the official module's widths and heads"
            )
        mine[name].copy_(value)
