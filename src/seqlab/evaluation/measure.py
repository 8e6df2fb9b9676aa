"""What the comparison study measures of a model without training it.

Shape legend: B batch · T time (sequence length) · L context length · V vocabulary.

Every figure comes from a child process (``python -m seqlab.evaluation.measure --child SPEC``),
one per model and kind, so that models do not share allocator state and memory is the child's own:

* ``speed`` (as ``seqlab train`` runs a model: ``train.gemm`` and ``train.malloc`` ``auto``, see
  :mod:`seqlab.training.cpu`; all the cores this process has):
  - **training throughput vs T**: tokens/s of one forward + backward (cross-entropy of a
    character LM, V = 64) at each T of ``lengths`` with ``B = batch_tokens // T``: the same
    tokens per step at every T, so a model that computes all positions at once (attention)
    keeps its throughput as T grows while a recurrence, whose T steps run one after another on
    ever fewer rows, loses it — the *parallelism* column is throughput(T_max) / throughput(T_min);
  - **decode latency vs context**: the median seconds of one ``step`` (B = 1) after a prefill
    of L tokens, for each L of ``contexts``: flat for a recurrence (its state has a fixed size),
    growing for attention (a KV cache of L entries is read at every step);
  - **gradient flow**: ``‖∂L/∂u_1‖ / ‖∂L/∂u_T‖`` of the first block on the adding problem at
    T = ``grad_length``, at initialisation, in float64 (:mod:`seqlab.evaluation.gradient_flow`);
  - **parameters and state size**: all parameters, those of the blocks, and the floats of
    state a sequence carries after 1 and after max(contexts) tokens.
* ``memory`` (glibc's malloc on a fixed mmap threshold, see :mod:`seqlab.bench.memory`): the
  extra peak resident memory of one forward + backward at B = 1 for each T of ``lengths``.

Timings interleave nothing across models (the children run one at a time); they are medians
of ``repeats`` calls after a warm-up, and the study reports them as ratios where it can.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

VOCAB = 64


@dataclass(frozen=True)
class MeasureSettings:
    """What to measure: see the module docstring."""

    lengths: tuple[int, ...] = (64, 256, 1024)
    batch_tokens: int = 4096
    contexts: tuple[int, ...] = (128, 1024, 2048)
    decode_tokens: int = 8
    grad_length: int = 128
    repeats: int = 5

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MeasureSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def build_lm(model: str, overrides: list[str], seed: int = 0) -> Any:
    """A freshly initialised character LM (V = 64) of preset ``model`` under ``overrides``."""
    import torch

    from seqlab.models import build_model
    from seqlab.spec import IOSpec
    from seqlab.training.config import resolve_config

    config = resolve_config("charlm", model, None, list(overrides)).model
    torch.manual_seed(seed)
    return build_model(config, IOSpec(output_dim=VOCAB, vocab_size=VOCAB))


def _train_step(lm: Any, B: int, T: int) -> Any:
    """One forward + backward of the LM's cross-entropy on random tokens (B, T)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(T)
    x = torch.randint(0, VOCAB, (B, T), generator=g)
    y = torch.randint(0, VOCAB, (B, T), generator=g)

    def step() -> None:
        logits = lm(x)[0]  # (B, T, V)
        F.cross_entropy(logits.reshape(B * T, VOCAB), y.reshape(-1)).backward()
        lm.zero_grad(set_to_none=True)

    return step


