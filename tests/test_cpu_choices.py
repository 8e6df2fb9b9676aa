"""train.gemm and train.malloc: what ``auto`` resolves to, clear errors, what a run records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.layers import OneDNNLinear
from seqlab.ops.gemm import onednn
from seqlab.training import ExperimentConfig, cpu, train

CPU = torch.device("cpu")
needs_onednn = pytest.mark.skipif(not onednn(torch.empty(0)), reason="torch built without oneDNN")


@needs_onednn
@pytest.mark.parametrize(
    ("vendor", "precision", "compiled", "expected"),
    [
        ("AuthenticAMD", "fp32", False, "onednn"),
        ("GenuineIntel", "fp32", False, "torch"),  # MKL is fast there
        ("AuthenticAMD", "bf16", False, "torch"),  # autocast's own kernels
        ("AuthenticAMD", "fp32", True, "torch"),  # torch.compile traces F.linear
        ("", "fp32", False, "torch"),  # vendor unknown
    ],
)
def test_auto_takes_onednn_only_for_float32_eager_training_on_amd(monkeypatch, vendor, precision,
                                                                  compiled, expected):  # fmt: skip
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: vendor)
    assert cpu.resolve_gemm("auto", CPU, precision, compiled) == expected
    assert cpu.resolve_gemm("torch", CPU) == "torch"


def test_bad_names_and_impossible_choices_fail_clearly():
    with pytest.raises(ConfigError, match="choose from: auto, torch, onednn"):
        cpu.resolve_gemm("mkl", CPU)
    with pytest.raises(ConfigError, match="choose from: auto, system, keep"):
        cpu.apply_malloc("jemalloc", CPU)
    with pytest.raises(ConfigError, match="onednn needs a CPU"):
        cpu.resolve_gemm("onednn", torch.device("meta"))
    with pytest.raises(ConfigError, match="gemm"):
        ExperimentConfig.from_dict({"task": {"name": "copy"}, "model": {}, "train": {"gemm": "mkl"}})


@needs_onednn
def test_a_run_records_its_choices_and_onednn_trains_the_same_model(tmp_path, monkeypatch):
    """Forced oneDNN and forced torch GEMMs give the same losses up to float rounding."""
    monkeypatch.setattr("seqlab.ops.gemm.MIN_ROWS", 1)  # the test's small batches through oneDNN
    monkeypatch.setattr("seqlab.ops.gemm.MIN_WEIGHT", 1)

    def run(gemm):
        config = ExperimentConfig.from_dict(
            {
                "task": {"name": "copy", "max_len": 4, "val_size": 32},
                "model": {"d_model": 24, "layer_types": ["attention"]},
                "train": {
                    "steps": 8,
                    "batch_size": 16,
                    "eval_every": 8,
                    "log_every": 1,
                    "gemm": gemm,
                    "malloc": "system",
                },
            }
        )
        train(config, tmp_path / gemm, progress=False)
        lines = (tmp_path / gemm / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        start = next(r for r in records if r.get("event") == "start")
        return start, [r["loss"] for r in records if "loss" in r]

    torch_start, torch_losses = run("torch")
    dnn_start, dnn_losses = run("onednn")
    assert (torch_start["gemm"], dnn_start["gemm"]) == ("torch", "onednn")
    assert torch_start["malloc"] == dnn_start["malloc"] == "system"
    assert len(dnn_losses) == len(torch_losses) == 8
    torch.testing.assert_close(torch.tensor(dnn_losses), torch.tensor(torch_losses), rtol=1e-4, atol=1e-5)


def test_the_trainer_swaps_the_linear_layers_it_is_told_to(monkeypatch):
    from seqlab.models import ModelConfig, build_model
    from seqlab.spec import IOSpec

    model = build_model(
        ModelConfig(d_model=16, layer_types=["attention"]), IOSpec(output_dim=11, vocab_size=11)
    )
    assert cpu.apply_gemm(model, "torch", CPU) == "torch"
    assert not any(type(m) is OneDNNLinear for m in model.modules())
    if onednn(torch.empty(0)):
        assert cpu.apply_gemm(model, "onednn", CPU) == "onednn"
        assert any(type(m) is OneDNNLinear for m in model.modules())


def _rss_kept_after_free(mode: str) -> tuple[str, float]:
    """In a child (the setting is process-wide): apply ``mode``, fill and free a 256 MB tensor;
    MB of it still resident afterwards."""
    code = (
        "import os, torch\n"
        "from seqlab.training.cpu import apply_malloc\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
        f"mode = apply_malloc({mode!r}, torch.device('cpu'))\n"
        "before = rss(); a = torch.ones(64 << 20); del a\n"
        "print(mode, rss() - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    mode, kept = out.stdout.split()
    return mode, float(kept)


def test_keep_holds_freed_memory_system_returns_it():
    """With ``keep`` glibc hands a freed 256 MB block back to the heap, not to the kernel (so
    the next one needs no page faults); with ``system`` it is unmapped at once."""
    mode, kept = _rss_kept_after_free("keep")
    if mode == "system":
        pytest.skip("not a glibc system")
    assert kept > 200
    assert _rss_kept_after_free("system") == ("system", pytest.approx(0, abs=50))
    assert cpu.apply_malloc("system", CPU) == "system"
    assert cpu.apply_malloc("auto", torch.device("meta")) == "system"
