"""The ``seqlab bench`` harness: run cases against their references, write JSONL, plot.

Shape legend: B batch · T time (context for decode) · D model width.

For each selected case (:mod:`seqlab.bench.cases`) and each T:

1. **time** — one child process builds the case's module and its reference, warms each up and
   times them interleaved round-robin (:func:`seqlab.bench.timing.interleaved_times`): the
   median of ``repeats`` calls of each, so the slow drifts of a shared machine hit both alike
   and their ratio is meaningful even when absolute times are not;
2. **memory** — on CPU, one more child per side (module, reference) runs one call under
   glibc's fixed mmap threshold and reports its extra peak RSS
   (:func:`seqlab.bench.memory.peak_extra_memory`); on CUDA the timing child reads the
   allocator's peak (``torch.cuda.max_memory_allocated``) around one call of each side;
3. **MFU** — model FLOPs per token (:mod:`seqlab.bench.flops`) × tokens/s over the machine's
   matmul peak in the case's dtype (:mod:`seqlab.bench.peak`: the fastest GEMM path of the
   build); reported for fwd, fwd+bwd and prefill, not for
   decode (latency-bound by design). A load that comes and goes would make that comparison
   unfair, so the largest peak matmul is also timed in the same interleaved rounds as every
   case; the peak is the fastest of all those and the sweep's own (:func:`finalise_peaks`), and
   ``load_factor`` = a case's yardstick ÷ the peak flags the records a load slowed down.

A child that fails or runs past ``timeout`` yields a record with its ``error``; the sweep goes on.
After every record the JSONL file is rewritten atomically, so a killed sweep leaves a valid file.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seqlab.bench.cases import CASES, VOCAB, Case, Shape, autocast
from seqlab.bench.flops import flops_per_token
from seqlab.bench.memory import child_main, peak_extra_memory, spawn
from seqlab.bench.peak import gemm, matmul_flops, matmul_peak, mfu
from seqlab.bench.timing import interleaved_times
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text
from seqlab.training.cpu import apply_gemm, apply_malloc

MODULE = "seqlab.bench.harness"


@dataclass(frozen=True)
class Settings:
    """How to measure: timed calls per side, device, default dtype, threads, memory children,
        per-child timeout (s), single-token steps per timed decode call, optional overrides of every
        case's B, T and D, matmul sizes for the peak; ``gemm``: the GEMM library of the case's own
        module (``torch``, or ``auto`` / ``onednn`` as ``train.gemm``; references keep theirs),
        ``malloc``: glibc's allocator in the children, both sides (``system``, or ``keep`` as
        ``train.malloc``; see :mod:`seqlab.training.cpu`); ``reference`` False: the cases alone (e.g.
    at lengths where a quadratic reference does not fit in memory)."""

    repeats: int = 5
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 0
    memory: bool = True
    timeout: float = 600.0
    decode_steps: int = 8
    batch: int | None = None
    times: tuple[int, ...] | None = None
    d_model: int | None = None
    peak_sizes: tuple[int, ...] = (512, 1024, 2048)
    gemm: str = "torch"
    malloc: str = "system"
    reference: bool = True


# -- one call of a module, by kind -----------------------------------------------------------------


def make_run(module: nn.Module, kind: str, s: Shape, dtype: str, device: str, tokens: bool, steps: int):
    """``(run, tokens per call)``: one ``kind`` call of ``module`` on seeded random inputs."""
    g = torch.Generator().manual_seed(s.T)
    shape = (s.B, s.T) if tokens else (s.B, s.T, s.D)
    x = (torch.randint(0, VOCAB, shape, generator=g) if tokens else torch.randn(shape, generator=g)).to(
        device
    )
    target = torch.randint(0, VOCAB, (s.B * s.T,), generator=g).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    module.train(kind == "fwd+bwd")

    def train() -> None:
        with autocast(device, dtype):
            y = module(x)  # (B, T, D) or logits (B, T, V)
        loss = F.cross_entropy(y.flatten(0, 1).float(), target) if tokens else y.float().sum()
        loss.backward()
        module.zero_grad(set_to_none=True)
        sync()

    @torch.no_grad()
    def forward() -> None:
        with autocast(device, dtype):
            module(x)
        sync()

    if kind == "fwd+bwd":
        return train, s.B * s.T
    if kind in ("fwd", "prefill"):
        return forward, s.B * s.T
    with torch.no_grad(), autocast(device, dtype):
        warm_up_decoding(module, s.B, device)
        state = module.prefill(x)  # the context: T tokens
    token = x[:, -1]

    @torch.no_grad()
    def decode() -> None:
        with autocast(device, dtype):
            for _ in range(steps):  # every step from the same context of T tokens
                module.step(token, state)
        sync()

    return decode, s.B * steps


WARM_UP_CONTEXT = 512


def warm_up_decoding(module: nn.Module, B: int, device: str) -> None:
    """A throwaway prefill of :data:`WARM_UP_CONTEXT` tokens and one step. Measured with torch
    2.13 on CPU: an LSTM LM's single-token steps ran ~4x slower (BENCHMARKS.md, decode latency) until the
    process has once run a sequence of a few hundred tokens, whatever the context being decoded
    — a one-off kernel-selection effect, not a cost of the context, so every decode child pays
    it before timing."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (B, WARM_UP_CONTEXT), generator=g).to(device)
    module.step(x[:, -1], module.prefill(x))


