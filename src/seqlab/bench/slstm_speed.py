"""fwd+bwd throughput of seqlab's sLSTM layer (fused, naive) and the official vanilla sLSTMLayer.

    python -m seqlab.bench.slstm_speed [--batch 8 --size 256 --heads 4 --times 256 1024 --repeats 5]

Cases, all with the official layer's structure (conv kernel 4, head-wise gate projections,
block-diagonal R, per-head group norm), sigmoid forget gate, float32, train mode:
``seqlab sLSTM fused`` (hand-written BPTT, the default), ``seqlab sLSTM naive`` (autograd step
loop, the reference) and, when the ``xlstm`` package is installed, ``xlstm sLSTMLayer
(vanilla)`` (its pure-PyTorch CPU backend) with the same weights. Cases are interleaved
round-robin and each reports the median of ``--repeats`` timings, so slow drifts of a shared
machine hit every case alike. Prints tokens/s and every case's speed relative to the official
layer (or to the naive backend without ``xlstm``).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from torch import nn

from seqlab.bench.timing import fwd_bwd, interleaved_times
from seqlab.mixers.slstm import SLSTMMixer

OFFICIAL = "xlstm sLSTMLayer (vanilla)"


def _cases(size: int, heads: int) -> dict[str, nn.Module]:
    fused = SLSTMMixer(size, {"num_heads": heads, "backend": "fused"})
    naive = SLSTMMixer(size, {"num_heads": heads, "backend": "naive"})
    naive.load_state_dict(fused.state_dict())
    cases: dict[str, nn.Module] = {"seqlab sLSTM fused": fused, "seqlab sLSTM naive": naive}
    try:
        from xlstm import sLSTMLayer, sLSTMLayerConfig
    except ImportError:
        return cases
    from seqlab.interop.xlstm_slstm import load_official_slstm_layer

    cfg = sLSTMLayerConfig(
        embedding_dim=size, num_heads=heads, conv1d_kernel_size=4, backend="vanilla", dtype="float32"
    )
    official = sLSTMLayer(cfg)
    load_official_slstm_layer(fused, official)
    naive.load_state_dict(fused.state_dict())
    cases[OFFICIAL] = official
    return cases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--times", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    cases = _cases(args.size, args.heads)
    ref = OFFICIAL if OFFICIAL in cases else "seqlab sLSTM naive"
    print(
        f"fwd+bwd, B={args.batch} D={args.size} heads={args.heads}, threads={torch.get_num_threads()}, "
        f"median of {args.repeats}"
    )
    result: dict[str, dict[str, dict[str, float]]] = {}
    for T in args.times:
        x = torch.randn(args.batch, T, args.size)
        times = interleaved_times({n: fwd_bwd(m.train(), x) for n, m in cases.items()}, args.repeats)
        tokens = args.batch * T
        base = statistics.median(times[ref])
        print(f"\nT={T}\n{'case':30s} {'tokens/s':>10s} {'s/iter':>8s} {'vs ' + ref:>32s}")
        result[str(T)] = {}
        for name, ts in times.items():
            med = statistics.median(ts)
            result[str(T)][name] = {"tokens_per_s": tokens / med, "seconds": med, "speedup": base / med}
            print(f"{name:30s} {tokens / med:10.0f} {med:8.3f} {base / med:31.2f}x")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
