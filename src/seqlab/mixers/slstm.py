"""sLSTM: the xLSTM layer with a scalar memory and memory mixing (Beck et al. 2024), as a mixer.

Shape legend: B batch · T time · D model width · NH heads · DH = D / NH · k conv kernel size.

The layer as the official implementation builds it (``sLSTMLayer``; no projection, width D):

    x_c = SiLU(CausalConv1d_k(x))                  (short causal conv; feeds the i and f gates)
    ĩ = W_i x_c,  f̃ = W_f x_c,  z̃ = W_z x,  õ = W_o x   (block-diagonal: one block per head)
    [ĩ, f̃, z̃, õ]_t += h_{t−1} R + b                 (R block-diagonal: memory mixing per head)
    z = tanh(z̃)      cell input, what may be learnt
    i = exp(ĩ)       input ("learn") gate, exponential
    f = σ(f̃) or exp(f̃)   forget gate (``forget_gate`` = sigmoid | exp)
    o = σ(õ)         output ("use") gate
    c_t = f c_{t−1} + i z     cell state: long-term memory ("remember")
    n_t = f n_{t−1} + i       normaliser: the running sum of input-gate mass
    h_t = o ⊙ c_t / n_t       hidden state: short-term memory
    y = GroupNorm_NH(dropout(h))

computed in the stabilised form of :mod:`seqlab.ops.slstm` (a running log-scale m keeps every
exp ≤ 1; the output is unchanged). Exponential input gates let a new input overrule the memory
("revise a storage decision"); the normaliser keeps h bounded (|h| ≤ 1). The recurrence is
nonlinear in h, so unlike the mLSTM there is no parallel form: ``naive`` is an autograd step
loop (the reference), ``fused`` (the default) the same loop with hand-written BPTT.

Initialisation as the official code (``sLSTMLayer.reset_parameters``): gate weights "small
init" N(0, 2/(5D)); recurrent R zero (``recurrent_init="zeros"``) or U(±1/√D); biases zero except
the forget gate's, which follows ``bias_init``: ``powerlaw_blockdependent`` gives unit j of each
head −(−5 + 12·(j/(DH−1))^{0.3 + 1.3·p}) (from +5, long memory, down to −7, p =
``block_position``), ``small_init`` linspace(3, 6), ``standard`` U(±1/√D), ``zeros``. With the
exponential forget gate the bias is log σ of that, so the initial forget factors are the same.
Group-norm weight 1. Dropout sits before the norm, as in the official layer.
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
from seqlab.ops.slstm import SLSTMCellState, slstm_fused, slstm_naive


@dataclass
class SLSTMConfig:
    """Options of the sLSTM mixer (width comes from the model's ``d_model``).

    Attributes:
        num_heads: heads NH (must divide d_model); R and the gate projections are per head.
        conv_kernel_size: causal conv in front of the i and f gates; 0 = none.
        forget_gate: ``sigmoid`` (log f = log σ(f̃), the official choice) or ``exp`` (log f = f̃).
        bias_init: forget-gate bias init: ``powerlaw_blockdependent`` | ``small_init`` |
            ``standard`` | ``zeros`` (see the module docstring).
        recurrent_init: ``zeros`` (official default) or ``standard`` U(±1/√D).
        block_position: where this block sits in the stack, block_index / (num_blocks − 1) in
            [0, 1]; only shapes the power-law forget-bias init (deeper = longer memory).
        dropout: on h, before the per-head norm.
        backend: ``auto`` (= fused), ``naive`` (autograd step loop) or ``fused`` (hand-written BPTT).
    """

    num_heads: int = 4
    conv_kernel_size: int = 4
    forget_gate: Literal["sigmoid", "exp"] = "sigmoid"
    bias_init: Literal["powerlaw_blockdependent", "small_init", "standard", "zeros"] = (
        "powerlaw_blockdependent"
    )
    recurrent_init: Literal["zeros", "standard"] = "zeros"
    block_position: float = 0.0
    dropout: float = 0.0
    backend: Literal["auto", "naive", "fused"] = "auto"

    def __post_init__(self) -> None:
        check_positive("num_heads", self.num_heads)
        check_positive("conv_kernel_size", self.conv_kernel_size, allow_zero=True)
        check_range("block_position", self.block_position, 0.0, 1.0)
        check_range("dropout", self.dropout, 0.0, 0.99)


class SLSTMState(NamedTuple):
    h: Tensor  # (B, D) hidden state, short-term memory
    c: Tensor  # (B, D) cell state, long-term memory (scaled by e^{−m})
    n: Tensor  # (B, D) normaliser (scaled by e^{−m}); 0 = nothing seen yet
    m: Tensor  # (B, D) stabiliser, the log scale of c and n
    conv: Tensor  # (B, k − 1, D) the last real inputs of the causal conv


@MIXERS.register("slstm")
class SLSTMMixer(Mixer):
    """The sLSTM layer: ``forward(x, state, mask) -> (y, SLSTMState)``; O(D) state."""

    Config = SLSTMConfig
    State = SLSTMState
    BACKENDS = ("naive", "fused")

    def __init__(self, d_model: int, config=None) -> None:
        super().__init__(d_model, config)
        c = self.config
        if d_model % c.num_heads:
            raise ConfigError(f"slstm: num_heads={c.num_heads} must divide d_model={d_model}")
        if d_model // c.num_heads < 2:
            raise ConfigError(
                f"slstm: num_heads={c.num_heads} leaves one unit per head of d_model={d_model}; "
                "the per-head norm of a single unit is always 0: use at most d_model / 2 heads"
            )
        NH, DH = c.num_heads, d_model // c.num_heads
        self.num_heads, self.head_dim = NH, DH
        self.conv = CausalConv1d(d_model, c.conv_kernel_size)
        self.igate, self.fgate, self.zgate, self.ogate = (
            HeadwiseLinear(d_model, d_model, NH) for _ in range(4)
        )
        self.recurrent = nn.Parameter(torch.empty(NH, DH, 4, DH))  # R[h, j, gate, k]: unit j -> k
        self.bias = nn.Parameter(torch.empty(NH, 4, DH))  # gates (i, f, z, o) per head
        self.norm = MultiHeadNorm(NH, d_model)
        self.dropout = nn.Dropout(c.dropout)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        D, c = self.d_model, self.config
        for gate in (self.igate, self.fgate, self.zgate, self.ogate):
            nn.init.normal_(gate.weight, std=math.sqrt(2 / (5 * D)))
        self.conv.reset_parameters()
        if c.recurrent_init == "zeros":
            nn.init.zeros_(self.recurrent)
        else:
            nn.init.uniform_(self.recurrent, -1 / math.sqrt(D), 1 / math.sqrt(D))
        if c.bias_init == "standard":
            nn.init.uniform_(self.bias, -1 / math.sqrt(D), 1 / math.sqrt(D))
        else:
            nn.init.zeros_(self.bias)
        forget = self._forget_bias()
        if forget is not None:
            if c.forget_gate == "exp":  # the same initial forget factors as the sigmoid gate
                forget = F.logsigmoid(forget)
            self.bias[:, 1] = forget
        self.norm.reset_parameters()

    def _forget_bias(self) -> Tensor | None:
        """The forget-gate bias per unit of a head (DH,) for ``bias_init``; None = leave as is."""
        c, DH = self.config, self.head_dim
        if c.bias_init == "powerlaw_blockdependent":
            pos = torch.linspace(0.0, 1.0, DH)  # j / (DH − 1); one unit: 0
            return -(-5.0 + 12.0 * pos ** (0.3 + 1.3 * c.block_position))
        if c.bias_init == "small_init":
            return torch.linspace(3.0, 6.0, DH)
        return None

    def init_state(self, batch_size: int) -> SLSTMState:
        p = self.bias
        zeros = [p.new_zeros(batch_size, self.d_model) for _ in range(4)]
        return SLSTMState(*zeros, self.conv.init_state(batch_size, p))

    def forward(self, x: Tensor, state: SLSTMState | None = None, *, mask: Tensor | None = None):
        """x (B, T, D) -> (y (B, T, D), state after the T steps); y is 0 at padded steps."""
        B, T = self._check_x(x)
        NH, DH = self.num_heads, self.head_dim
        state = self.init_state(B) if state is None else self._check_state(state, B)
        real = self._real(mask, x)
        self._check_finite(x, real)
        if mask is not None:
            x = torch.where(real[..., None], x, 0.0)  # padded inputs may hold anything
        step_mask = None if mask is None else real
        # 1. the causal conv (over real steps only) + SiLU feeds the i and f gates
        x_c, conv = self.conv(x, state.conv, step_mask)
        x_c = F.silu(x_c) if self.config.conv_kernel_size else x
        # 2. gate pre-activations of all steps at once
        gx = self._gate_inputs(x, x_c)  # (B, T, NH, 4, DH)
        # 3. the recurrence, in the parameters' precision even under autocast (the exponential
        #    gates and the stabiliser m need float32's range; the state is kept in it too)
        dtype = self.recurrent.dtype
        cell = SLSTMCellState(*(s.view(B, NH, DH).to(dtype) for s in state[:4]))
        recurrence = slstm_naive if self.config.backend == "naive" else slstm_fused
        with torch.autocast(x.device.type, enabled=False):
            h, cell = recurrence(
                gx.to(dtype), self.recurrent, cell, step_mask, self.config.forget_gate == "exp"
            )
        # 4. dropout, per-head norm, zero at padded steps
        h = h.reshape(B, T, self.d_model)  # (B, T, D)
        y = self.norm(self.dropout(h) if self.config.dropout else h)
        if mask is not None:
            y = torch.where(real[..., None], y, 0.0)
        return y, SLSTMState(*(s.reshape(B, self.d_model) for s in cell), conv)

    def _gate_inputs(self, x: Tensor, x_c: Tensor) -> Tensor:
        """[ĩ, f̃] from x_c, [z̃, õ] from x, block-diagonal per head, plus the biases.

        Returns (B, T, NH, 4, DH), laid out in memory as (NH, T, B, 4, DH): one batched GEMM per
        input, and the layout the fused recurrence reads without a copy.
        """
        B, T, _ = x.shape
        NH, DH = self.num_heads, self.head_dim

        def heads(t: Tensor) -> Tensor:
            return t.view(B, T, NH, DH).permute(2, 1, 0, 3).reshape(NH, T * B, DH)  # (NH, T·B, DH)

        w = torch.cat([self.igate.weight, self.fgate.weight, self.zgate.weight, self.ogate.weight], 1)
        w = w.transpose(1, 2)  # (NH, DH, 4·DH): unit j -> gate g, unit k
        bias = self.bias.view(NH, 1, 4 * DH)
        if self.config.conv_kernel_size == 0:  # one product for all four gates
            gx = torch.baddbmm(bias, heads(x), w)  # (NH, T·B, 4·DH)
        else:
            g_if = torch.baddbmm(bias[..., : 2 * DH], heads(x_c), w[..., : 2 * DH])  # (NH, T·B, 2·DH)
            g_zo = torch.baddbmm(bias[..., 2 * DH :], heads(x), w[..., 2 * DH :])  # (NH, T·B, 2·DH)
            gx = torch.cat([g_if, g_zo], -1)  # (NH, T·B, 4·DH)
        return gx.view(NH, T, B, 4, DH).permute(2, 1, 0, 3, 4)  # (B, T, NH, 4, DH)

    def state_shapes(self, batch_size: int) -> tuple[tuple[int, ...], ...]:
        B, D = batch_size, self.d_model
        return (B, D), (B, D), (B, D), (B, D), (B, max(self.config.conv_kernel_size - 1, 0), D)
