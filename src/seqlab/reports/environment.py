"""The software and hardware a result was produced on, for the report's Environment section."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path
from typing import Any


def environment() -> dict[str, Any]:
    """Versions, machine and time, as plain JSON-ready values.

    Returns:
        ``{"seqlab", "python", "torch", "numpy", "platform", "cpu", "logical_cores",
        "usable_cores", "torch_threads", "cuda", "time_utc"}``; ``cpu`` is None where
        ``/proc/cpuinfo`` cannot be read, ``cuda`` is None without a CUDA device.
    """
    import numpy
    import torch

    from seqlab import __version__

    return {
        "seqlab": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (x86: ``model name``; some ARM kernels:
    ``Model`` or ``Hardware``), else ``platform.processor()``, else None."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or None
