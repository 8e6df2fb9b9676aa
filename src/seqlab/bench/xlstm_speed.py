"""xLSTM benchmarks: (a) one block fwd+bwd, ours against the official ``xlstm`` blocks, tokens/s
and peak memory vs T; (b) generation: per-token latency vs context length.

    python -m seqlab.bench.xlstm_speed [--times 256 1024 4096] [--cases ...] [--repeats 3]
        [--contexts 128 4096] [--out results.jsonl]

(a) One pre-norm residual block, D=256, 4 heads, B=8, float32, forward + backward of the sum of
the outputs. Cases: our mLSTM block (chunkwise form) and the official ``mLSTMBlock`` (xlstm
2.0.6: its parallel form with ``context_length=T``, the path ``xLSTMBlockStack`` trains with);
our sLSTM block (fused backend, + gated FFN 1.3·D rounded up to 64) and the official
``sLSTMBlock`` (``backend="vanilla"``, its only CPU path, same FFN). The official blocks need
``pip install --no-deps xlstm packaging`` (``make setup`` does it); without it their cases are
skipped. Each (case, T) runs in fresh processes, one for the median time of ``--repeats`` steps
after a warm-up and one for the extra peak RSS of one step (:mod:`seqlab.bench.memory`); ratios
are ours / official at the same T.

(b) A language model per preset (``xlstm`` = xLSTM[1:1], width 128; ``transformer`` for contrast,
whose KV cache grows with the context): prefill a random context of C tokens, then time
``--decode-steps`` single-token steps; the median per-token latency at each C.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from seqlab.bench.memory import measure, spawn

MODULE = "seqlab.bench.xlstm_speed"
HEADS = 4


def _ffn_width(d_model: int) -> int:
    """The official sLSTM block's FFN: proj_factor 1.3, rounded up to a multiple of 64."""
    return -(-13 * d_model // 640) * 64


def _ours(mixer: str, config: dict, d_ff: int) -> Callable[[int, int], torch.nn.Module]:
    def build(d_model: int, T: int) -> torch.nn.Module:
        from seqlab.models.blocks import Block
        from seqlab.models.config import FFNConfig

        ffn = FFNConfig(d_ff and _ffn_width(d_model), "geglu", bias=False)
        block = Block(d_model, mixer, {"num_heads": HEADS, **config}, ffn, 0.0, "layernorm", True)
        return lambda x: block(x)[0]

    return build


def _official_mlstm(d_model: int, T: int) -> Callable:
    import xlstm

    layer = xlstm.mLSTMLayerConfig(embedding_dim=d_model, num_heads=HEADS, context_length=T)
    return xlstm.mLSTMBlock(xlstm.mLSTMBlockConfig(mlstm=layer, _num_blocks=1, _block_idx=0))


def _official_slstm(d_model: int, T: int) -> Callable:
    import xlstm

    layer = xlstm.sLSTMLayerConfig(embedding_dim=d_model, num_heads=HEADS, backend="vanilla")
    ffn = xlstm.FeedForwardConfig(proj_factor=1.3, act_fn="gelu")
    config = xlstm.sLSTMBlockConfig(slstm=layer, feedforward=ffn, _num_blocks=1, _block_idx=0)
    return xlstm.sLSTMBlock(config)


CASES: dict[str, Callable[[int, int], Callable]] = {
    "seqlab mLSTM chunkwise": _ours("mlstm", {"mode": "chunkwise"}, 0),
    "official mLSTM parallel": _official_mlstm,
    "seqlab sLSTM fused": _ours("slstm", {"backend": "fused"}, 1),
    "official sLSTM vanilla": _official_slstm,
}
PAIRS = {"seqlab mLSTM chunkwise": "official mLSTM parallel", "seqlab sLSTM fused": "official sLSTM vanilla"}


def run_child(spec: dict) -> dict:
    """Inside a fresh process: one case at one T, ``spec["mode"]`` = ``memory`` or ``time``."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    layer = CASES[spec["case"]](spec["d_model"], spec["T"])
    x = torch.randn(spec["batch"], spec["T"], spec["d_model"], requires_grad=True)
    return measure(layer, x, spec["mode"], spec["repeats"])


def blocks(args: argparse.Namespace) -> list[dict]:
    rows = []
    for name in args.cases:
        if name.startswith("official") and not _has_xlstm():
            print(f"skipping {name!r}: the official xlstm package is not installed")
            continue
        for T in args.times:
            spec = {"case": name, "T": T, "batch": args.batch, "d_model": args.d_model}
            spec |= {"threads": args.threads, "repeats": args.repeats}
            row = {**spec, "part": "block"}
            row |= spawn(MODULE, spec | {"mode": "time"}, memory=False, timeout=args.child_timeout)
            if "error" not in row:
                row |= spawn(MODULE, spec | {"mode": "memory"}, memory=True, timeout=args.child_timeout)
                row["tokens_per_s"] = args.batch * T / row["time_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _has_xlstm() -> bool:
    try:
        import xlstm  # noqa: F401
    except ImportError:
        return False
    return True


@torch.no_grad()
def generation(args: argparse.Namespace) -> list[dict]:
    """Per-token decode latency after a prefill of C tokens, per preset."""
    from seqlab.models import MODELS, SequenceModel, parse_model
    from seqlab.spec import IOSpec

    rows = []
    for preset in args.presets:
        torch.manual_seed(0)
        model = SequenceModel(parse_model(MODELS.get(preset)()), IOSpec(output_dim=64, vocab_size=64)).eval()
        _, state = model(torch.randint(0, 64, (1, 16)))  # warm-up: first calls pay one-off costs
        for _ in range(8):
            _, state = model.step(torch.zeros(1, dtype=torch.long), state)
        for C in args.contexts:
            _, state = model(torch.randint(0, 64, (1, C)))
            token = torch.zeros(1, dtype=torch.long)
            times = []
            for _ in range(args.decode_steps):
                start = time.perf_counter()
                logits, state = model.step(token, state)
                times.append(time.perf_counter() - start)
                token = logits.argmax(-1)
            row = {"part": "generation", "preset": preset, "context": C}
            row["ms_per_token"] = 1000 * statistics.median(times[1:])
            row["state_floats"] = model.state_size(C)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _print_blocks(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n(a) one block fwd+bwd, B={args.batch} D={args.d_model} H={HEADS}, threads={args.threads}")
    print(f"{'case':26s}{'T':>6s}{'tok/s':>9s}{'peak MB':>9s}{'vs official':>12s}")
    for r in rows:
        ok = "error" not in r
        cells = f"{r['tokens_per_s']:9.0f}{r['peak_extra_mb']:9.0f}" if ok else f"{r['error'][:18]:>18s}"
        ref = next((o for o in rows if o["case"] == PAIRS.get(r["case"]) and o["T"] == r["T"]), None)
        ratio = (
            f"{r['tokens_per_s'] / ref['tokens_per_s']:11.2f}x" if ok and ref and "error" not in ref else ""
        )
        print(f"{r['case']:26s}{r['T']:6d}{cells}{ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, nargs="*", default=[256, 1024, 4096])
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child-timeout", type=float, default=1800.0)
    parser.add_argument("--presets", nargs="*", default=["xlstm", "transformer"])
    parser.add_argument("--contexts", type=int, nargs="*", default=[128, 4096])
    parser.add_argument("--decode-steps", type=int, default=33)
    parser.add_argument("--out", help="write every result as JSON lines here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    torch.set_num_threads(args.threads)
    rows = blocks(args) if args.times and args.cases else []
    if rows:
        _print_blocks(rows, args)
    if args.contexts and args.presets:
        rows += generation(args)
    if args.out:
        with open(args.out, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
