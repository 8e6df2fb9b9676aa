"""Attention benchmarks: (a) fwd+bwd throughput of a causal self-attention block relative to
``torch.nn.TransformerEncoderLayer``, same run; (b) peak memory and time vs T of exact and
efficient attention forms, one subprocess per case.

    python -m seqlab.bench.attention_speed [--times 256 1024 4096 --repeats 5]
        [--memory-times 512 1024 2048 4096 8192 --memory-batch 2] [--out results.jsonl] [--plot fig.png]

(a) ``seqlab.models.blocks.Block(d_model=256, mixer="attention", num_heads=4, d_ff=1024)`` (sdpa
backend, no positional encoding, projection biases, GELU feed-forward, pre-norm) against
``TransformerEncoderLayer(256, 4, 1024, batch_first=True, norm_first=True, dropout=0,
activation="gelu")`` called with a causal mask and ``is_causal=True``. The weights are copied so
both compute the same function (checked and printed). Cases alternate round-robin; each reports
the median of ``--repeats`` timings after one warm-up.

(b) Each (case, T) runs in a fresh process: the extra peak RSS of one forward + backward
(:mod:`seqlab.bench.memory` says how it is measured), then, in a second fresh process with the
default allocator, the median time of ``--memory-repeats`` steps after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from seqlab.bench.memory import measure, spawn
from seqlab.bench.timing import interleaved_times
from seqlab.layers.self_attention import SelfAttentionConfig, build_self_attention
from seqlab.mixers import build_mixer
from seqlab.models.blocks import Block
from seqlab.models.config import FFNConfig

# (b): name -> what is built; "encoder" kinds are bidirectional, "mixer" ones causal
MEMORY_CASES = {
    "full naive (enc)": ("encoder", {"kind": "full", "backend": "naive"}),
    "full sdpa (enc)": ("encoder", {"kind": "full", "backend": "sdpa"}),
    "local W=128 (enc)": ("encoder", {"kind": "local", "window": 128}),
    "performer M=64 (enc)": ("encoder", {"kind": "performer", "num_features": 64}),
    "linformer P=64 (enc)": ("encoder", {"kind": "linformer", "proj_len": 64}),
    "causal naive": ("attention", {"backend": "naive", "positional": "none"}),
    "causal sdpa": ("attention", {"backend": "sdpa", "positional": "none"}),
    "causal sdpa, padded": ("attention", {"backend": "sdpa", "positional": "none"}),
    "causal window W=128": ("attention", {"backend": "sdpa", "positional": "none", "window": 128}),
    "causal performer M=64": ("performer", {"num_features": 64, "chunk_size": 64}),
}


# ---------------------------------------------------------------------------------------------
# (a) throughput against torch.nn.TransformerEncoderLayer


def _pair(d_model: int, heads: int, d_ff: int) -> tuple[Block, nn.TransformerEncoderLayer]:
    """Our block and torch's layer with the same weights (so the same function)."""
    config = {"num_heads": heads, "backend": "sdpa", "positional": "none", "bias": True}
    ffn = FFNConfig(d_ff, "gelu")
    ours = Block(d_model, "attention", config, ffn, dropout=0.0, norm="layernorm", residual=True)
    ref = nn.TransformerEncoderLayer(
        d_model, heads, d_ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    pairs = [
        (ref.self_attn.in_proj_weight, ours.mixer.qkv.weight),
        (ref.self_attn.in_proj_bias, ours.mixer.qkv.bias),
        (ref.self_attn.out_proj.weight, ours.mixer.out.weight),
        (ref.self_attn.out_proj.bias, ours.mixer.out.bias),
        (ref.linear1.weight, ours.ffn.up.weight),
        (ref.linear1.bias, ours.ffn.up.bias),
        (ref.linear2.weight, ours.ffn.down.weight),
        (ref.linear2.bias, ours.ffn.down.bias),
        (ref.norm1.weight, ours.norm1.weight),
        (ref.norm1.bias, ours.norm1.bias),
        (ref.norm2.weight, ours.norm2.weight),
        (ref.norm2.bias, ours.norm2.bias),
    ]
    with torch.no_grad():
        for theirs, mine in pairs:
            theirs.copy_(mine)
    return ours.train(), ref.train()


MODULE = "seqlab.bench.attention_speed"


def _torch_causal(ref: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
    return ref(x, src_mask=mask, is_causal=True)


def _runs(ours: Block, ref: nn.TransformerEncoderLayer, x: torch.Tensor) -> dict[str, Callable[[], None]]:
    """One fwd+bwd step of each, by name."""

    def run_ours() -> None:
        ours(x)[0].sum().backward()
        ours.zero_grad(set_to_none=True)

    def run_torch() -> None:
        _torch_causal(ref, x).sum().backward()
        ref.zero_grad(set_to_none=True)

    return {"seqlab Block": run_ours, "torch": run_torch}


def throughput(args: argparse.Namespace) -> list[dict]:
    """fwd+bwd tokens/s of ours and torch's layer per T, median of ``repeats`` after a warm-up."""
    torch.manual_seed(0)
    rows = []
    for T in args.times:
        ours, ref = _pair(args.d_model, args.heads, args.d_ff)
        probe = torch.randn(2, 64, args.d_model)
        with torch.no_grad():
            diff = (ours(probe)[0] - _torch_causal(ref, probe)).abs().max().item()
        x = torch.randn(args.batch, T, args.d_model)
        times = interleaved_times(_runs(ours, ref, x), args.repeats)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        tokens = args.batch * T
        rows.append(
            {
                "part": "throughput",
                "T": T,
                "batch": args.batch,
                "ours_tokens_per_s": tokens / med["seqlab Block"],
                "torch_tokens_per_s": tokens / med["torch"],
                "ratio": med["torch"] / med["seqlab Block"],
                "max_abs_diff": diff,
                "threads": torch.get_num_threads(),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# (b) peak memory and time vs T, one subprocess per case


def _build_case(name: str, T: int, d_model: int, heads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    kind, config = MEMORY_CASES[name]
    if kind == "encoder":
        config = {"num_heads": heads, **config, **({"max_len": T} if config["kind"] == "linformer" else {})}
        layer = build_self_attention(d_model, SelfAttentionConfig(**config)).train()
        return layer
    mixer = build_mixer(kind, d_model, {"num_heads": heads, **config}).train()
    if name.endswith("padded"):  # one padded token: the dense (B, 1, T, T) bool mask path
        return lambda x: mixer(x, mask=(torch.arange(x.shape[1]) < x.shape[1] - 1).expand(len(x), -1))[0]
    return lambda x: mixer(x)[0]


def run_child(spec: dict) -> dict:
    """Inside the subprocess: one case at one T, ``spec["mode"]`` = ``memory`` or ``time``."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    layer = _build_case(spec["case"], spec["T"], spec["d_model"], spec["heads"])
    layer(torch.randn(1, 16, spec["d_model"], requires_grad=True)).sum().backward()  # lazy inits
    x = torch.randn(spec["batch"], spec["T"], spec["d_model"], requires_grad=True)
    return measure(layer, x, spec["mode"], spec["repeats"])


def memory(args: argparse.Namespace) -> list[dict]:
    """Per (case, T): a memory process (fixed mmap threshold, one step), a timing process
    (default allocator: the fixed threshold makes every large allocation fault in fresh pages,
    which would inflate times), merged into one row."""
    rows = []
    for name in args.cases:
        for T in args.memory_times:
            spec = {
                "case": name,
                "T": T,
                "batch": args.memory_batch,
                "d_model": args.d_model,
                "heads": args.heads,
                "threads": args.threads,
                "repeats": args.memory_repeats,
            }
            row = {**spec, "part": "memory"}
            row |= spawn(MODULE, spec | {"mode": "memory"}, memory=True, timeout=args.child_timeout)
            if "error" not in row:
                row |= spawn(MODULE, spec | {"mode": "time"}, memory=False, timeout=args.child_timeout)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# reporting


def _print_throughput(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"(a) causal self-attention block fwd+bwd, B={args.batch} D={args.d_model} H={args.heads} "
        f"d_ff={args.d_ff}, threads={torch.get_num_threads()}, median of {args.repeats}"
    )
    print(f"{'T':>6s} {'seqlab tok/s':>13s} {'torch tok/s':>12s} {'ours/torch':>11s} {'max|diff|':>10s}")
    for r in rows:
        print(
            f"{r['T']:6d} {r['ours_tokens_per_s']:13.0f} {r['torch_tokens_per_s']:12.0f} "
            f"{r['ratio']:10.2f}x {r['max_abs_diff']:10.1e}"
        )


def _print_memory(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"(b) one layer fwd+bwd, B={args.memory_batch} D={args.d_model} H={args.heads}: "
        "extra peak RSS (MB) / median time (s)"
    )
    print(f"{'case':24s}" + "".join(f"{T:>16d}" for T in args.memory_times))
    for name in args.cases:
        cells = []
        for T in args.memory_times:
            r = next(r for r in rows if r["case"] == name and r["T"] == T)
            cells.append("failed" if "error" in r else f"{r['peak_extra_mb']:.0f} / {r['time_s']:.2f}")
        print(f"{name:24s}" + "".join(f"{c:>16s}" for c in cells))


def _plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib is not installed: no plot written to {path}")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(r["case"] for r in rows):
        ok = [r for r in rows if r["case"] == name and "error" not in r]
        ts = [r["T"] for r in ok]
        ax_t.plot(ts, [r["time_s"] for r in ok], marker="o", label=name)
        ax_m.plot(ts, [max(r["peak_extra_mb"], 1.0) for r in ok], marker="o", label=name)
    for ax, label in ((ax_t, "fwd+bwd time (s)"), (ax_m, "extra peak RSS (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="T", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, nargs="*", default=[256, 1024, 4096], help="T for (a)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--memory-times", type=int, nargs="*", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--memory-batch", type=int, default=2)
    parser.add_argument("--memory-repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(MEMORY_CASES), choices=list(MEMORY_CASES))
    parser.add_argument("--child-timeout", type=float, default=1200.0)
    parser.add_argument("--out", type=Path, help="write every result as JSON lines here")
    parser.add_argument("--plot", type=Path, help="save a time / memory vs T figure here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    if args.times:
        rows += throughput(args)
        _print_throughput(rows, args)
    if args.memory_times and args.cases:
        mem = memory(args)
        rows += mem
        _print_memory(mem, args)
        if args.plot:
            _plot(mem, args.plot)
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
