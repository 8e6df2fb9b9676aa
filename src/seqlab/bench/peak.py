"""The machine's matmul peak: the yardstick of model-FLOPs utilisation (MFU).

A square matmul ``(n, n) @ (n, n)`` costs ``2·n³`` floating-point operations (n³ multiply-adds).
:func:`matmul_peak` times it at a few sizes (median of ``repeats`` calls after a warm-up) and
reports the best rate, in GFLOP/s: on a CPU that is what the BLAS (oneDNN / MKL / OpenBLAS)
reaches with this process's threads, a practical ceiling that a model's large matmuls can
approach but not beat. Then

    MFU = (model FLOPs per token · tokens per second) / peak FLOPs per second

where the model FLOPs are the analytic counts of :mod:`seqlab.bench.cases` (not what a given
kernel happens to execute), as in PaLM (Chowdhery et al. 2022) and nanoGPT.

float32 multiplies float32 tensors; bfloat16 multiplies bfloat16 tensors directly (on CPUs with
AVX512-BF16 / AMX this is faster than float32; without them it is emulated and slower). Every
GEMM path of the build is tried (``torch.mm`` and, on CPU, oneDNN on prepacked tensors) and the
fastest counts: on the AMD EPYC of BENCHMARKS.md, ``torch.mm`` (MKL) reaches ~190 GFLOP/s with 2
threads and oneDNN ~420 — a peak from ``torch.mm`` alone would put torch.nn.LSTM above 100 % MFU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from seqlab.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_flops(n: int) -> int:
    """FLOPs of one (n, n) @ (n, n) matmul: 2·n³."""
    return 2 * n**3


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gemm_backends(device: str) -> list[str]:
    """The GEMM paths to try: ``mm`` (torch.mm: MKL / OpenBLAS on CPU, cuBLAS on CUDA) and, on
    a CPU build with oneDNN, ``onednn`` (a oneDNN matmul on prepacked tensors — what
    ``torch.nn.LSTM``'s kernel uses; on AMD CPUs MKL's generic path can be 2x slower)."""
    if device.startswith("cuda") or not torch.backends.mkldnn.is_available():
        return ["mm"]
    return ["mm", "onednn"]


def gemm(n: int, dtype: str, device: str = "cpu", backend: str = "mm") -> Callable[[], None]:
    """One (n, n) @ (n, n) product in ``dtype`` by ``backend`` (see :func:`gemm_backends`)."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device=device, dtype=DTYPES[dtype]) for _ in range(2))
    if backend == "onednn":
        a, b = a.to_mkldnn(), b.to_mkldnn()  # oneDNN's blocked layout, packed once
        return lambda: torch._C._nn.mkldnn_linear(a, b)  # a @ bᵀ: the same 2·n³ FLOPs
    if backend != "mm":
        raise ConfigError(
            f"GEMM backend: expected one of {', '.join(gemm_backends(device))}, got {backend!r}"
        )
    out = torch.empty(n, n, device=device, dtype=DTYPES[dtype])

    def run() -> None:
        torch.mm(a, b, out=out)
        _synchronize(device)

    return run


def matmul_peak(
    dtype: str = "float32",
    sizes: tuple[int, ...] = (512, 1024, 2048),
    repeats: int = 5,
    device: str = "cpu",
) -> dict:
    """Median GFLOP/s of square ``dtype`` matmuls at each size and GEMM backend; the best is the peak.

    Args:
        dtype: ``float32`` or ``bfloat16``.
        sizes: matrix sizes n to try.
        repeats: timed calls per size, after one warm-up call.
        device: ``cpu`` or ``cuda``.

    Returns:
        ``{"dtype", "device", "threads", "gflops" (the best), "best_size", "best_backend",
        "by_size": {n: best GFLOP/s}, "by_backend": {backend: {n: GFLOP/s}}}``.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    if not sizes or min(sizes) < 1 or repeats < 1:
        raise ConfigError(f"matmul peak: need sizes >= 1 and repeats >= 1, got {sizes}, {repeats}")
    by_backend: dict[str, dict[int, float]] = {}
    for backend in gemm_backends(device):
        by_backend[backend] = {}
        for n in sizes:
            try:
                run = gemm(n, dtype, device, backend)
                run()  # warm-up: thread pool, packing buffers, kernel selection
            except RuntimeError:  # e.g. no oneDNN kernel for this dtype on this CPU
                continue
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            by_backend[backend][n] = matmul_flops(n) / statistics.median(times) / 1e9
    best_backend, best = max(
        ((b, n) for b, rates in by_backend.items() for n in rates), key=lambda bn: by_backend[bn[0]][bn[1]]
    )
    return {
        "dtype": dtype,
        "device": device,
        "threads": torch.get_num_threads(),
        "gflops": by_backend[best_backend][best],
        "best_size": best,
        "best_backend": best_backend,
        "by_size": {n: max(r.get(n, 0.0) for r in by_backend.values()) for n in sizes},
        "by_backend": by_backend,
    }


def mfu(flops_per_token: float, tokens_per_s: float, peak_gflops: float) -> float:
    """Model-FLOPs utilisation: achieved FLOP/s over the peak FLOP/s (a fraction, 0..1-ish)."""
    return flops_per_token * tokens_per_s / (peak_gflops * 1e9)
