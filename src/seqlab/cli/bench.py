"""``seqlab bench``: throughput, memory and MFU of benchmark cases against their references.

    $ seqlab bench --list
    $ seqlab bench --cases lstm-torch gru rnn --out runs/bench
    $ seqlab bench --cases model-lstm model-transformer --times 512 --batch 16
    $ seqlab bench --cases decode-lstm decode-transformer --times 128 1024 8192
    $ seqlab bench --cases bf16-lstm bf16-attention --device cuda

Prints a table (ratio = case tokens/s ÷ reference tokens/s; MFU against the measured matmul
peak) and writes ``OUT/bench.jsonl``, ``OUT/peak.json``, ``OUT/throughput.png`` and
``OUT/memory.png``. See :mod:`seqlab.bench.harness` for how each figure is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "bench",
        parents=[common],
        help="benchmark cases against reference implementations: tokens/s, memory, MFU",
        description="Time each case and its reference interleaved in one child process (median of "
        "--repeats after warm-up), measure each one's extra peak memory in its own child process, "
        "report ratios and model-FLOPs utilisation against the machine's measured matmul peak.",
    )
    p.add_argument("--cases", nargs="+", metavar="NAME", help="cases to run (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--times", type=int, nargs="+", metavar="T", help="sequence lengths / decode contexts")
    p.add_argument("--batch", type=int, help="batch size B (default: each case's)")
    p.add_argument("--d-model", type=int, help="model width D (default: each case's)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="float32, or bfloat16 autocast (cases named bf16-* fix their own dtypes)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed calls per side, after warm-up")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads in the children (0: torch's default)"
    )
    p.add_argument(
        "--gemm",
        default="torch",
        choices=("torch", "auto", "onednn"),
        help="GEMM library of each case's own module (as train.gemm; references keep F.linear)",
    )
    p.add_argument(
        "--malloc",
        default="system",
        choices=("system", "keep"),
        help="glibc allocator in the children, both sides (keep: as train.malloc=keep)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the memory child processes")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="time the cases alone (e.g. where a reference runs out of memory)",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per child process")
    p.add_argument("--decode-steps", type=int, default=8, help="single-token steps per timed decode call")
    p.add_argument(
        "--peak-sizes", type=int, nargs="+", default=[512, 1024, 2048], help="matmul sizes for the peak"
    )
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output directory")
    p.set_defaults(func=cmd_bench)


def _positive(name: str, value: int | float | None) -> None:
    from seqlab.errors import ConfigError

    if value is not None and value <= 0:
        raise ConfigError(f"--{name}: expected a positive number, got {value}")


def cmd_bench(args: argparse.Namespace) -> int:
    from seqlab.bench.cases import case_names, describe
    from seqlab.bench.harness import Settings, check_device, run_sweep, select
    from seqlab.bench.report import format_table

    if args.list:
        names = case_names()
        width = max(map(len, names))
        for name in names:
            print(f"{name:{width}s}  {describe(name)}")
        return 0
    names = select(args.cases)
    check_device(args.device)
    if args.gemm == "onednn":
        import torch

        from seqlab.training.cpu import resolve_gemm

        resolve_gemm("onednn", torch.device(args.device))  # a clear error before any child runs
    for name in ("batch", "d_model", "repeats", "timeout", "decode_steps"):
        _positive(name.replace("_", "-"), getattr(args, name))
    for name in ("times", "peak_sizes"):
        for value in getattr(args, name) or []:
            _positive(name.replace("_", "-"), value)
    settings = Settings(
        repeats=args.repeats,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        memory=not args.no_memory,
        timeout=args.timeout,
        decode_steps=args.decode_steps,
        batch=args.batch,
        times=tuple(args.times) if args.times else None,
        d_model=args.d_model,
        peak_sizes=tuple(args.peak_sizes),
        gemm=args.gemm,
        malloc=args.malloc,
        reference=not args.no_reference,
    )

    def progress(record: dict) -> None:
        status = record.get("error") or f"{record.get('tokens_per_s', 0):.0f} tok/s"
        print(f"  {record['case']} T={record['T']}: {status}", file=sys.stderr, flush=True)

    records = run_sweep(names, settings, args.out, on_record=progress)

    peaks = json.loads((args.out / "peak.json").read_text())
    for dtype, peak in peaks.items():
        print(
            f"matmul peak {dtype}: {peak['gflops']:.1f} GFLOP/s ({peak.get('best_backend', 'mm')}, "
            f"{peak['threads']} threads; the sweep's own measurement {peak['sweep_gflops']:.1f})"
        )
    print(format_table(records))
    print(f"wrote {args.out / 'bench.jsonl'}, {args.out / 'throughput.png'}, {args.out / 'memory.png'}")
    return 1 if any("error" in r for r in records) else 0
