"""mLSTM: the xLSTM layer with a matrix memory (Beck et al. 2024), as a sequence mixer.

Shape legend: B batch · T time · D model width · I inner width · H heads · K = I / H.

The layer as the official implementation builds it (pre up-projection, ``mLSTMLayer``):

    [x_m, z] = x W_up                                   (I = proj_factor·D, rounded up to round_to)
    c = SiLU(CausalConv1d_k(x_m))                       (short causal conv, kernel 4, feeds q and k)
    q = W_q c,  k = W_k c,  v = W_v x_m                 (block-diagonal, blocks of qkv_block_size)
    ĩ, f̃ = w_i·[q; k; v] + b_i,  w_f·[q; k; v] + b_f    (one scalar gate per head and step)
    C_t = f_t C_{t−1} + i_t v_t k_tᵀ,  n_t = f_t n_{t−1} + i_t k_t      (per head, i = exp(ĩ))
    h̃_t = C_t q_t / max(|n_tᵀ q_t|, 1)                  (stabilised: :mod:`seqlab.ops.mlstm`)
    h = (GroupNorm_H(h̃) + s ⊙ c) ⊙ SiLU(z)              (learnable skip s, output gate SiLU(z))
    y = h W_down

The forget gate is sigmoid (log f = logsigmoid(f̃), the default) or exponential (log f = f̃).
Unlike the LSTM there is no memory mixing (no recurrent weights): the recurrence is linear in
(C, n), which is what lets it run in parallel. ``mode`` picks one of three equal forms:
``recurrent`` (a step loop; what ``step`` always uses), ``parallel`` (quadratic D-matrix form)
and ``chunkwise`` (linear in T, chunks of ``chunk_size``; the default). No fixed context length:
any T works in every mode. Padded steps (``mask`` False) leave the state unchanged and give 0.

Initialisation as the paper's code: forget-gate bias linspace(3, 6) over heads and zero weight
(long memory at the start; the exponential gate starts at the same factors: bias logsigmoid of
it), input-gate bias N(0, 0.1) and zero weight, "small init" N(0, 2/(5D)) for W_up and the
q/k/v blocks, W_down N(0, (2 / init_depth)² / D) (Wang init for a stack of ``init_depth``
blocks), skip = 1, group-norm weight 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.config import check_positive, check_range
from seqlab.errors import ConfigError
from seqlab.layers import CausalConv1d, HeadwiseLinear, MultiHeadNorm
from seqlab.mixers.base import MIXERS, Mixer
from seqlab.ops import compiled_layers
from seqlab.ops.mlstm import MLSTMCellState, mlstm_chunkwise, mlstm_parallel, mlstm_recurrent, zero_state


@dataclass
class MLSTMConfig:
    """Heads; inner width ``proj_factor``·D rounded up to a multiple of ``round_to``; q/k/v block
    size; causal conv kernel (0 = none); forget gate ``sigmoid`` | ``exp``; ``mode`` and
    ``chunk_size`` of the chunkwise form; ``backend`` ``auto`` (= ``naive``: torch ops) or
    ``compiled`` (the q/k/v block projections, the conv and the gated output norm as one-pass
    C++ loops, the chunkwise memory's products in oneDNN, :mod:`seqlab.ops.compiled_layers`,
    built on first use; same math); projection biases;
    dropout on the output; ``init_depth`` = number of blocks in the stack (scales the output
    projection's init)."""

    num_heads: int = 4
    proj_factor: float = 2.0
    round_to: int = 64
    qkv_block_size: int = 4
    conv_kernel_size: int = 4
    forget_gate: Literal["sigmoid", "exp"] = "sigmoid"
    mode: Literal["recurrent", "parallel", "chunkwise"] = "chunkwise"
    chunk_size: int = 64
    backend: Literal["auto", "naive", "compiled"] = "auto"
    bias: bool = False
    dropout: float = 0.0
    init_depth: int = 1

    def __post_init__(self) -> None:
        check_positive("num_heads", self.num_heads)
        check_positive("proj_factor", self.proj_factor)
        check_positive("round_to", self.round_to)
        check_positive("qkv_block_size", self.qkv_block_size)
        check_positive("conv_kernel_size", self.conv_kernel_size, allow_zero=True)
        check_positive("chunk_size", self.chunk_size)
        check_range("dropout", self.dropout, 0.0, 0.99)
        check_positive("init_depth", self.init_depth)

    def inner_dim(self, d_model: int) -> int:
        """I = proj_factor·D rounded up to a multiple of ``round_to``."""
        return math.ceil(self.proj_factor * d_model / self.round_to) * self.round_to


class MLSTMState(NamedTuple):
    C: Tensor  # (B, H, K, K) matrix memory (scaled by e^{−m})
    n: Tensor  # (B, H, K) normaliser (scaled by e^{−m})
    m: Tensor  # (B, H) stabiliser
    conv: Tensor  # (B, k − 1, I) the last real inputs of the causal conv


@MIXERS.register("mlstm")
class MLSTMMixer(Mixer):
    """The mLSTM layer: ``forward(x, state, mask) -> (y, MLSTMState)``; O(H·K²) state."""

    Config = MLSTMConfig
    State = MLSTMState
    MODES = ("recurrent", "parallel", "chunkwise")
    BACKENDS = ("naive", "compiled")

    def __init__(self, d_model: int, config=None) -> None:
        super().__init__(d_model, config)
        c = self.config
        inner = c.inner_dim(d_model)
        for name, value in (("num_heads", c.num_heads), ("qkv_block_size", c.qkv_block_size)):
            if inner % value:
                raise ConfigError(
                    f"mlstm: {name}={value} must divide the inner width {inner} "
                    f"(= proj_factor {c.proj_factor} × d_model {d_model}, rounded up to {c.round_to})"
                )
        self.inner, self.num_heads, self.head_dim = inner, c.num_heads, inner // c.num_heads
        self.proj_up = nn.Linear(d_model, 2 * inner, bias=c.bias)
        self.conv = CausalConv1d(inner, c.conv_kernel_size)
        blocks = inner // c.qkv_block_size
        self.q_proj, self.k_proj, self.v_proj = (
            HeadwiseLinear(inner, inner, blocks, c.bias) for _ in range(3)
        )
        for layer in (self.conv, self.q_proj, self.k_proj, self.v_proj):
            layer.compiled = c.backend == "compiled"
        self.igate = nn.Linear(3 * inner, c.num_heads)
        self.fgate = nn.Linear(3 * inner, c.num_heads)
        self.norm = MultiHeadNorm(c.num_heads, inner)
        self.skip = nn.Parameter(torch.ones(inner))
        self.proj_down = nn.Linear(inner, d_model, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        small = math.sqrt(2 / (5 * self.d_model))
        for w in (self.proj_up.weight, self.q_proj.weight, self.k_proj.weight, self.v_proj.weight):
            nn.init.normal_(w, std=small)
        nn.init.normal_(self.proj_down.weight, std=2 / self.config.init_depth / math.sqrt(self.d_model))
        for lin in (self.proj_up, self.proj_down, self.q_proj, self.k_proj, self.v_proj):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        self.conv.reset_parameters()
        nn.init.zeros_(self.igate.weight)
        nn.init.normal_(self.igate.bias, std=0.1)
        nn.init.zeros_(self.fgate.weight)
        with torch.no_grad():  # exponential gate: the same initial forget factors as the sigmoid's
            bias = torch.linspace(3.0, 6.0, self.num_heads)
            self.fgate.bias.copy_(bias if self.config.forget_gate == "sigmoid" else F.logsigmoid(bias))
        self.norm.reset_parameters()
        nn.init.ones_(self.skip)

    def init_state(self, batch_size: int) -> MLSTMState:
        p = self.proj_up.weight
        cell = zero_state(batch_size, self.num_heads, self.head_dim, self.head_dim, p)
        return MLSTMState(*cell, self.conv.init_state(batch_size, p))

    def forward(self, x: Tensor, state: MLSTMState | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), state after the T steps); y is 0 at padded steps."""
        B, T = self._check_x(x)
        state = self.init_state(B) if state is None else self._check_state(state, B)
        real = self._real(mask, x)
        self._check_finite(x, real)
        if mask is not None:  # (without a mask every step is real: no full-size copies)
            x = torch.where(real[..., None], x, 0.0)
        # 1. up-projection; the conv (over real steps only) feeds q and k
        x_m, z = self.proj_up(x).chunk(2, -1)  # each (B, T, I)
        c, conv = self.conv(x_m, state.conv, mask)
        c = F.silu(c)  # (B, T, I)
        q, k, v = self.q_proj(c), self.k_proj(c), self.v_proj(x_m)  # each (B, T, I)
        # 2. scalar gates per head; padded steps: log f = 0, ĩ = −∞ (the memory stays as it is)
        i_pre, f_pre = self._gates(q, k, v).chunk(2, -1)  # each (B, T, H)
        log_f = F.logsigmoid(f_pre) if self.config.forget_gate == "sigmoid" else f_pre
        i_pre = torch.where(real[..., None], i_pre, -math.inf).transpose(1, 2)  # (B, H, T)
        log_f = torch.where(real[..., None], log_f, 0.0).transpose(1, 2)  # (B, H, T)
        # 3. the matrix-memory recurrence, per head
        q, k, v = (
            t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v)
        )  # (B, H, T, K)
        h, cell = self._cell(q, k, v, i_pre, log_f, MLSTMCellState(*state[:3]))  # (B, H, T, K)
        # 4. per-head norm, skip from the conv, output gate, down-projection
        h = self._output(h.transpose(1, 2).reshape(B, T, self.inner), c, z)  # (B, T, I)
        y = self.dropout(self.proj_down(h))  # (B, T, D)
        y = y if mask is None else torch.where(real[..., None], y, 0.0)
        return y, MLSTMState(*cell, conv)

    def _output(self, h: Tensor, c: Tensor, z: Tensor) -> Tensor:
        """(GroupNorm_H(h̃) + s ⊙ c) ⊙ SiLU(z), all (B, T, I); one C++ pass with the compiled
        backend (:func:`seqlab.ops.compiled_layers.gated_norm`) where it can run."""
        norm = self.norm
        if (
            self.config.backend == "compiled"
            and norm.bias is None
            and compiled_layers.available(h)
            and h.dtype == c.dtype == z.dtype == norm.weight.dtype == self.skip.dtype
        ):
            return compiled_layers.gated_norm(h, norm.weight, self.skip, c, z, self.num_heads, norm.eps)
        return (norm(h) + self.skip * c) * F.silu(z)

    def _gates(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """[ĩ, f̃] = [w_i; w_f]·[q; k; v] + b as three products with slices of the stacked
        weights: the same numbers as the two linears on ``cat([q, k, v])`` without writing the
        (B, T, 3I) concatenation and its gradient."""
        w = torch.cat([self.igate.weight, self.fgate.weight])  # (2H, 3I)
        b = torch.cat([self.igate.bias, self.fgate.bias])  # (2H,)
        # contiguous slices: torch then forms each weight gradient as δgᵀ x (M = 2H), several
        # times faster than the (xᵀ δg)ᵀ it picks for a strided weight
        w_q, w_k, w_v = (part.contiguous() for part in w.chunk(3, -1))  # each (2H, I)
        return F.linear(q, w_q, b) + F.linear(k, w_k) + F.linear(v, w_v)  # (B, T, 2H)

    def _cell(self, q, k, v, i_pre, log_f, state: MLSTMCellState) -> tuple[Tensor, MLSTMCellState]:
        """Dispatch on ``mode``; a single step is always the recurrent form."""
        mode = self.config.mode
        if mode == "recurrent" or q.shape[2] == 1:
            return mlstm_recurrent(q, k, v, i_pre, log_f, state)
        onednn = self.config.backend == "compiled"  # the memory's products in oneDNN
        if mode == "parallel":
            return mlstm_parallel(q, k, v, i_pre, log_f, state, onednn=onednn)
        return mlstm_chunkwise(q, k, v, i_pre, log_f, state, self.config.chunk_size, onednn=onednn)

    def state_shapes(self, batch_size: int) -> tuple[tuple[int, ...], ...]:
        H, K, B = self.num_heads, self.head_dim, batch_size
        return (B, H, K, K), (B, H, K), (B, H), (B, max(self.config.conv_kernel_size - 1, 0), self.inner)
