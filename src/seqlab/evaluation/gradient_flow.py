"""Gradient-flow diagnostics: how much of a loss at the last step reaches each earlier step.

Shape legend: B batch · T time · D model width · H hidden width · NH heads · DH = D / NH.

Backpropagation through time multiplies one Jacobian per step. For the Elman RNN
``h_t = tanh(W_ih u_t + W_hh h_{t−1} + b)`` with the loss at step T only (and one layer), the
error δ_t = ∂L/∂h_t obeys (Bengio et al. 1994; Pascanu et al. 2013)::

    δ_T = ∂L/∂h_T
    δ_t = W_hhᵀ diag(1 − h_{t+1}²) δ_{t+1}               (t < T)
    ‖δ_t‖ ≤ (‖W_hh‖₂ · max|tanh'|)^{T−t} ‖δ_T‖

(in a stack, layers above add their own direct term ∂L/∂y_t to δ_t). Over many steps the norm
of the product of W_hhᵀ factors grows like ρ(W_hh)^{T−t}, ρ the spectral radius; each tanh'
factor ≤ 1 shrinks it further. At the usual U(±1/√H) init ρ ≈ 1/√3 (the circular law), so the
RNN's gradient vanishes exponentially in T − t. The LSTM carries δ along its cell state through
the diagonal forget factor (c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t, ∂c_t/∂c_{t−1} = diag(f_t): the
constant error carousel), the GRU through its update gate z_t, and attention reaches every
step in one hop.

What is measured, for a :class:`~seqlab.models.SequenceModel` on a batch of B sequences of T steps:

* The loss: L = Σ_b ℓ_b, where ℓ_b is the task's own loss at the last step T of sequence b
  (the adding problem: the squared error of the sum read out at step T; a character LM: the
  cross-entropy of the character after step T). Summing over rows (not averaging) makes each
  row's gradient the gradient of its own loss, so the curves do not depend on B.
* The curve of block ℓ: g_ℓ(t) = mean_b ‖∂L/∂u^ℓ_{b,t}‖₂, u^ℓ_t the input of block ℓ's mixer
  at step t (after the block's norm). For a recurrent mixer ∂L/∂u_t = (∂h_t/∂u_t)ᵀ δ_t holds the
  whole BPTT error δ_t (for the RNN: W_ihᵀ diag(1 − h_t²) δ_t), so g_ℓ decays at the rate δ_t
  does. The gradient at the mixer's *output* y_t would not: it carries only the part of δ_t that
  leaves the layer at step t, which is 0 for every t < T in the top block.
* The curve ``input``: mean_b ‖∂L/∂x_{b,t}‖₂ at the embedding output x_t (the residual stream
  entering block 0): how much the loss at T depends on the input at step t through the whole stack.
* ``ratio`` = g_0(1) / g_0(T) for the first block: ≪ 1 means the gradient vanishes over T steps.

The default probe is Hochreiter & Schmidhuber's adding problem (:mod:`seqlab.tasks.adding`): real
inputs whose target, read at the last step only, depends on two steps far back, the setting
the vanishing-gradient argument is about. Every model of one study sees the same batch; models
are measured in float64 (on a copy) so that a gradient of 1e-30 is a measurement, not an underflow.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError
from seqlab.spec import IOSpec
from seqlab.tasks import TASKS, Batch, Task, build_task

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("rnn", "lstm", "gru", "transformer", "slstm", "mlstm")
DEFAULT_TASK = "adding"
# gate blocks of the stacked recurrent matrices, in torch.nn order
_RNN_GATES: dict[str, tuple[str, ...]] = {
    "RNN_TANH": ("",),
    "RNN_RELU": ("",),
    "LSTM": ("input", "forget", "cell", "output"),
    "GRU": ("reset", "update", "new"),
}
_SLSTM_GATES = ("input", "forget", "cell", "output")  # (i, f, z, o) in the sLSTM's R

LossFn = Callable[[Tensor, Batch], Tensor]


# -- the probe: inputs and the loss at the last step ---------------------------------------------


def probe_batch(task: Task, length: int, batch_size: int, seed: int) -> Batch:
    """B unpadded sequences of exactly ``length`` steps from ``task``, scored at the last step.

    The adding task makes sequences of any length; length-generalisation tasks (parity) are asked
    for that length; other tasks' training batches (charlm windows) are cut to it.

    Raises:
        ConfigError: length < 2, batch_size < 1, or a task that cannot give such a batch.
    """
    from seqlab.tasks.adding import AddingTask
    from seqlab.tasks.lengths import LengthGeneralisationTask

    if not isinstance(length, int) or length < 2:
        raise ConfigError(
            f"gradient flow: length must be an integer >= 2 (steps back from the loss), got {length!r}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"gradient flow: batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    if isinstance(task, AddingTask):
        batch = task.make_batch(batch_size, length, generator)
    elif isinstance(task, LengthGeneralisationTask):
        batch = task.make_batch(torch.full((batch_size,), length), generator)
    else:
        batch = task.train_batch(batch_size, generator)
    return _cut(batch, length, _task_name(task))


def _cut(batch: Batch, T: int, name: str) -> Batch:
    """The first T steps of an unpadded, per-step batch whose last step is scored."""
    if batch.source is not None or batch.segments is not None:
        raise ConfigError(
            f"gradient flow: task {name!r} feeds a source sequence or segments; it needs a per-step task "
            f"(one of: {', '.join(_per_step_tasks())})"
        )
    steps = batch.inputs.shape[1]
    if steps < T:
        raise ConfigError(
            f"gradient flow: task {name!r} makes sequences of {steps} steps, fewer than length {T}; "
            f"use a length <= {steps} (or a task option for longer sequences)"
        )
    mask = None if batch.mask is None else batch.mask[:, :T]
    if mask is not None and not bool(mask.all()):
        raise ConfigError(f"gradient flow: task {name!r} gave padded sequences shorter than {T} steps")
    cut = Batch(batch.inputs[:, :T], batch.targets[:, :T], batch.target_mask[:, :T], mask)
    if not bool(cut.target_mask[:, -1].any()):
        raise ConfigError(
            f"gradient flow: task {name!r} scores no target at step {T}, so a loss at the last step is "
            "undefined; use the adding, parity or charlm task"
        )
    return cut


def last_step_loss(task: Task, outputs: Tensor, batch: Batch) -> Tensor:
    """L = Σ_b ℓ_b: the task's loss at the last step only, summed over the rows scored there.

    Args:
        task: the task whose ``loss`` defines ℓ (MSE for adding, cross-entropy for classes).
        outputs: model outputs (B, T, O).
        batch: the batch the outputs are for.

    Returns:
        A scalar tensor.
    """
    scored = batch.target_mask[:, -1]  # (B,)
    target_mask = torch.zeros_like(batch.target_mask)
    target_mask[:, -1] = scored
    mean = task.loss(outputs, dataclasses.replace(batch, target_mask=target_mask))
    return mean * scored.sum()  # the task averages over scored rows; undo it


# -- measurements ---------------------------------------------------------------------------------


def gradient_norms_over_time(model: nn.Module, batch: Batch, loss_fn: LossFn) -> dict[str, Tensor]:
    """Per-step gradient norms of ``loss_fn(outputs, batch)`` at every block's mixer input.

    Zero probes are added (by forward pre-hooks, without touching the model's code) to the input
    of block 0 and to the input of every block's mixer; ∂L/∂probe = ∂L/∂(that input). The model
    runs in eval mode (no dropout) and with cuDNN off (its RNN backward needs train mode).

    Args:
        model: a :class:`~seqlab.models.SequenceModel` (``model.blocks[i].mixer``).
        batch: inputs (and mask); ``batch.target_mask[:, -1]`` selects the rows averaged over.
        loss_fn: ``(outputs (B, T, O), batch) -> scalar``, e.g. ``partial(last_step_loss, task)``.

    Returns:
        ``{"input": (T,), "blocks.0": (T,), ...}``: g(t) = mean over scored rows of ‖∂L/∂u_t‖₂.
    """
    blocks = _blocks(model)
    probes: dict[str, Tensor] = {}
    hooks = [blocks[0].register_forward_pre_hook(_probe_hook(probes, "input"))]
    hooks += [
        b.mixer.register_forward_pre_hook(_probe_hook(probes, f"blocks.{i}")) for i, b in enumerate(blocks)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.backends.cudnn.flags(enabled=False):
            outputs, _ = model(batch.inputs, mask=batch.mask)  # (B, T, O)
            loss = loss_fn(outputs, batch)
            grads = torch.autograd.grad(loss, list(probes.values()))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    rows = batch.target_mask[:, -1].to(outputs.device)  # (B,)
    return {name: g[rows].norm(dim=-1).mean(0).detach().cpu() for name, g in zip(probes, grads)}


def _probe_hook(probes: dict[str, Tensor], name: str) -> Callable:
    """A forward pre-hook replacing the first input x by x + 0 (a leaf that requires grad)."""

    def hook(module: nn.Module, args: tuple) -> tuple:
        x = args[0]  # (B, T, D)
        probe = torch.zeros_like(x, requires_grad=True)
        probes[name] = probe
        return (x + probe, *args[1:])

    return hook


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not all(hasattr(b, "mixer") for b in blocks) or not blocks:
        raise ConfigError(
            f"gradient flow needs a per-step sequence model (arch 'sequence', blocks with mixers), "
            f"got {type(model).__name__}"
        )
    return blocks


def spectral_radius(matrix: Tensor) -> float:
    """ρ(W) = max |λ| over the eigenvalues of a square matrix (computed in float64 on the CPU)."""
    return float(torch.linalg.eigvals(matrix.detach().double().cpu()).abs().max())


def recurrent_spectral_radii(model: nn.Module) -> dict[str, float]:
    """Spectral radius of every square recurrent matrix of ``model``, keyed by parameter name.

    ``seqlab.nn`` RNN / LSTM / GRU layers (inside the rnn, lstm, gru mixers) stack their gates in
    ``weight_hh_l{k}`` (G·H, H); each H×H gate block gets its own key, e.g.
    ``blocks.0.mixer.layer.weight_hh_l0[forget]`` (the Elman RNN's single block has no suffix).
    The sLSTM's block-diagonal R (NH, DH, 4, DH) gives one DH×DH matrix per head and gate, e.g.
    ``blocks.1.mixer.recurrent[head0,forget]``. Mixers without recurrent matrices (attention,
    mLSTM) and projected LSTMs (H×P blocks) are skipped.
    """
    from seqlab.mixers.slstm import SLSTMMixer
    from seqlab.nn.rnn import RNNBase

    radii: dict[str, float] = {}
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, RNNBase):
            gates, H = _RNN_GATES[module.mode], module.hidden_size
            for name, weight in module.named_parameters(recurse=False):
                if name.startswith("weight_hh") and weight.shape[1] == H:
                    for gate, block in zip(gates, weight.view(len(gates), H, H)):
                        radii[dot + name + (f"[{gate}]" if gate else "")] = spectral_radius(block)
        elif isinstance(module, SLSTMMixer):
            for head, per_head in enumerate(module.recurrent):  # (DH, 4, DH)
                for g, gate in enumerate(_SLSTM_GATES):
                    radii[f"{dot}recurrent[head{head},{gate}]"] = spectral_radius(per_head[:, g, :])
    return radii


def model_gradient_flow(
    model: nn.Module, task: Task, batch: Batch, dtype: torch.dtype | None = torch.float64
) -> dict[str, Any]:
    """The JSON-able gradient-flow record of one model on one probe batch.

    Args:
        model: a :class:`~seqlab.models.SequenceModel` built for ``task.io`` (left unchanged:
            a copy is measured when ``dtype`` differs from its parameters').
        task: defines the loss at the last step (:func:`last_step_loss`).
        batch: from :func:`probe_batch`.
        dtype: the precision to measure in (None = the model's own).

    Returns:
        ``{"task", "mixers", "num_params", "curves": {layer: [T floats]}, "g_first", "g_last",
        "ratio", "spectral_radii", "max_spectral_radius"}``; ``ratio`` = g_0(1) / g_0(T) (None if
        g_0(T) = 0), ``max_spectral_radius`` None without recurrent matrices.
    """
    # 1. the model and batch in the measuring precision
    param = next(model.parameters())
    if dtype is not None and param.dtype != dtype:
        model = copy.deepcopy(model).to(dtype)
    batch = _batch_to(batch, param.device, dtype or param.dtype)
    # 2. curves, first block's decay, recurrent matrices
    curves = gradient_norms_over_time(model, batch, partial(last_step_loss, task))
    first = curves["blocks.0"]
    g_first, g_last = float(first[0]), float(first[-1])
    radii = recurrent_spectral_radii(model)
    return {
        "task": _task_name(task),
        "mixers": list(getattr(getattr(model, "config", None), "layer_types", [])),
        "num_params": sum(p.numel() for p in model.parameters()),
        "curves": {name: curve.tolist() for name, curve in curves.items()},
        "g_first": g_first,
        "g_last": g_last,
        "ratio": g_first / g_last if g_last > 0 else None,
        "spectral_radii": radii,
        "max_spectral_radius": max(radii.values(), default=None),
    }


def _batch_to(batch: Batch, device: torch.device, dtype: torch.dtype) -> Batch:
    """The batch on ``device`` with floating tensors (features, regression targets) in ``dtype``."""

    def move(t: Tensor | None) -> Tensor | None:
        if t is None:
            return None
        return t.to(device, dtype) if t.is_floating_point() else t.to(device)

    return Batch(**{k: move(v) for k, v in vars(batch).items()})


# -- the study: several models on the same inputs -------------------------------------------------


def build_preset(name: str, io: IOSpec, seed: int = 0) -> nn.Module:
    """A fresh, default-initialised model from preset ``name`` (``seqlab list models``) for ``io``.

    Initialised under ``torch.manual_seed(seed)`` in a forked RNG (the caller's RNG is untouched).

    Raises:
        UnknownNameError: ``name`` is not a preset (the message lists them).
        ConfigError: the preset is not a per-step sequence model (e.g. seq2seq, bert).
    """
    from seqlab.models import MODELS, ModelConfig, build_model, parse_model
    from seqlab.models.archs import arch_name

    config = parse_model(MODELS.get(name)(), f"model preset {name!r}")
    if not isinstance(config, ModelConfig):
        raise ConfigError(
            f"gradient flow needs a per-step sequence model; preset {name!r} is arch {arch_name(config)!r} "
            f"(choose from: {', '.join(sequence_presets())})"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config, io)


def sequence_presets() -> list[str]:
    """The model presets that build a per-step SequenceModel (the ones a study can compare)."""
    from seqlab.models import MODELS

    return [n for n in MODELS.names() if MODELS.get(n)().get("arch", "sequence") == "sequence"]


def gradient_flow_study(
    models: Sequence[str] | Mapping[str, nn.Module] = DEFAULT_MODELS,
    *,
    task: str | Task = DEFAULT_TASK,
    length: int = 100,
    batch_size: int = 16,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
) -> dict[str, Any]:
    """Gradient flow of several models on the same probe batch of ``task``.

    Args:
        models: preset names (built fresh with :func:`build_preset`, seed ``seed``) or a mapping
            name -> model already built for the task's IOSpec.
        task: a task name (built with ``seed``) or a task object.
        length: T, the steps from the first input to the loss.
        batch_size: B sequences; curves are means over them.
        seed: of the probe batch and of the presets' initialisation.
        dtype: the precision to measure in (None = each model's own).

    Returns:
        ``{"task", "length", "batch_size", "seed", "dtype", "models": {name: record}}`` with the
        records of :func:`model_gradient_flow`; JSON-able.
    """
    task_obj = build_task(task, seed=seed) if isinstance(task, str) else task
    batch = probe_batch(task_obj, length, batch_size, seed)
    if not isinstance(models, Mapping):
        if not models:
            raise ConfigError("gradient flow: no models to compare")
        models = {name: build_preset(name, task_obj.io, seed) for name in models}
    records = {}
    for name, model in models.items():
        log.info("gradient flow: %s", name)
        records[name] = model_gradient_flow(model, task_obj, batch, dtype)
    return {
        "task": _task_name(task_obj),
        "length": length,
        "batch_size": batch_size,
        "seed": seed,
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else "model",
        "models": records,
    }


def _task_name(task: Task) -> str:
    return next((n for n in TASKS.names() if TASKS.get(n) is type(task)), type(task).__name__)


def _per_step_tasks() -> list[str]:
    return [n for n in TASKS.names() if n not in ("seq2seq", "mlm")]


# -- the figure ------------------------------------------------------------------------------------


def plot_gradient_flow(result: dict[str, Any], path: str | Path) -> Path:
    """One PNG: g(t) of every model on a log scale against the time step t = 1..T.

    The first block's curve is a solid line per model; deeper blocks are dashed in the same colour.

    Args:
        result: from :func:`gradient_flow_study` (or the CLI's ``gradient_flow.json``).
        path: the PNG to write (parent folders are created).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg: no display, no pyplot state
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (name, record) in enumerate(result["models"].items()):
        blocks = [k for k in record["curves"] if k.startswith("blocks.")]
        for j, layer in enumerate(blocks):
            curve = [g if g > 0 else float("nan") for g in record["curves"][layer]]  # log scale: no 0
            style = {"lw": 2.0, "label": f"{name} (ratio {_fmt(record['ratio'])})"} if j == 0 else _DEEPER
            ax.plot(range(1, len(curve) + 1), curve, color=f"C{i % 10}", **style)
    ax.plot([], [], color="grey", **_DEEPER | {"label": "deeper blocks (dashed)"})
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss is at the last step T)")
    ax.set_ylabel("mean ‖∂L/∂u_t‖₂ at a block's mixer input")
    tasks = ", ".join(sorted({record["task"] for record in result["models"].values()}))
    ax.set_title(f"Gradient flow: loss at step T={result['length']} only (task: {tasks})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="ratio = g(1) / g(T)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


_DEEPER = {"lw": 1.0, "ls": "--", "alpha": 0.6}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"
