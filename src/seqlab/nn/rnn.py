"""``seqlab.nn.RNN / LSTM / GRU``: drop-ins for ``torch.nn.RNN / LSTM / GRU``.

Shape legend: B batch · T time · D input width · H hidden width · P projection width ·
L layers · K directions (1 or 2) · O = K·(P or H) output width.

Same constructor arguments, same ``state_dict`` keys (``weight_ih_l0``, ``bias_hh_l1_reverse``,
``weight_hr_l0`` …) and same return values as torch, so ``m.load_state_dict(torch_lstm.state_dict())``
gives the same outputs. Differences, all deliberate:

* ``batch_first`` defaults to True (seqlab is batch-first everywhere); False is supported.
* ``forward(input, hx=None, *, lengths=None, mask=None)``: variable-length batches without
  packing. Padded steps never change the state, padded outputs are zero, and each row gets the
  result it would get alone (right-padded for ``backend="torch"``; any mask otherwise).
* Backends: ``"torch"`` calls torch's fused kernels on the same parameters; ``"naive"`` is
  the readable per-step loop of :mod:`seqlab.ops.rnn` under autograd (the reference);
  ``"fused"`` (LSTM without layer norm or projection) is the same loop with hand-written BPTT
  (:mod:`seqlab.ops.rnn.fused_lstm`); ``"compiled"`` (LSTM without projection, with or without
  layer norm / recurrent dropout) runs the time loop and BPTT in a C++ extension built on first
  use (:mod:`seqlab.ops.rnn.compiled_lstm`; ~1 min once, then cached) and, where it cannot be
  built or run (no compiler, CUDA, half precision), runs ``"fused"`` (``"naive"`` with layer
  norm) instead after one warning. ``"auto"`` (default) picks ``"torch"`` whenever the
  configuration allows it, then ``"fused"``, then ``"naive"`` (``"compiled"`` is opt-in: its
  first use compiles for about a minute). The naive, fused and compiled
  backends give first-order gradients only (differentiating twice raises).
* Variants torch lacks: ``layer_norm`` (LSTM, Ba et al. 2016; naive or compiled backend) and
  ``recurrent_dropout`` (one mask per sequence on h; naive, or fused/compiled for LSTM); with any
  backend: ``learnable_init_state`` and, for LSTM, ``forget_bias`` at init.
* ``LSTM(forget_bias=1.0)`` initialises the forget-gate slice of ``bias_ih`` to 1 and of
  ``bias_hh`` to 0 (effective bias 1.0; filling both, as some recipes do, gives 2.0).
  ``forget_bias=None`` keeps torch's uniform init everywhere.

Parameter counts: torch keeps two bias vectors (``b_ih`` and ``b_hh``) per layer, so an LSTM has
``4·H·(D + H) + 2·4·H`` parameters where the textbook single-bias count is ``4·H·(D + H + 1)``;
GRU ``3·H·(D + H) + 2·3·H`` vs ``3·H·(D + H + 1)``; Elman RNN ``H·(D + H) + 2·H`` vs ``H·(D + H + 1)``.
For H = 256, D = 100: LSTM 366,592 (textbook 365,568), GRU 274,944 (textbook 274,176).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError
from seqlab.nn import _rnn_loop, _rnn_torch
from seqlab.nn.masking import resolve_mask

BACKENDS = ("auto", "naive", "torch", "fused", "compiled")
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(nn.Module):
    """Shared machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU` (see the module doc)."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        backend: str = "auto",
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        learnable_init_state: bool = False,
        forget_bias: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_args(mode, input_size, hidden_size, num_layers, dropout, proj_size, backend)
        _check_variants(mode, layer_norm, recurrent_dropout, forget_bias)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.layer_norm, self.recurrent_dropout = layer_norm, float(recurrent_dropout)
        self.learnable_init_state, self.forget_bias = learnable_init_state, forget_bias
        self.backend = _pick_backend(mode, backend, layer_norm, recurrent_dropout, proj_size)
        self._create_parameters(device, dtype)
        self.reset_parameters()

    # -- parameters ------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of one direction's output/hidden state: P if projected, else H."""
        return self.proj_size or self.hidden_size

    def _create_parameters(self, device, dtype) -> None:
        kw = {"device": device, "dtype": dtype}
        G, H, P = _GATES[self.mode], self.hidden_size, self.proj_size
        self._flat_weights_names: list[str] = []
        for layer in range(self.num_layers):
            d_in = self.input_size if layer == 0 else self.output_size * self.num_directions
            for direction in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                params = {f"weight_ih{sfx}": (G * H, d_in), f"weight_hh{sfx}": (G * H, self.output_size)}
                if self.bias:
                    params |= {f"bias_ih{sfx}": (G * H,), f"bias_hh{sfx}": (G * H,)}
                if P:
                    params[f"weight_hr{sfx}"] = (P, H)
                for name, shape in params.items():
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **kw)))
                self._flat_weights_names.extend(params)
                if self.layer_norm:  # gains on both pre-activations, gain + bias on the cell
                    for name, shape in [("ln_ih_weight", G * H), ("ln_hh_weight", G * H)]:
                        self.register_parameter(name + sfx, nn.Parameter(torch.empty(shape, **kw)))
                    self.register_parameter(f"ln_c_weight{sfx}", nn.Parameter(torch.empty(H, **kw)))
                    self.register_parameter(f"ln_c_bias{sfx}", nn.Parameter(torch.empty(H, **kw)))
                if self.learnable_init_state:
                    self.register_parameter(f"h0{sfx}", nn.Parameter(torch.empty(self.output_size, **kw)))
                    if self.mode == "LSTM":
                        self.register_parameter(f"c0{sfx}", nn.Parameter(torch.empty(H, **kw)))

    def reset_parameters(self) -> None:
        """torch's init U(-1/√H, 1/√H); norms gain 1 / bias 0; initial states 0; forget bias."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith(("ln_", "h0", "c0")):
                    p.fill_(1.0 if "_weight" in name else 0.0)
                else:
                    p.uniform_(-bound, bound)
            if self.mode == "LSTM" and self.forget_bias is not None and self.bias:
                H = self.hidden_size
                for name, p in self.named_parameters():
                    if name.startswith("bias_ih"):
                        p[H : 2 * H] = self.forget_bias
                    elif name.startswith("bias_hh"):
                        p[H : 2 * H] = 0.0

    def _layer_params(self, layer: int, direction: int) -> dict[str, Tensor | None]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "ln_ih_weight"]
        names += ["ln_hh_weight", "ln_c_weight", "ln_c_bias"]
        return {n: getattr(self, n + sfx, None) for n in names}

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    # -- forward -----------------------------------------------------------------------------

    def forward(
        self,
        input: Tensor,
        hx: Tensor | tuple[Tensor, Tensor] | None = None,
        *,
        lengths: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """Run the stacked recurrence.

        Args:
            input: (B, T, D) with ``batch_first`` (else (T, B, D)); (T, D) for one unbatched sequence.
            hx: initial state in torch's layout, (L·K, B, P or H) — for LSTM a tuple (h_0, c_0)
                with c_0 of shape (L·K, B, H). Default: zeros, or the learned initial state.
            lengths: (B,) integer lengths of right-padded sequences.
            mask: (B, T) bool, True at real tokens (alternative to ``lengths``).

        Returns:
            ``output, h_n`` (``output, (h_n, c_n)`` for LSTM), as ``torch.nn``: output (B, T, O)
            (zero at padded steps), h_n (L·K, B, P or H), c_n (L·K, B, H).
        """
        batched = input.dim() == 3
        x, h0, c0 = self._check_input(input, hx)
        B, T, _ = x.shape
        mask = resolve_mask(mask, lengths, B, T, x.device)
        if self.backend == "torch":
            out, h_n, c_n = _rnn_torch.forward(self, x, h0, c0, mask)
        else:
            out, h_n, c_n = _rnn_loop.forward(self, x, h0, c0, mask)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out, h_n = out.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        return (out, (h_n, c_n)) if self.mode == "LSTM" else (out, h_n)

    # -- input checks --------------------------------------------------------------------------

    def _check_input(self, input: Tensor, hx) -> tuple[Tensor, Tensor, Tensor | None]:
        """Validate shapes; return x (B, T, D) and initial states (L·K, B, ·)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise ShapeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ShapeError(
                f"{name}: expected input of rank 3 (B, T, D) or 2 (T, D), got shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: expected input.size(-1) == input_size={self.input_size}, got {input.shape[-1]}"
            )
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(0)
        if batched and not self.batch_first:
            x = x.transpose(0, 1)
        B = x.shape[0]
        LK, H, O = self.num_layers * self.num_directions, self.hidden_size, self.output_size
        if hx is None:
            return x, *self._initial_state(B, x)
        is_lstm = self.mode == "LSTM"
        if is_lstm != isinstance(hx, tuple | list):
            want = "a tuple (h_0, c_0)" if is_lstm else "a single tensor h_0"
            raise ShapeError(f"{name}: expected hx to be {want}, got {type(hx).__name__}")
        h0, c0 = (hx[0], hx[1]) if is_lstm else (hx, None)
        for label, t, width in [("h_0", h0, O), ("c_0", c0, H)]:
            if t is None:
                continue
            want = (LK, B, width) if batched else (LK, width)
            if tuple(t.shape) != want:
                raise ShapeError(f"{name}: expected {label} of shape {want}, got {tuple(t.shape)}")
        if not batched:
            h0, c0 = h0.unsqueeze(1), (c0.unsqueeze(1) if c0 is not None else None)
        return x, h0, c0

    def _initial_state(self, B: int, x: Tensor) -> tuple[Tensor, Tensor | None]:
        LK = self.num_layers * self.num_directions
        if self.learnable_init_state:
            names = [
                f"_l{k // self.num_directions}" + ("_reverse" if k % 2 and self.bidirectional else "")
                for k in range(LK)
            ]
            h0 = torch.stack([getattr(self, "h0" + n) for n in names])[:, None].expand(LK, B, -1)
            c0 = None
            if self.mode == "LSTM":
                c0 = torch.stack([getattr(self, "c0" + n) for n in names])[:, None].expand(LK, B, -1)
            return h0, c0
        h0 = x.new_zeros(LK, B, self.output_size)
        c0 = x.new_zeros(LK, B, self.hidden_size) if self.mode == "LSTM" else None
        return h0, c0

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for key, default in [
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", True),
            ("dropout", 0.0),
            ("bidirectional", False),
            ("proj_size", 0),
            ("layer_norm", False),
            ("recurrent_dropout", 0.0),
            ("learnable_init_state", False),
        ]:
            if getattr(self, key) != default:
                s += f", {key}={getattr(self, key)}"
        return s + f", backend={self.backend!r}"


# -- constructor checks ----------------------------------------------------------------------


def _check_args(mode, input_size, hidden_size, num_layers, dropout, proj_size, backend) -> None:
    for label, value, low in [
        ("input_size", input_size, 1),
        ("hidden_size", hidden_size, 1),
        ("num_layers", num_layers, 1),
        ("proj_size", proj_size, 0),
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{label}: expected an integer >= {low}, got {value!r}")
    if not (isinstance(dropout, int | float) and 0.0 <= dropout <= 1.0):
        raise ConfigError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
    if proj_size and mode != "LSTM":
        raise ConfigError("proj_size is only supported by LSTM")
    if proj_size >= hidden_size:
        raise ConfigError(f"proj_size: expected < hidden_size={hidden_size}, got {proj_size}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")


def _check_variants(mode, layer_norm, recurrent_dropout, forget_bias) -> None:
    if layer_norm and mode != "LSTM":
        raise ConfigError("layer_norm is only implemented for LSTM")
    if not 0.0 <= recurrent_dropout < 1.0:
        raise ConfigError(f"recurrent_dropout: expected a probability in [0, 1), got {recurrent_dropout!r}")
    if forget_bias is not None and mode != "LSTM":
        raise ConfigError("forget_bias only applies to LSTM")


def _pick_backend(mode: str, backend: str, layer_norm: bool, recurrent_dropout: float, proj_size: int) -> str:
    """``auto``: torch's kernels when they compute this model, else ``fused``, else ``naive``.

    ``compiled`` is opt-in (its first use compiles a C++ extension for about a minute).
    """
    needs_loop = [n for n, on in [("layer_norm", layer_norm), ("recurrent_dropout", recurrent_dropout)] if on]
    compiled_ok = mode == "LSTM" and not proj_size
    fused_ok = compiled_ok and not layer_norm
    if backend == "auto":
        return "torch" if not needs_loop else ("fused" if fused_ok else "naive")
    if backend == "torch" and needs_loop:
        loops = ["'naive'"] + ["'fused'"] * fused_ok + ["'compiled'"] * compiled_ok
        raise ConfigError(f"{needs_loop[0]} needs backend={' or '.join(loops)} (torch's kernels lack it)")
    if backend == "fused" and not fused_ok:
        hint = "'compiled' or 'naive'" if compiled_ok else "'naive'"
        raise ConfigError(f"backend='fused' supports LSTM without layer_norm or proj_size; use {hint}")
    if backend == "compiled" and not compiled_ok:
        raise ConfigError("backend='compiled' supports LSTM without proj_size; use 'naive'")
    return backend


# -- public classes with torch's signatures ----------------------------------------------------


class RNN(RNNBase):
    """Elman RNN, drop-in for ``torch.nn.RNN``: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    Args: as ``torch.nn.RNN`` (``nonlinearity`` "tanh" or "relu"), plus ``backend``,
    ``recurrent_dropout`` and ``learnable_init_state`` (see the module docstring).
    Returns from ``forward``: ``output (B, T, K·H), h_n (L·K, B, H)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        backend: str = "auto",
        recurrent_dropout: float = 0.0,
        learnable_init_state: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            backend=backend,
            recurrent_dropout=recurrent_dropout,
            learnable_init_state=learnable_init_state,
            device=device,
            dtype=dtype,
        )


class LSTM(RNNBase):
    """LSTM, drop-in for ``torch.nn.LSTM`` (equations: :func:`seqlab.ops.rnn.lstm_cell`).

    The cell state c is the long-term memory, the hidden state h the short-term memory; the
    forget, learn (input), remember (cell update) and use (output) gates decide what each keeps.

    Args: as ``torch.nn.LSTM`` (incl. ``proj_size``), plus ``backend``, ``layer_norm``,
    ``recurrent_dropout``, ``learnable_init_state`` and ``forget_bias`` (default 1.0;
    ``None`` = torch's init).
    Returns from ``forward``: ``output (B, T, K·(P or H)), (h_n (L·K, B, P or H), c_n (L·K, B, H))``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        backend: str = "auto",
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        learnable_init_state: bool = False,
        forget_bias: float | None = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            backend=backend,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            learnable_init_state=learnable_init_state,
            forget_bias=forget_bias,
            device=device,
            dtype=dtype,
        )


class GRU(RNNBase):
    """GRU, drop-in for ``torch.nn.GRU`` (equations and the z convention: :func:`seqlab.ops.rnn.gru_cell`).

    Args: as ``torch.nn.GRU``, plus ``backend``, ``recurrent_dropout`` and ``learnable_init_state``.
    Returns from ``forward``: ``output (B, T, K·H), h_n (L·K, B, H)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        backend: str = "auto",
        recurrent_dropout: float = 0.0,
        learnable_init_state: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            backend=backend,
            recurrent_dropout=recurrent_dropout,
            learnable_init_state=learnable_init_state,
            device=device,
            dtype=dtype,
        )
