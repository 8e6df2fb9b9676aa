"""fwd+bwd throughput of seqlab's recurrent layers relative to ``torch.nn.LSTM``, same run.

    python -m seqlab.bench.rnn_speed [--batch 32 --time 256 --size 256 --repeats 7]

Cases (all with D = H): ``torch.nn.LSTM`` (the reference, fused C++ kernel), the obvious
per-step Python loop over ``nn.LSTMCell`` (the baseline to beat), ``seqlab.nn.LSTM`` with the
naive, fused (hand-written BPTT), compiled (time loop and BPTT in C++) and torch backends, and
the layer-norm LSTM and the recurrent-dropout LSTM (train mode) with the naive, fused and
compiled backends. The compiled extension is built (~1 min, once) before timing starts.
Cases are interleaved round-robin and each reports the median of ``--repeats`` timings, so slow
drifts of a shared machine hit every case alike. Prints tokens/s and the ratio to torch.nn.LSTM.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from torch import nn

from seqlab.bench.timing import fwd_bwd, interleaved_times
from seqlab.nn import LSTM
from seqlab.ops.rnn.compiled_lstm import load_extension


class LSTMCellLoop(nn.Module):
    """The textbook loop: one ``nn.LSTMCell`` call per time step (no input-projection hoisting)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        h = c = x.new_zeros(B, self.cell.hidden_size)
        outs = []
        for t in range(T):
            h, c = self.cell(x[:, t], (h, c))
            outs.append(h)
        return torch.stack(outs, dim=1)


def _cases(size: int) -> dict[str, nn.Module]:
    return {
        "torch.nn.LSTM": nn.LSTM(size, size, batch_first=True),
        "nn.LSTMCell loop": LSTMCellLoop(size),
        "seqlab LSTM naive": LSTM(size, size, backend="naive"),
        "seqlab LSTM fused": LSTM(size, size, backend="fused"),
        "seqlab LSTM compiled": LSTM(size, size, backend="compiled"),
        "seqlab LSTM torch": LSTM(size, size, backend="torch"),
        "seqlab layer-norm LSTM (naive)": LSTM(size, size, layer_norm=True, backend="naive"),
        "seqlab layer-norm LSTM (compiled)": LSTM(size, size, layer_norm=True, backend="compiled"),
        "seqlab rec-dropout LSTM (naive)": LSTM(size, size, recurrent_dropout=0.25, backend="naive"),
        "seqlab rec-dropout LSTM (fused)": LSTM(size, size, recurrent_dropout=0.25, backend="fused"),
        "seqlab rec-dropout LSTM (compiled)": LSTM(size, size, recurrent_dropout=0.25, backend="compiled"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if load_extension() is None:  # warned once; the compiled cases then time the Python fallback
        print("note: the C++ extension is unavailable, 'compiled' cases run the Python fallback")
    x = torch.randn(args.batch, args.time, args.size)
    runs = {name: fwd_bwd(m.train(), x) for name, m in _cases(args.size).items()}
    times = interleaved_times(runs, args.repeats)
    tokens = args.batch * args.time
    ref = statistics.median(times["torch.nn.LSTM"])
    print(
        f"fwd+bwd, B={args.batch} T={args.time} D=H={args.size}, threads={torch.get_num_threads()}, "
        f"median of {args.repeats}"
    )
    print(f"{'case':36s} {'tokens/s':>10s} {'vs torch.nn.LSTM':>17s}")
    result = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {"tokens_per_s": tokens / med, "ratio": ref / med}
        print(f"{name:36s} {tokens / med:10.0f} {ref / med:16.2f}x")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