# -- the child process ----------------------------------------------------------------------------


def _cuda_peak_mb(run: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def run_child(spec: dict) -> dict:
    """Inside a fresh process: ``spec["mode"]`` ``time`` (both sides, interleaved) or ``memory``
    (one side, ``spec["side"]``)."""
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    # memory: always glibc as it is (kept memory would hide a step's peak behind the warm-up's)
    apply_malloc(spec["malloc"] if spec["mode"] == "time" else "system", device)
    torch.manual_seed(0)
    case = CASES.get(spec["case"])
    s = Shape(spec["B"], spec["T"], spec["D"])
    built = case.build(s)
    precision = "bf16" if spec["dtype"] == "bfloat16" else "fp32"
    apply_gemm(built.module, spec["gemm"], device, precision)
    sides = {"module": (built.module, spec["dtype"])}
    if built.reference is not None and spec["reference"]:
        sides["reference"] = (built.reference, spec["reference_dtype"])
    sides = {k: (m.to(spec["device"]), dt) for k, (m, dt) in sides.items()}
    runs = {
        k: make_run(m, case.kind, s, dt, spec["device"], case.tokens, spec["decode_steps"])[0]
        for k, (m, dt) in sides.items()
    }
    if spec["mode"] == "memory":
        runs[spec["side"]]()  # lazy initialisation outside the measurement
        return peak_extra_memory(runs[spec["side"]])
    if case.kind != "decode":  # the yardstick of MFU, timed in the same rounds as the case
        for dt in {dt for _, dt in sides.values()}:
            runs[f"matmul:{dt}"] = gemm(spec["peak_size"], dt, spec["device"], spec["peak_backend"][dt])
    for run in runs.values():  # a second warm-up (interleaved_times does one more)
        run()
    times = interleaved_times(runs, spec["repeats"])
    n = spec["peak_size"]
    matmul = {
        k[7:]: matmul_flops(n) / statistics.median(v) / 1e9
        for k, v in times.items()
        if k.startswith("matmul:")
    }
    times = {k: v for k, v in times.items() if not k.startswith("matmul:")}
    module = built.module
    out = {
        "time_s": {k: statistics.median(v) for k, v in times.items()},
        "flops_per_token": flops_per_token(module, s.T, case.kind),
        "params": sum(p.numel() for p in module.parameters()),
        "note": built.note,
        "reference_present": built.reference is not None,
        "matmul_gflops": matmul,
    }
    if spec["device"].startswith("cuda"):
        out["peak_mb"] = {k: _cuda_peak_mb(run) for k, run in runs.items()}
    return out


# -- the parent: sweep, records -------------------------------------------------------------------


LOADED = 0.8  # a case whose yardstick ran below this share of the peak: the record is flagged


def finalise_peaks(records: list[dict], peaks: dict[str, dict]) -> dict[str, dict]:
    """The peak of each dtype = the fastest of the sweep's own measurement and every yardstick
    timed in the cases' rounds (noise only ever slows a GEMM down, so the maximum is the best
    estimate of what the machine can do); then every record's MFU against it, and its
    ``load_factor`` (its yardstick ÷ the peak), flagged below :data:`LOADED`."""
    final = {}
    for dt, p in peaks.items():
        seen = [r["yardstick_gflops"][dt] for r in records if dt in r.get("yardstick_gflops", {})]
        final[dt] = p | {"gflops": max([p["gflops"], *seen]), "sweep_gflops": p["gflops"]}
    for r in records:
        if "error" in r:
            continue
        for side, dt in (("", r["dtype"]), ("reference_", r["reference_dtype"])):
            if f"{side}mfu" in r:
                r[f"{side}mfu"] = mfu(r["flops_per_token"], r[f"{side}tokens_per_s"], final[dt]["gflops"])
        r["peak_gflops"] = final[r["dtype"]]["gflops"]
        load = {dt: g / final[dt]["gflops"] for dt, g in r.get("yardstick_gflops", {}).items()}
        if load:
            r["load_factor"] = load
            if min(load.values()) < LOADED and "[machine loaded" not in (r["note"] or ""):
                r["note"] = ((r["note"] or "") + " [machine loaded during this case]").strip()
    return final


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"device: expected cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda: CUDA is not available here (torch.cuda.is_available() is False)")


