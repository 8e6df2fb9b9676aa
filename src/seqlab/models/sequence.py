"""SequenceModel: input embedding -> mixer blocks (declared by ``layer_types``) -> norm -> head.

Shape legend: B batch · T time · D model width · V vocabulary · F input features · O outputs.

One class serves every per-step task: a language model (tokens in, next-token logits out), a
classifier or tagger (read the outputs at the positions the task scores), or a regressor
(real-valued features in). The task's :class:`~seqlab.spec.IOSpec` says which.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError
from seqlab.layers import build_norm
from seqlab.layers.positional import sinusoidal
from seqlab.layers.word_embedding import WORD_EMBEDDINGS
from seqlab.models.archs import ARCHS
from seqlab.models.blocks import Block
from seqlab.models.config import ModelConfig
from seqlab.spec import IOSpec


class ModelState(NamedTuple):
    """What a model carries between calls: one mixer state per block, and the position."""

    blocks: list  # one mixer state per block
    position: Tensor  # (B,) real tokens consumed so far per row


def _token_embedding(config: ModelConfig, io: IOSpec) -> nn.Module:
    """``model.embedding`` / ``model.embedding_vectors`` -> the module that embeds token ids."""
    if config.embedding == "token" and config.embedding_vectors is None:
        return nn.Embedding(io.vocab_size, config.d_model).requires_grad_(not config.freeze_embedding)
    if io.vocab is None:
        asked = f"embedding={config.embedding}" if config.embedding != "token" else "embedding_vectors"
        raise ConfigError(
            f"model.{asked} needs the vocabulary strings, and this task gives none (IOSpec.vocab)"
        )
    from seqlab.data.vectors import build_input_embedding  # only here: models need no data otherwise

    seed = int(torch.randint(2**31 - 1, ()))  # from the seeded global stream, like every other init
    return build_input_embedding(
        config.embedding,
        io.vocab,
        config.d_model,
        vectors=config.embedding_vectors,
        freeze=config.freeze_embedding,
        oov=config.embedding_oov,
        buckets=config.embedding_buckets,
        seed=seed,
    )


@ARCHS.register("sequence")
class SequenceModel(nn.Module):
    """Embedding (or linear input projection) -> blocks -> norm -> linear head.

    ``model.tie_weights`` makes the head use the embedding matrix (one (V, D) table: a token
    embedding of width ``d_model``). It cannot be combined with ``model.freeze_embedding``: the
    shared matrix would freeze the output head too, so the pair is a ConfigError — freeze the
    embedding with an untied head, or tie and fine-tune the (pretrained) table.
    """

    Config = ModelConfig

    def __init__(self, config: ModelConfig, io: IOSpec) -> None:
        super().__init__()
        if io.is_seq2seq:
            raise ConfigError(
                "this task is sequence-to-sequence (it feeds a source sequence): use an encoder-decoder "
                "architecture, e.g. --model seq2seq or --set model.arch=transformer-seq2seq"
            )
        self.config, self.io = config, io
        D = config.d_model
        if io.vocab_size is not None:
            self.embed: nn.Module = _token_embedding(config, io)
        else:
            self.embed = nn.Linear(io.input_dim, D)
        self.dropout = nn.Dropout(config.dropout)
        if config.positional == "learned":
            self.pos_embed = nn.Embedding(config.max_len, D)
        self.blocks = nn.ModuleList(
            Block(
                D,
                name,
                config.mixer_config(name),
                config.ffn_config(name),
                config.dropout,
                config.norm,
                config.residual,
            )
            for name in config.layer_types
        )
        self.norm = build_norm(config.norm, D)
        self.head = nn.Linear(D, io.output_dim)
        if config.tie_weights:
            if config.freeze_embedding:
                raise ConfigError(
                    "model.tie_weights with model.freeze_embedding would freeze the output head too (one "
                    "shared matrix): choose one — an untied head, or a tied embedding that trains"
                )
            if not io.is_language_model:
                raise ConfigError("tie_weights needs token inputs and outputs over the same vocabulary")
            if not isinstance(self.embed, nn.Embedding):
                raise ConfigError(
                    f"tie_weights needs one (V, d_model) embedding table; embedding={config.embedding} "
                    "(or pretrained vectors of another width) has none"
                )
            self.head.weight = self.embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings N(0, 0.02) or their pretrained values (mixers and norms initialise themselves)."""
        if type(self.embed) is nn.Embedding:
            nn.init.normal_(self.embed.weight, std=0.02)
        for module in self.embed.modules():
            if isinstance(module, WORD_EMBEDDINGS):
                module.reset_parameters()
        if self.config.positional == "learned":
            nn.init.normal_(self.pos_embed.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    # -- forward ---------------------------------------------------------------------------------

    def forward(
        self, inputs: Tensor, state: ModelState | None = None, *, mask: Tensor | None = None
    ) -> tuple[Tensor, ModelState]:
        """inputs (B, T) token ids or (B, T, F) features -> (outputs (B, T, O), ModelState)."""
        B, T = inputs.shape[:2]
        blocks, start = self._check_state(state, B, inputs.device)
        steps = mask.long().cumsum(1) - 1 if mask is not None else torch.arange(T, device=inputs.device)
        x = self._embed(inputs, start[:, None] + steps)  # (B, T, D)
        new_states = []
        for block, s in zip(self.blocks, blocks, strict=True):
            x, s = block(x, s, mask)
            new_states.append(s)
        consumed = mask.long().sum(1) if mask is not None else T
        return self.head(self.norm(x)), ModelState(new_states, start + consumed)

    def step(self, inputs_t: Tensor, state: ModelState | None) -> tuple[Tensor, ModelState]:
        """One step: inputs_t (B,) tokens or (B, F) features -> (outputs (B, O), ModelState)."""
        blocks, start = self._check_state(state, inputs_t.shape[0], inputs_t.device)
        x = self._embed(inputs_t[:, None], start[:, None])[:, 0]  # (B, D)
        new_states = []
        for block, s in zip(self.blocks, blocks, strict=True):
            x, s = block.step(x, s)
            new_states.append(s)
        return self.head(self.norm(x)), ModelState(new_states, start + 1)

    def _embed(self, inputs: Tensor, positions: Tensor) -> Tensor:
        """Token embedding (or input projection) plus the absolute position encoding, if any."""
        x = self._embed_inputs(inputs)
        kind = self.config.positional
        if kind == "none":
            return self.dropout(x)
        positions = positions.clamp(min=0)  # padded slots before the first real token
        if kind == "learned":
            if int(positions.max()) >= self.config.max_len:
                raise ShapeError(
                    f"position {int(positions.max())} is beyond the learned position table "
                    f"(max_len={self.config.max_len}); raise model.max_len or use shorter inputs"
                )
            x = x + self.pos_embed(positions)
        else:
            x = x + sinusoidal(positions, self.config.d_model).to(x.dtype)
        return self.dropout(x)

    def _embed_inputs(self, inputs: Tensor) -> Tensor:
        if self.io.vocab_size is not None:
            if inputs.dim() != 2 or inputs.is_floating_point():
                raise ShapeError(
                    f"expected token ids of shape (B, T), got {inputs.dtype} {tuple(inputs.shape)}"
                )
        elif inputs.dim() != 3 or inputs.shape[-1] != self.io.input_dim:
            raise ShapeError(
                f"expected features of shape (B, T, {self.io.input_dim}), got {tuple(inputs.shape)}"
            )
        return self.embed(inputs)

    def _check_state(self, state: ModelState | None, B: int, device) -> tuple[list, Tensor]:
        if state is None:
            return [None] * len(self.blocks), torch.zeros(B, dtype=torch.long, device=device)
        if not isinstance(state, ModelState):
            raise ShapeError(f"expected a ModelState (from a previous call), got {type(state).__name__}")
        if len(state.blocks) != len(self.blocks):
            raise ShapeError(f"expected one state per block ({len(self.blocks)}), got {len(state.blocks)}")
        return list(state.blocks), state.position

    # -- accounting for fair comparisons -------------------------------------------------------

    def num_params(self, trainable_only: bool = True) -> int:
        """Number of parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def state_size(self, T: int = 1) -> int:
        """Floats of state carried per sequence after T tokens (recurrent: constant; attention: grows)."""
        return sum(block.mixer.state_size(T) for block in self.blocks)

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        repetition: float = 1.0,
        allowed: int | None = None,
    ) -> Tensor:
        """Continue ``prompt`` (B, T0); see :func:`seqlab.models.generation.generate`."""
        from seqlab.models.generation import generate

        return generate(
            self, prompt, max_new_tokens, temperature, top_k, top_p, generator, repetition, allowed
        )
