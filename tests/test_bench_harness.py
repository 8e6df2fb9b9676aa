"""``seqlab bench``: case registry, records, FLOP formulas, matmul peak, JSONL, CLI (tiny sizes;
no timing assertions — only that the figures exist, are positive and are well formed)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import seqlab.nn
from seqlab.bench import harness
from seqlab.bench.cases import CASES, KINDS, Shape, case_names, describe, has_xlstm
from seqlab.bench.flops import flops_per_token, forward_flops, matmul_params
from seqlab.bench.harness import Settings, finalise_peaks, measure_point, run_child, select, write_jsonl
from seqlab.bench.peak import matmul_peak, mfu
from seqlab.bench.report import format_table
from seqlab.cli.main import main
from seqlab.errors import ConfigError, UnknownNameError

TINY = Settings(repeats=1, batch=2, times=(8,), d_model=16, peak_sizes=(32,), threads=1)
PEAKS = {
    "float32": {"gflops": 10.0, "best_size": 32, "best_backend": "mm", "by_backend": {"mm": {32: 10.0}}},
    "bfloat16": {"gflops": 5.0, "best_size": 32, "best_backend": "mm", "by_backend": {"mm": {32: 5.0}}},
}


@pytest.fixture
def in_process(monkeypatch):
    """Run the harness's children in this process (the subprocess path is covered by the CLI test)."""
    monkeypatch.setattr(harness, "spawn", lambda module, spec, memory, timeout: run_child(spec))


def test_registry_lists_cases():
    names = case_names()
    for expected in (
        "lstm-torch", "lstm-fused", "lstm-naive", "ln-lstm", "lstm-recdrop", "gru", "rnn", "attention",
        "mlstm-block", "slstm-block", "model-lstm", "model-gru", "model-transformer", "model-mlstm",
        "decode-lstm", "decode-xlstm", "decode-transformer", "bf16-lstm", "bf16-attention",
    ):  # fmt: skip
        assert expected in names
    assert {CASES.get(n).kind for n in names} == set(KINDS)
    assert "torch.nn.LSTM" in describe("lstm-torch")


FAMILIES = ["lstm-torch", "lstm-naive", "ln-lstm", "lstm-recdrop", "gru", "rnn", "attention", "attention-fwd"]
FAMILIES += ["mlstm-block", "slstm-block", "model-mlstm", "decode-transformer", "prefill-xlstm", "bf16-gru"]


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_gives_a_well_formed_record(name, in_process):
    r = measure_point(name, 8, TINY, PEAKS)
    assert "error" not in r, r.get("error")
    final = finalise_peaks([r], PEAKS)
    assert (r["B"], r["T"], r["D"], r["threads"]) == (2, 8, 16, 1)
    assert r["tokens_per_s"] > 0 and r["flops_per_token"] > 0 and r["peak_mb"] is not None
    assert r["torch"] == torch.__version__ and r["device"] == "cpu"
    has_reference = bool(CASES.get(name).reference_name) and (not name.endswith("-block") or has_xlstm())
    assert ("ratio" in r) == has_reference
    if has_reference:
        assert r["reference_tokens_per_s"] > 0 and r["ratio"] > 0 and r["reference_peak_mb"] is not None
    if r["kind"] == "decode":
        assert r["ms_per_token"] > 0 and "mfu" not in r
    else:
        # the peak: the fastest of the sweep's and the yardstick timed in the case's own rounds
        yardstick = r["yardstick_gflops"][r["dtype"]]
        assert r["peak_gflops"] == final[r["dtype"]]["gflops"] == max(PEAKS[r["dtype"]]["gflops"], yardstick)
        assert r["mfu"] == pytest.approx(mfu(r["flops_per_token"], r["tokens_per_s"], r["peak_gflops"]))
        assert 0 < r["load_factor"][r["dtype"]] <= 1
    if name.startswith("bf16-"):
        assert (r["dtype"], r["reference_dtype"]) == ("bfloat16", "float32")
    json.dumps(r)  # JSON-serialisable


def test_xlstm_block_without_the_official_package_has_no_reference(monkeypatch, in_process):
    monkeypatch.setattr("seqlab.bench.cases.has_xlstm", lambda: False)
    r = measure_point("mlstm-block", 8, TINY, PEAKS)
    assert "ratio" not in r and "xlstm not installed" in r["note"]


def test_lstm_flops_by_hand_and_by_flop_counter():
    D, H, B, T = 3, 5, 2, 8
    lstm = seqlab.nn.LSTM(D, H, backend="naive")
    assert matmul_params(lstm) == 4 * H * (D + H) == 160  # W_ih (4H, D) + W_hh (4H, H)
    assert forward_flops(lstm, T) == 2 * 160
    assert flops_per_token(lstm, T, "fwd+bwd") == 3 * 2 * 160
    x = torch.randn(B, T, D, requires_grad=True)
    with FlopCounterMode(display=False) as fwd:
        y = lstm(x)[0]
    assert fwd.get_total_flops() == forward_flops(lstm, T) * B * T
    with FlopCounterMode(display=False) as bwd:
        y.sum().backward()
    # input + weight gradients of every matmul, less the one for the zero initial state h_0
    assert bwd.get_total_flops() == 2 * forward_flops(lstm, T) * B * T - 2 * B * 4 * H * H


