"""Data-pipeline figures on the ``shakespeare`` dataset: tokenizers, encoding speed, token files.

    python -m seqlab.bench.data_pipeline [--repeats 5] [--json out.jsonl]

1. Subword tokenizers trained on the training split (4.35 M characters): training time,
   vocabulary, characters per token on the validation split, and whether decode(encode(val))
   gives the validation text back exactly.
2. Character encoding: the vectorised :class:`~seqlab.data.CharTokenizer` against the plain
   per-character dictionary loop it replaces, on the whole training split (median of
   interleaved rounds; the ratio is what to read).
3. Token files: batches of random windows read from a ``uint16`` memory map against the same
   windows indexed from an in-memory LongTensor (B=32, T=256), and the file's size against the
   in-memory tensor's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seqlab.bench.timing import interleaved_times
from seqlab.data import CharTokenizer, TokenFile, train_tokenizer, write_token_file
from seqlab.data.datasets import load_dataset


def subword_rows(train: str, val: str, vocab_sizes: list[int]) -> list[dict]:
    rows = []
    lines = train.splitlines(keepends=True)
    for kind in ("bpe", "wordpiece", "unigram"):
        for V in vocab_sizes:
            start = time.perf_counter()
            tok = train_tokenizer(kind, lines, vocab_size=V, min_frequency=2 if kind != "unigram" else 1)
            seconds = time.perf_counter() - start
            ids = tok.encode(val)
            rows.append(
                {
                    "case": f"{kind}-{V}",
                    "train_s": round(seconds, 2),
                    "vocab": tok.vocab_size,
                    "chars_per_token": round(len(val) / len(ids), 3),
                    "unk": ids.count(tok.unk_id) if tok.unk_id is not None else 0,
                    "round_trip": tok.decode(ids) == val,
                }
            )
    return rows


def char_encoding_row(train: str, repeats: int) -> dict:
    tok = CharTokenizer.from_text(train)
    index = {ch: i for i, ch in enumerate(tok.tokens)}
    runs = {"vectorised": lambda: tok.encode(train), "dict-loop": lambda: [index[ch] for ch in train]}
    assert runs["vectorised"]() == runs["dict-loop"]()
    times = {k: statistics.median(v) for k, v in interleaved_times(runs, repeats).items()}
    return {
        "case": "char-encode",
        "chars": len(train),
        "vectorised_Mchar_s": round(len(train) / times["vectorised"] / 1e6, 1),
        "dict_loop_Mchar_s": round(len(train) / times["dict-loop"] / 1e6, 1),
        "speedup": round(times["dict-loop"] / times["vectorised"], 2),
    }


def token_file_row(train: str, repeats: int, B: int = 32, T: int = 256) -> dict:
    tok = CharTokenizer.from_text(train)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.bin"
        start = time.perf_counter()
        write_token_file([train], tok, path)
        write_s = time.perf_counter() - start
        tokens, memory = TokenFile(path), torch.tensor(tok.encode(train), dtype=torch.long)

        def from_memory() -> None:
            g = torch.Generator().manual_seed(0)
            starts = torch.randint(0, len(memory) - T, (B,), generator=g)
            memory[starts[:, None] + torch.arange(T + 1)]

        def from_file() -> None:
            tokens.random_windows(B, T, torch.Generator().manual_seed(0))

        times = {
            k: statistics.median(v)
            for k, v in interleaved_times({"memmap": from_file, "tensor": from_memory}, repeats * 20).items()
        }
        return {
            "case": f"token-file B={B} T={T}",
            "write_Mtok_s": round(len(train) / write_s / 1e6, 2),
            "file_MB": round(path.stat().st_size / 1e6, 2),
            "tensor_MB": round(memory.numel() * memory.element_size() / 1e6, 2),
            "memmap_ms_per_batch": round(times["memmap"] * 1e3, 3),
            "tensor_ms_per_batch": round(times["tensor"] * 1e3, 3),
            "memmap_vs_tensor_time": round(times["memmap"] / times["tensor"], 2),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--json", type=Path, help="also write the rows as JSON lines")
    args = parser.parse_args(argv)
    splits = load_dataset("shakespeare")
    train, val = splits["train"].text, splits["validation"].text
    rows = [*subword_rows(train, val, args.vocab_sizes), char_encoding_row(train, args.repeats)]
    rows.append(token_file_row(train, args.repeats))
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
