"""The sequence-mixer contract (DESIGN.md §2) and the shared recurrent-mixer implementation.

Shape legend: B batch · T time · D model width.

Every mixer is an ``nn.Module`` with::

    y, state = mixer(x, state=None, *, mask=None)   # x (B, T, D) -> y (B, T, D)
    y_t, state = mixer.step(x_t, state)             # x_t (B, D): one token, for generation
    state = mixer.init_state(batch_size)

and is registered by name in :data:`MIXERS` with its config dataclass as ``mixer_cls.Config``.
``mask`` (B, T) bool marks real tokens; padded steps never change the state.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from seqlab.config import from_dict
from seqlab.errors import InvalidInputError, ShapeError
from seqlab.registry import Registry

MIXERS: Registry[type[Mixer]] = Registry("mixer")


class Mixer(nn.Module):
    """Base class: subclasses set ``Config``, ``State``, ``MODES``, ``BACKENDS``."""

    Config: ClassVar[type]
    State: ClassVar[type[NamedTuple]]
    MODES: ClassVar[tuple[str, ...]] = ("recurrent",)
    BACKENDS: ClassVar[tuple[str, ...]] = ("naive",)
    CAUSAL: ClassVar[bool] = True

    def __init__(self, d_model: int, config: Any = None) -> None:
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ShapeError(f"{type(self).__name__}: expected d_model to be a positive int, got {d_model!r}")
        self.d_model = d_model
        self.config = from_dict(self.Config, config if config is not None else {})

    def init_state(self, batch_size: int) -> NamedTuple:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: NamedTuple | None) -> tuple[Tensor, NamedTuple]:
        """One token: x_t (B, D) -> (y_t (B, D), state); equals ``forward`` on a length-1 input."""
        if x_t.dim() != 2:
            raise ShapeError(
                f"{type(self).__name__}.step: expected x_t of shape (B, D), got {tuple(x_t.shape)}"
            )
        y, state = self(x_t[:, None], state)
        return y[:, 0], state

    def state_size(self, T: int = 1) -> int:
        """Floats of state carried per sequence after T tokens (constant in T for recurrent mixers;
        a cache that grows with T overrides this)."""
        return sum(math.prod(shape[1:]) for shape in self.state_shapes(1))

    def state_row(self, state: NamedTuple, b: int) -> tuple[Tensor, ...]:
        """Row b of a batched state, in a form comparable with the state of that row run alone."""
        return tuple(t[b] for t in state)

    def state_shapes(self, batch_size: int) -> tuple[tuple[int, ...], ...]:
        """Shapes of the state's tensors for a batch (constant-size states; a KV cache overrides)."""
        return tuple(tuple(t.shape) for t in self.init_state(batch_size))

    def _check_state(self, state: NamedTuple, B: int) -> NamedTuple:
        """A state of this mixer's type with the shapes :meth:`state_shapes` gives, else ShapeError."""
        want = self.state_shapes(B)
        got = tuple(tuple(t.shape) for t in state) if isinstance(state, tuple) else None
        if not isinstance(state, self.State) or got != want:
            fields = ", ".join(self.State._fields)
            raise ShapeError(
                f"{type(self).__name__}: expected state {self.State.__name__}({fields}) of shapes {want}, "
                f"got {got or type(state).__name__}"
            )
        return state

    def _check_x(self, x: Tensor) -> tuple[int, int]:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ShapeError(
                f"{type(self).__name__}: expected x of shape (B, T, {self.d_model}), got {tuple(x.shape)}"
            )
        return x.shape[0], x.shape[1]

    def _real(self, mask: Tensor | None, x: Tensor) -> Tensor:
        """The (B, T) bool mask of real steps (all True without a mask), checked against x."""
        B, T = x.shape[:2]
        if mask is None:
            return torch.ones(B, T, dtype=torch.bool, device=x.device)
        if mask.shape != (B, T):
            raise ShapeError(
                f"{type(self).__name__}: expected mask of shape ({B}, {T}), got {tuple(mask.shape)}"
            )
        return mask.bool()

    def _check_finite(self, x: Tensor, real: Tensor) -> None:
        """NaN or ±inf at a real step is an error (exponential gates would spread it silently)."""
        finite = torch.isfinite(x).all(-1)  # (B, T)
        if not bool(finite.all() or finite[real].all()):
            raise InvalidInputError(
                f"{type(self).__name__}: the input holds NaN or infinite values at real (unmasked) steps"
            )


def build_mixer(name: str, d_model: int, config: Any = None) -> Mixer:
    """Instantiate the mixer registered as ``name`` (unknown names list the choices)."""
    return MIXERS.get(name)(d_model, config)


class RecurrentMixer(Mixer):
    """A single-layer, unidirectional ``seqlab.nn`` recurrent layer of width D as a mixer.

    Subclasses provide ``_make_layer()``; the state is the layer's (h[, c]) without the
    layers×directions axis, batch-first: each tensor (B, D).
    """

    BACKENDS = ("naive", "torch")

    def __init__(self, d_model: int, config: Any = None) -> None:
        super().__init__(d_model, config)
        self.layer = self._make_layer()

    def _make_layer(self) -> nn.Module:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        self.layer.reset_parameters()

    def init_state(self, batch_size: int) -> NamedTuple:
        ref = next(self.layer.parameters())
        h0, c0 = self.layer._initial_state(batch_size, ref)
        parts = (h0[0],) if c0 is None else (h0[0], c0[0])
        return self.State(*(p.clone() for p in parts))

    def forward(self, x: Tensor, state: NamedTuple | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), state); y is zero where ``mask`` is False."""
        B, _ = self._check_x(x)
        hx = None
        if state is not None:
            self._check_state(state, B)
            parts = tuple(s[None] for s in state)  # each (1, B, D)
            hx = parts if len(parts) == 2 else parts[0]
        y, final = self.layer(x, hx, mask=mask)
        final = final if isinstance(final, tuple) else (final,)
        return y, self.State(*(f[0] for f in final))