def throughput(lm: Any, s: MeasureSettings) -> dict[str, float]:
    """{T: training tokens/s} at B = batch_tokens // T (median of ``repeats`` steps)."""
    from seqlab.bench.memory import median_time

    out = {}
    for T in s.lengths:
        B = max(1, s.batch_tokens // T)
        seconds = median_time(_train_step(lm, B, T), s.repeats)["time_s"]
        out[str(T)] = B * T / seconds
    return out


def decode_latency(lm: Any, s: MeasureSettings) -> dict[str, float]:
    """{L: median seconds per generated token after a prefill of L tokens} (B = 1)."""
    import torch

    lm.eval()
    out = {}
    with torch.no_grad():
        warm = torch.randint(0, VOCAB, (1, 512), generator=torch.Generator().manual_seed(0))
        lm.step(warm[:, -1], lm(warm)[1])  # see seqlab.bench.harness.warm_up_decoding
        for L in s.contexts:
            prompt = torch.randint(0, VOCAB, (1, L), generator=torch.Generator().manual_seed(L))
            _, state = lm(prompt)  # prefill
            token = prompt[:, -1]
            times = []
            for _ in range(s.decode_tokens + 1):  # the first step warms up
                start = time.perf_counter()
                logits, state = lm.step(token, state)
                times.append(time.perf_counter() - start)
                token = logits.argmax(-1)
            out[str(L)] = statistics.median(times[1:])
    lm.train()
    return out


def gradient_flow(model: str, overrides: list[str], s: MeasureSettings) -> dict[str, Any]:
    """The first block's gradient ratio and curve on the adding problem, at initialisation."""
    import torch

    from seqlab.evaluation.gradient_flow import model_gradient_flow, probe_batch
    from seqlab.models import build_model
    from seqlab.tasks import build_task
    from seqlab.training.config import resolve_config

    task = build_task("adding", {}, seed=0)
    config = resolve_config("adding", model, None, list(overrides)).model
    torch.manual_seed(0)
    net = build_model(config, task.io)
    record = model_gradient_flow(net, task, probe_batch(task, s.grad_length, 8, seed=0))
    return {
        "ratio": record["ratio"],
        "g_first": record["g_first"],
        "g_last": record["g_last"],
        "curve": record["curves"]["blocks.0"],
        "length": s.grad_length,
        "task": "adding",
    }


def measure_speed(model: str, overrides: list[str], s: MeasureSettings) -> dict[str, Any]:
    import torch

    from seqlab.training.cpu import apply_gemm, apply_malloc

    cpu = torch.device("cpu")
    apply_malloc("auto", cpu)
    lm = build_lm(model, overrides)
    apply_gemm(lm, "auto", cpu)
    blocks = sum(p.numel() for n, p in lm.named_parameters() if n.startswith(("blocks.", "norm.")))
    longest = max(s.contexts)
    return {
        "params": lm.num_params(),
        "block_params": blocks,
        "state_floats_1": lm.state_size(1),
        f"state_floats_{longest}": lm.state_size(longest),
        "state_context": longest,
        "tokens_per_s": throughput(lm, s),
        "decode_s_per_token": decode_latency(lm, s),
        "gradient_flow": gradient_flow(model, overrides, s),
        "threads": torch.get_num_threads(),
    }


def measure_memory(model: str, overrides: list[str], s: MeasureSettings) -> dict[str, Any]:
    """{T: extra peak MB of one forward + backward at B = 1}, lengths ascending."""
    from seqlab.bench.memory import peak_extra_memory

    lm = build_lm(model, overrides)
    _train_step(lm, 1, 8)()  # lazy initialisation outside the measurement
    return {
        "peak_mb": {
            str(T): peak_extra_memory(_train_step(lm, 1, T))["peak_extra_mb"] for T in sorted(s.lengths)
        }
    }


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    s = MeasureSettings.from_dict(spec["settings"])
    kind = {"speed": measure_speed, "memory": measure_memory}[spec["kind"]]
    return kind(spec["model"], spec["overrides"], s)


def measure_model(
    model: str, overrides: list[str], s: MeasureSettings, timeout: float = 600.0
) -> dict[str, Any]:
    """Both kinds of measurement of one model, each in its own child process. A failed child
    gives ``{"error": ...}`` under its kind (the study goes on and reports the gap)."""
    from seqlab.bench.memory import spawn

    spec = {"model": model, "overrides": list(overrides), "settings": asdict(s)}
    out: dict[str, Any] = {"model": model, "overrides": list(overrides), "settings": asdict(s)}
    for kind in ("speed", "memory"):
        start = time.perf_counter()
        result = spawn(__name__, spec | {"kind": kind}, memory=kind == "memory", timeout=timeout)
        out[kind] = result | {"wall_s": round(time.perf_counter() - start, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    from seqlab.bench.memory import child_main

    return child_main(run_child, argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
