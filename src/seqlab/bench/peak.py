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
AVX512-BF16 / AMX this is faster than float32; without them it is emulated and slower).
"""

from __future__ import annotations

import statistics
import time

import torch

from seqlab.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def matmul_flops(n: int) -> int:
    """FLOPs of one (n, n) @ (n, n) matmul: 2·n³."""
    return 2 * n**3


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(
    dtype: str = "float32",
    sizes: tuple[int, ...] = (512, 1024, 2048),
    repeats: int = 5,
    device: str = "cpu",
) -> dict:
    """Median GFLOP/s of square ``dtype`` matmuls at each size; the best is the peak.

    Args:
        dtype: ``float32`` or ``bfloat16``.
        sizes: matrix sizes n to try.
        repeats: timed calls per size, after one warm-up call.
        device: ``cpu`` or ``cuda``.

    Returns:
        ``{"dtype", "device", "threads", "gflops" (the best), "best_size", "by_size": {n: GFLOP/s}}``.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    if not sizes or min(sizes) < 1 or repeats < 1:
        raise ConfigError(f"matmul peak: need sizes >= 1 and repeats >= 1, got {sizes}, {repeats}")
    g = torch.Generator().manual_seed(0)
    by_size: dict[int, float] = {}
    for n in sizes:
        a = torch.randn(n, n, generator=g).to(device=device, dtype=DTYPES[dtype])
        b = torch.randn(n, n, generator=g).to(device=device, dtype=DTYPES[dtype])
        out = torch.empty(n, n, device=device, dtype=DTYPES[dtype])
        torch.mm(a, b, out=out)  # warm-up: thread pool, packing buffers, kernel selection
        _synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            _synchronize(device)
            times.append(time.perf_counter() - start)
        by_size[n] = matmul_flops(n) / statistics.median(times) / 1e9
    best = max(by_size, key=by_size.get)
    return {
        "dtype": dtype,
        "device": device,
        "threads": torch.get_num_threads(),
        "gflops": by_size[best],
        "best_size": best,
        "by_size": by_size,
    }


def mfu(flops_per_token: float, tokens_per_s: float, peak_gflops: float) -> float:
    """Model-FLOPs utilisation: achieved FLOP/s over the peak FLOP/s (a fraction, 0..1-ish)."""
    return flops_per_token * tokens_per_s / (peak_gflops * 1e9)