def test_attention_block_flops_by_hand_and_by_flop_counter():
    B, T, D = 2, 8, 16
    built = CASES.get("attention").build(Shape(B, T, D))
    d_ff = 4 * D
    projections = 2 * (4 * D * D + 2 * D * d_ff)  # q, k, v, out; FFN up and down
    causal = 2 * T * D  # QKᵀ and AV over T/2 keys on average
    for module in (built.module, built.reference):
        assert forward_flops(module, T) == projections + causal
        with FlopCounterMode(display=False) as counter:  # counts the matmuls, not the CPU sdpa
            module(torch.randn(B, T, D))
        assert counter.get_total_flops() == projections * B * T


def test_model_flops_count_the_head_not_the_embedding():
    built = CASES.get("model-lstm").build(Shape(2, 8, 16))
    lm = built.module.inner
    embedding = sum(
        p.numel() for p in lm.modules() if isinstance(p, torch.nn.Embedding) for p in p.parameters()
    )
    assert embedding > 0
    assert matmul_params(lm) == 2 * 4 * 16 * 32 + 16 * 64  # two LSTM layers + the head (V = 64)


def test_matmul_peak_and_errors():
    peak = matmul_peak("float32", sizes=(16, 32), repeats=1)
    assert peak["gflops"] > 0 and peak["best_size"] in (16, 32) and set(peak["by_size"]) == {16, 32}
    with pytest.raises(ConfigError, match="float32"):
        matmul_peak("float16")


def test_jsonl_is_written_atomically(tmp_path):
    path = tmp_path / "bench.jsonl"
    write_jsonl(path, [{"case": "a", "T": 8}, {"case": "b", "T": 16}])
    assert [json.loads(line)["case"] for line in path.read_text().splitlines()] == ["a", "b"]
    with pytest.raises(TypeError):
        write_jsonl(path, [{"case": object()}])
    assert len(path.read_text().splitlines()) == 2  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["bench.jsonl"]  # no temp files left


def test_unknown_case_and_device_errors(capsys):
    with pytest.raises(UnknownNameError, match="lstm-torch"):
        select(["lstm-torch", "no-such-case"])
    assert main(["bench", "--cases", "no-such-case"]) == 2
    assert "choose from" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["bench", "--cases", "gru", "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_failed_child_is_recorded_and_the_table_shows_it(monkeypatch):
    monkeypatch.setattr(
        harness, "spawn", lambda module, spec, memory, timeout: {"error": "timed out after 1 s"}
    )
    r = measure_point("gru", 8, TINY, PEAKS)
    assert r["error"] == "timed out after 1 s" and "tokens_per_s" not in r
    assert "timed out" in format_table([r])


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--cases", "lstm-torch", "decode-lstm", "--times", "8", "--batch", "2"]
    argv += [
        "--d-model",
        "16",
        "--repeats",
        "1",
        "--peak-sizes",
        "64",
        "--threads",
        "1",
        "--no-memory",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "matmul peak float32" in printed and "lstm-torch" in printed and "decode-lstm" in printed
    records = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert [r["case"] for r in records] == ["lstm-torch", "decode-lstm"]
    assert records[0]["ratio"] > 0 and records[0]["mfu"] > 0 and records[0]["peak_mb"] is None
    assert records[1]["ms_per_token"] > 0
    for name in ("throughput.png", "memory.png", "peak.json"):
        assert (out / name).stat().st_size > 0
    assert main(["bench", "--list"]) == 0
    assert "decode-transformer" in capsys.readouterr().out


def test_memory_child_process():
    """The memory measurement in a real child (glibc fixed mmap threshold, peak RSS)."""
    spec = {"case": "gru", "B": 2, "T": 8, "D": 16, "dtype": "float32", "reference_dtype": "float32"}
    spec |= {
        "device": "cpu",
        "threads": 1,
        "repeats": 1,
        "decode_steps": 2,
        "mode": "memory",
        "side": "reference",
        "gemm": "auto",
        "malloc": "system",
        "reference": True,
    }
    got = harness.spawn(harness.MODULE, spec, memory=True, timeout=120)
    assert "error" not in got, got
    assert got["peak_extra_mb"] >= 0 and got["baseline_mb"] > 0


def test_every_gemm_backend_computes_the_same_product():
    from seqlab.bench.peak import gemm_backends, matmul_peak

    peak = matmul_peak("float32", (16, 32), repeats=1)
    assert set(peak["by_backend"]) == set(gemm_backends("cpu"))
    assert peak["best_backend"] in peak["by_backend"] and peak["gflops"] == max(peak["by_size"].values())
    if "onednn" in gemm_backends("cpu"):  # a @ bᵀ on oneDNN's packed tensors == the dense product
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)
        out = torch._C._nn.mkldnn_linear(a.to_mkldnn(), b.to_mkldnn()).to_dense()
        torch.testing.assert_close(out, a @ b.T)


def test_cli_cases_alone_with_the_training_defaults(tmp_path):
    """--no-reference times the case alone; --gemm / --malloc reach the child and the record."""
    out = tmp_path / "bench"
    argv = ["bench", "--cases", "model-transformer", "--times", "8", "--batch", "2", "--d-model", "16"]
    argv += ["--repeats", "1", "--peak-sizes", "64", "--threads", "1", "--no-memory", "--no-reference"]
    argv += ["--gemm", "auto", "--malloc", "keep", "--out", str(out)]
    assert main(argv) == 0
    (record,) = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()]
    assert record["tokens_per_s"] > 0 and "reference_tokens_per_s" not in record
    assert (record["gemm"], record["malloc"], record["reference"]) == ("auto", "keep", None)
