"""Import an official ``xLSTMBlockStack`` or ``xLSTMLMModel`` (NX-AI/xlstm) into a SequenceModel.

An official stack is pre-norm residual blocks — ``x + layer(LN(x))`` then, in sLSTM blocks,
``x + FFN(LN(x))`` with a gated GeLU FFN — and a final LayerNorm: exactly seqlab's ``Block`` and
model norm. Build the SequenceModel with the same layer types and widths, e.g. for
``slstm_at=[1]`` over two blocks of width D::

    ModelConfig(d_model=D, layer_types=["mlstm", "slstm"],
                ffn_by_type={"slstm": {"d_ff": F, "activation": "geglu", "bias": False}})

with F the official FFN width (1.3·D rounded up to a multiple of 64). The official LayerNorms
have no bias and store their weight as an offset from 1; ours get weight 1 + w and bias 0. The
LM head has no bias there; ours gets bias 0. Nothing here imports ``xlstm``.
"""

from __future__ import annotations

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.interop.xlstm_mlstm import load_official_mlstm_layer
from seqlab.interop.xlstm_slstm import load_official_slstm_layer
from seqlab.mixers.mlstm import MLSTMMixer
from seqlab.mixers.slstm import SLSTMMixer
from seqlab.models.sequence import SequenceModel


@torch.no_grad()
def load_official_block_stack(model: SequenceModel, stack: nn.Module) -> SequenceModel:
    """Copy every block of an official ``xLSTMBlockStack`` and its final norm into ``model``."""
    theirs = list(stack.blocks)
    if len(theirs) != len(model.blocks):
        raise ConfigError(f"official stack has {len(theirs)} blocks, the model {len(model.blocks)}")
    for index, (ours, block) in enumerate(zip(model.blocks, theirs, strict=True)):
        _load_block(ours, block, index)
    _load_layer_norm(model.norm, stack.post_blocks_norm, "post_blocks_norm")
    return model


@torch.no_grad()
def load_official_lm(model: SequenceModel, official: nn.Module) -> SequenceModel:
    """Copy an official ``xLSTMLMModel``: token embedding, block stack, LM head."""
    if (
        not isinstance(model.embed, nn.Embedding)
        or model.embed.weight.shape != official.token_embedding.weight.shape
    ):
        raise ConfigError("the model's token embedding does not match the official one (vocabulary or width)")
    model.embed.weight.copy_(official.token_embedding.weight)
    load_official_block_stack(model, official.xlstm_block_stack)
    model.head.weight.copy_(official.lm_head.weight)
    model.head.bias.zero_()
    return model


def _load_block(ours: nn.Module, block: nn.Module, index: int) -> None:
    layer = block.xlstm
    if isinstance(ours.mixer, MLSTMMixer):
        load_official_mlstm_layer(ours.mixer, layer)
    elif isinstance(ours.mixer, SLSTMMixer):
        load_official_slstm_layer(ours.mixer, layer)
    else:
        raise ConfigError(
            f"block {index}: seqlab mixer {type(ours.mixer).__name__} has no official counterpart"
        )
    _load_layer_norm(ours.norm1, block.xlstm_norm, f"blocks.{index}.xlstm_norm")
    if (block.ffn is None) != (ours.ffn is None):
        raise ConfigError(
            f"block {index}: one side has a feed-forward network and the other not (ffn_by_type?)"
        )
    if block.ffn is not None:
        _load_layer_norm(ours.norm2, block.ffn_norm, f"blocks.{index}.ffn_norm")
        for mine, their in ((ours.ffn.up, block.ffn.proj_up), (ours.ffn.down, block.ffn.proj_down)):
            if mine.weight.shape != their.weight.shape:
                raise ConfigError(
                    f"block {index}: FFN weight {tuple(their.weight.shape)} does not fit "
                    f"{tuple(mine.weight.shape)} (d_ff, gated activation?)"
                )
            mine.weight.copy_(their.weight)
            _copy_bias(mine, their)


def _load_layer_norm(ours: nn.Module, theirs: nn.Module, name: str) -> None:
    if not isinstance(ours, nn.LayerNorm):
        raise ConfigError(f"{name}: the model needs norm='layernorm' to take the official LayerNorm")
    ours.weight.copy_(theirs.weight_proxy if theirs.weight is not None else torch.ones_like(ours.weight))
    _copy_bias(ours, theirs)


def _copy_bias(ours: nn.Module, theirs: nn.Module) -> None:
    if ours.bias is None:
        if theirs.bias is not None:
            raise ConfigError("the official module has a bias and ours has none")
        return
    ours.bias.copy_(theirs.bias if theirs.bias is not None else torch.zeros_like(ours.bias))
