"""Peak memory of one step, measured in a fresh process (shared by the benchmarks).

Inside the child: build the case, run a tiny step (lazy library initialisation), reset the
kernel's RSS high-water mark (``/proc/self/clear_refs``), take the current RSS as the baseline,
run the step once, and report the peak RSS minus the baseline: the extra resident memory of that
step (activations, saved tensors, gradients, workspaces). The peak is the process's own
high-water mark ``VmHWM`` (the figure ``ru_maxrss`` reports), read from ``/proc/self/status``
because ``ru_maxrss`` also keeps the high-water mark of the process image replaced at exec, i.e.
the parent's RSS at fork (recorded too, as ``ru_maxrss_mb``). If the reset is not allowed, the
baseline is the earlier high-water mark. The parent runs memory children with glibc's malloc on a
fixed mmap threshold (:data:`MEMORY_ENV`) so that freed large blocks go back to the kernel and the
peak follows live memory; timing children keep the default allocator (the fixed threshold makes
every large allocation fault in fresh pages, which would inflate times).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def rss_kb(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process, in kB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_extra_memory(step: Callable[[], object]) -> dict:
    """Run ``step`` once and report the extra peak RSS it needed (MB), see the module docstring."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
        reset = True
    except OSError:
        reset = False
    baseline = rss_kb("VmRSS" if reset else "VmHWM")
    step()
    peak = rss_kb("VmHWM")
    return {
        "peak_extra_mb": (peak - baseline) / 1024,
        "baseline_mb": baseline / 1024,
        "hwm_reset": reset,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def median_time(step: Callable[[], object], repeats: int) -> dict:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"time_s": statistics.median(times)}


def measure(layer: Callable, x, mode: str, repeats: int) -> dict:
    """Forward + backward of ``layer(x).sum()``: its median time (``mode="time"``) or peak memory."""

    def step() -> None:
        x.grad = None
        layer(x).sum().backward()

    return median_time(step, repeats) if mode == "time" else peak_extra_memory(step)


def spawn(module: str, spec: dict, *, memory: bool, timeout: float) -> dict:
    """Run ``python -m module --child SPEC`` and parse its last stdout line as JSON.

    A failed child (e.g. killed for memory, or timed out) gives ``{"error": ...}`` so a sweep
    keeps going and the failure is recorded."""
    env = {**os.environ, **MEMORY_ENV} if memory else dict(os.environ)
    cmd = [sys.executable, "-m", module, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}


def child_main(run_child: Callable[[dict], dict], argv: list[str] | None, description: str) -> int:
    """The entry point of a child that :func:`spawn` starts: ``--child SPEC`` (JSON) in, the
    result of ``run_child(spec)`` out as one JSON line on stdout."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--child", required=True, help="JSON spec")
    args = parser.parse_args(argv)
    print(json.dumps(run_child(json.loads(args.child))))
    return 0