def _dtypes(case: Case, settings: Settings) -> tuple[str, str]:
    dtype = case.dtype or settings.dtype
    return dtype, case.reference_dtype or dtype


def measure_peaks(names: list[str], settings: Settings) -> dict[str, dict]:
    """The matmul peak for every dtype the selected cases run in."""
    needed = sorted({dt for n in names for dt in _dtypes(CASES.get(n), settings)})
    return {dt: matmul_peak(dt, settings.peak_sizes, settings.repeats, settings.device) for dt in needed}


def measure_point(name: str, T: int, settings: Settings, peaks: dict[str, dict]) -> dict:
    """One record: the case ``name`` at sequence length (or context) T, see the module docstring."""
    case = CASES.get(name)
    dtype, ref_dtype = _dtypes(case, settings)
    B, D = settings.batch or case.B, settings.d_model or case.D
    spec = {"case": name, "B": B, "T": T, "D": D, "dtype": dtype, "reference_dtype": ref_dtype}
    spec |= {"device": settings.device, "threads": settings.threads, "repeats": settings.repeats}
    spec |= {"decode_steps": settings.decode_steps, "peak_size": max(settings.peak_sizes)}
    spec |= {"gemm": settings.gemm, "malloc": settings.malloc, "reference": settings.reference}
    spec |= {"peak_backend": {dt: p.get("best_backend", "mm") for dt, p in peaks.items()}}
    record = {"case": name, "family": case.family, "kind": case.kind, "dtype": dtype, "B": B, "T": T, "D": D}
    reference = (case.reference_name or None) if settings.reference else None
    record |= {"reference": reference, "reference_dtype": ref_dtype}
    record |= {"device": settings.device, "threads": settings.threads, "torch": torch.__version__}
    record |= {"python": platform.python_version(), "repeats": settings.repeats}
    record |= {"gemm": settings.gemm, "malloc": settings.malloc}
    got = spawn(MODULE, spec | {"mode": "time"}, memory=False, timeout=settings.timeout)
    if "error" in got:
        return record | {"error": got["error"]}
    tokens = B * (settings.decode_steps if case.kind == "decode" else T)
    times, fpt = got["time_s"], got["flops_per_token"]
    record |= {"params": got["params"], "note": got["note"] or None, "flops_per_token": fpt}
    record["peak_gflops"] = peaks[dtype]["gflops"]  # until finalise_peaks has seen every case
    record["yardstick_gflops"] = got.get("matmul_gflops") or {}
    for side, prefix in (("module", ""), ("reference", "reference_")):
        if side not in times:
            continue
        tps = tokens / times[side]
        record[f"{prefix}tokens_per_s"] = tps
        record[f"{prefix}time_s"] = times[side]
        if case.kind == "decode":
            record[f"{prefix}ms_per_token"] = 1000 * times[side] / settings.decode_steps
        else:
            side_dtype = dtype if side == "module" else ref_dtype
            peak = peaks[side_dtype]["gflops"]
            record[f"{prefix}mfu"] = mfu(fpt, tps, peak)
        record[f"{prefix}peak_mb"] = (got.get("peak_mb") or {}).get(side)
        if settings.memory and not settings.device.startswith("cuda"):
            mem = spawn(
                MODULE, spec | {"mode": "memory", "side": side}, memory=True, timeout=settings.timeout
            )
            record[f"{prefix}peak_mb"] = mem.get("peak_extra_mb")
            if "error" in mem:
                record[f"{prefix}memory_error"] = mem["error"]
    record["memory_method"] = (
        "cuda allocator peak" if settings.device.startswith("cuda") else "child peak RSS"
    )
    if "reference_tokens_per_s" in record:
        record["ratio"] = record["tokens_per_s"] / record["reference_tokens_per_s"]
        mine, theirs = record.get("peak_mb"), record.get("reference_peak_mb")
        record["memory_ratio"] = mine / theirs if mine is not None and theirs and theirs > 0 else None
    return record


