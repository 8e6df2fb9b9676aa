"""Activation checkpointing: what it saves in memory and costs in time, per model family.

    python -m seqlab.bench.checkpointing [--presets lstm transformer mlstm] [--layers 4]
        [--d-model 256] [--batch 8] [--time 1024] [--repeats 3] [--out results.jsonl]

A language model of each preset (``--layers`` blocks of width ``--d-model``), one training step
(forward, cross-entropy against random targets, backward) on random tokens, with and without
:func:`~seqlab.training.memory.enable_activation_checkpointing`. Each (preset, checkpointing)
runs in fresh processes: one for the median step time of ``--repeats`` steps after a warm-up,
one for the extra peak RSS of one step (:mod:`seqlab.bench.memory`). Printed ratios are
checkpointed / plain, measured in the same run.
"""

from __future__ import annotations

import argparse
import json

import torch

from seqlab.bench.memory import median_time, peak_extra_memory, spawn

MODULE = "seqlab.bench.checkpointing"
VOCAB = 256


def run_child(spec: dict) -> dict:
    from seqlab.models import MODELS, SequenceModel
    from seqlab.models.config import ModelConfig
    from seqlab.spec import IOSpec
    from seqlab.training.memory import enable_activation_checkpointing

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    preset = MODELS.get(spec["preset"])() | {"d_model": spec["d_model"]}
    preset["layer_types"] = (preset["layer_types"] * spec["layers"])[: spec["layers"]]
    preset.pop("arch", None)
    model = SequenceModel(ModelConfig(**preset), IOSpec(output_dim=VOCAB, vocab_size=VOCAB))
    if spec["checkpointing"]:
        enable_activation_checkpointing(model)
    B, T = spec["batch"], spec["time"]
    x = torch.randint(0, VOCAB, (B, T))
    y = torch.randint(0, VOCAB, (B, T))

    def step() -> None:
        logits = model(x)[0]  # (B, T, V)
        torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1)).backward()
        model.zero_grad(set_to_none=True)

    if spec["memory"]:
        step()  # lazy initialisation outside the measured step
        return peak_extra_memory(step)
    return median_time(step, spec["repeats"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["lstm", "transformer", "mlstm"])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--time", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="append one JSON line per case to this file")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    base = {k: getattr(args, k) for k in ("layers", "d_model", "batch", "time", "repeats", "threads")}
    columns = ("plain s", 8), ("ckpt s", 8), ("time ×", 7), ("plain MB", 9), ("ckpt MB", 8), ("mem ×", 6)
    print(f"{'preset':12s} " + " ".join(f"{name:>{width}s}" for name, width in columns))
    for preset in args.presets:
        row = {"preset": preset, **base}
        for ckpt in (False, True):
            spec = {**base, "preset": preset, "checkpointing": ckpt}
            key = "ckpt" if ckpt else "plain"
            row[f"{key}_time_s"] = spawn(MODULE, {**spec, "memory": False}, memory=False, timeout=900).get(
                "time_s"
            )
            mem = spawn(MODULE, {**spec, "memory": True}, memory=True, timeout=900)
            row[f"{key}_peak_mb"] = mem.get("peak_extra_mb")
        if None in (row["plain_time_s"], row["ckpt_time_s"], row["plain_peak_mb"], row["ckpt_peak_mb"]):
            print(f"{preset:12s} failed: {row}")
            continue
        row["time_ratio"] = row["ckpt_time_s"] / row["plain_time_s"]
        row["memory_ratio"] = row["ckpt_peak_mb"] / row["plain_peak_mb"]
        print(
            f"{preset:12s} {row['plain_time_s']:8.2f} {row['ckpt_time_s']:8.2f} {row['time_ratio']:7.2f} "
            f"{row['plain_peak_mb']:9.0f} {row['ckpt_peak_mb']:8.0f} {row['memory_ratio']:6.2f}"
        )
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
