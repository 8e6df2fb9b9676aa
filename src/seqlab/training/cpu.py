"""Two process-level CPU choices the trainer makes once: which GEMM library runs the model's
``nn.Linear`` layers (``train.gemm``) and whether glibc keeps freed memory (``train.malloc``).

``train.gemm``: ``torch`` (``F.linear``: MKL for float32 on CPU), ``onednn``
(:func:`seqlab.layers.use_onednn_linear`: the same math, forward and both gradients in oneDNN) or
``auto`` — oneDNN on AMD CPUs, where MKL's float32 GEMMs run at about half of oneDNN's speed
(``seqlab bench`` writes both peaks in ``peak.json``), for float32 training on the CPU without
``train.compile``; torch elsewhere. Results differ by float rounding only.

``train.malloc``: ``system`` (glibc as configured) or ``keep`` / ``auto`` (on Linux with glibc
and a CPU device): big blocks come from the heap instead of fresh ``mmap`` calls and freed memory
stays with the process (``mallopt``: ``M_MMAP_MAX`` 0, ``M_TRIM_THRESHOLD`` maximal). glibc maps
every block above 32 MB afresh and the kernel zero-fills each page on first touch, so a model
whose activations pass that size (long sequences) spends much of a step in page faults; kept
memory removes them (an mLSTM block at B=8, T=8,192 trains 2.7x faster: BENCHMARKS.md, ``seqlab
bench --cases mlstm-block --malloc keep``) at the price of a resident size that stays at its
peak, or above it when the heap fragments — the process never hands memory back.
It is process-wide and cannot be undone for blocks already taken; jemalloc or tcmalloc via
``LD_PRELOAD`` are the other usual cure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform
from pathlib import Path

import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.layers import use_onednn_linear
from seqlab.ops.gemm import onednn

log = logging.getLogger(__name__)

GEMMS = ("auto", "torch", "onednn")
MALLOCS = ("auto", "system", "keep")
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)


@functools.cache
def cpu_vendor() -> str:
    """``AuthenticAMD``, ``GenuineIntel``, … from /proc/cpuinfo; '' where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def resolve_gemm(name: str, device: torch.device, precision: str = "fp32", compiled: bool = False) -> str:
    """``torch`` or ``onednn`` for the setting ``name`` (see the module docstring)."""
    if name not in GEMMS:
        raise ConfigError(f"train.gemm: unknown {name!r}; choose from: {', '.join(GEMMS)}")
    usable = device.type == "cpu" and onednn(torch.empty(0))
    if name == "onednn" and not usable:
        raise ConfigError("train.gemm: onednn needs a CPU device and a torch build with oneDNN")
    if name == "auto":
        fast = usable and precision == "fp32" and not compiled and cpu_vendor() == "AuthenticAMD"
        return "onednn" if fast else "torch"
    return name


def apply_gemm(model: nn.Module, name: str, device: torch.device, precision: str = "fp32",
               compiled: bool = False) -> str:  # fmt: skip
    """Move ``model``'s linear layers to the GEMM library ``name`` resolves to; returns it."""
    choice = resolve_gemm(name, device, precision, compiled)
    if choice == "onednn":
        use_onednn_linear(model)
    return choice


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """glibc: no ``mmap`` for big blocks, never trim the heap; False where not glibc."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not ok:
        log.warning("mallopt refused the settings; glibc's allocator left as it was")
    return ok


def apply_malloc(name: str, device: torch.device) -> str:
    """Apply ``train.malloc``; returns what is in effect (``keep`` or ``system``)."""
    if name not in MALLOCS:
        raise ConfigError(f"train.malloc: unknown {name!r}; choose from: {', '.join(MALLOCS)}")
    if name == "system" or (name == "auto" and device.type != "cpu"):
        return "system"
    if keep_freed_memory():
        return "keep"
    if name == "keep":
        log.warning("train.malloc=keep: not a glibc system; the allocator is left as it is")
    return "system"