def select(names: list[str] | None) -> list[str]:
    """The case names to run (all when None); an unknown name lists the choices."""
    chosen = list(names) if names else CASES.names()
    for name in chosen:
        CASES.get(name)  # raises UnknownNameError listing the choices
    return chosen


def run_sweep(
    names: list[str] | None,
    settings: Settings,
    out_dir: Path | None = None,
    on_record: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Every selected case at each of its T values (or ``settings.times``); one record each.
    With ``out_dir``: ``bench.jsonl`` (rewritten atomically after each record), ``peak.json``,
    ``throughput.png`` and ``memory.png``."""
    names = select(names)
    check_device(settings.device)
    if settings.threads <= 0:
        settings = Settings(**(asdict(settings) | {"threads": torch.get_num_threads()}))
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)  # the peak with the children's threads
    try:
        peaks = measure_peaks(names, settings)
    finally:
        torch.set_num_threads(threads)
    if out_dir is not None:
        atomic_write_text(Path(out_dir) / "peak.json", json.dumps(peaks, indent=1) + "\n")
    records: list[dict] = []
    for name in names:
        for T in settings.times or CASES.get(name).T:
            records.append(measure_point(name, T, settings, peaks))
            if out_dir is not None:
                write_jsonl(Path(out_dir) / "bench.jsonl", records)
            if on_record is not None:
                on_record(records[-1])
    peaks = finalise_peaks(records, peaks)
    if out_dir is not None:
        write_jsonl(Path(out_dir) / "bench.jsonl", records)
        atomic_write_text(Path(out_dir) / "peak.json", json.dumps(peaks, indent=1) + "\n")
        from seqlab.bench.report import plot_memory, plot_throughput

        plot_throughput(records, Path(out_dir) / "throughput.png")
        plot_memory(records, Path(out_dir) / "memory.png")
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    """All records as JSON lines, written atomically (a reader never sees a partial file)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def main(argv: list[str] | None = None) -> int:
    """The child-process entry point: ``python -m seqlab.bench.harness --child SPEC``."""
    return child_main(run_child, argv, "seqlab bench child process (use `seqlab bench`)")


if __name__ == "__main__":
    sys.exit(main())
