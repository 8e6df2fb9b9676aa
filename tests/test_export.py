"""seqlab.export: ONNX parity in onnxruntime, TorchScript, save_pretrained / from_pretrained, CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seqlab.data import train_tokenizer
from seqlab.errors import RunDirError
from seqlab.export import (
    ExportError,
    LastTokenOutputs,
    export_onnx,
    export_torchscript,
    from_pretrained,
    load_pretrained,
    save_pretrained,
)
from seqlab.models import ModelConfig, build_model
from seqlab.spec import IOSpec

pytest.importorskip("onnxruntime")
import onnxruntime as ort

V, C, TOL = 13, 3, 1e-4

CONFIGS = {
    "lstm-lm": ModelConfig(d_model=32, layer_types=["lstm", "lstm"], tie_weights=True),
    "gru-classifier": ModelConfig(d_model=32, layer_types=["gru", "gru"]),
    "transformer-lm": ModelConfig(
        d_model=32, layer_types=["attention"] * 2, d_ff=64, mixers={"attention": {"num_heads": 4}}
    ),
}


def tiny(name: str, vocab: int = V) -> torch.nn.Module:
    torch.manual_seed(0)
    io = IOSpec(C, vocab) if "classifier" in name else IOSpec(vocab, vocab)
    model = build_model(CONFIGS[name], io).eval()
    with torch.no_grad():  # random, non-trivial weights (biases and norms too)
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def reference(model, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> np.ndarray:
    with torch.no_grad():
        out = model(ids)[0]  # (B, T, O)
        if lengths is not None:
            out = out[torch.arange(ids.shape[0]), lengths - 1]  # (B, C)
    return out.numpy()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnx_matches_pytorch_at_other_batch_sizes_and_lengths(name, tmp_path):
    model = tiny(name)
    readout = "last" if "classifier" in name else "sequence"
    example = torch.randint(0, V, (2, 6))
    example = (example, torch.tensor([6, 4])) if readout == "last" else example
    result = export_onnx(model, tmp_path / "m.onnx", example, readout=readout)
    shapes = {(c["batch"], c["time"]) for c in result["cases"]}
    assert len({b for b, _ in shapes}) >= 3 and len({t for _, t in shapes}) >= 3
    assert result["max_abs_diff"] <= TOL

    # independently of export_onnx's own check: onnxruntime at two more (batch, length) pairs
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == result["inputs"]
    for B, T in [(5, 3), (1, 17)]:
        ids = torch.randint(0, V, (B, T))
        if readout == "last":
            lengths = torch.randint(1, T + 1, (B,))
            got = session.run(None, {"input_ids": ids.numpy(), "lengths": lengths.numpy()})[0]
            want = reference(model, ids, lengths)
            assert got.shape == (B, C)
        else:
            got = session.run(None, {"input_ids": ids.numpy()})[0]
            want = reference(model, ids)
            assert got.shape == (B, T, V)
        assert np.abs(got - want).max() <= TOL


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(d_model=32, layer_types=["mlstm"], mixers={"mlstm": {"num_heads": 4, "chunk_size": 4}}),
        ModelConfig(d_model=32, layer_types=["lstm", "attention"], positional="learned", max_len=32),
    ],
    ids=["mlstm-chunkwise", "learned-positions"],
)
def test_onnx_of_mlstm_and_learned_positions(config, tmp_path):
    """mLSTM exports in its parallel form; learned positions without the data-dependent check."""
    torch.manual_seed(0)
    model = build_model(config, IOSpec(V, V)).eval()
    result = export_onnx(model, tmp_path / "m.onnx", torch.randint(0, V, (2, 6)))
    assert result["max_abs_diff"] <= TOL
    assert model.blocks[0].mixer.config == config.mixer_config(config.layer_types[0])  # not changed


def test_classifier_readout_equals_the_masked_forward_the_task_scores():
    from seqlab.tasks.classify import make_batch

    model = tiny("gru-classifier")
    texts = [torch.randint(1, V, (n,)) for n in (5, 2, 7)]
    batch = make_batch(texts, None, pad_id=0)
    with torch.no_grad():
        scored = model(batch.inputs, mask=batch.mask)[0][batch.target_mask]  # (B, C)
        exported = LastTokenOutputs(model)(batch.inputs, batch.lengths)
    torch.testing.assert_close(exported, scored, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("layer_types", "mixers", "named"),
    [
        (["slstm"], {"slstm": {"num_heads": 4}}, "sLSTM"),
        (["rnn"], {}, "Elman RNN"),
        (["lstm"], {"lstm": {"layer_norm": True}}, "layer-norm LSTM"),
    ],
)
def test_models_that_cannot_export_say_why_and_what_does(layer_types, mixers, named, tmp_path):
    model = build_model(ModelConfig(d_model=32, layer_types=layer_types, mixers=mixers), IOSpec(V, V))
    with pytest.raises(ExportError, match=named) as err:
        export_onnx(model, tmp_path / "m.onnx")
    assert "Exportable: blocks of lstm, gru, attention and mlstm" in str(err.value)
    assert not (tmp_path / "m.onnx").exists()


def test_missing_onnx_packages_name_the_pip_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ExportError, match=r"needs onnxruntime: pip install 'seqlab\[export\]'"):
        export_onnx(tiny("lstm-lm"), tmp_path / "m.onnx")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_reloads_and_matches(tmp_path):
    model = tiny("transformer-lm")
    result = export_torchscript(model, tmp_path / "m.pt")
    assert result["max_abs_diff"] <= 1e-5
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    ids = torch.randint(0, V, (4, 11))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids)[0], rtol=0, atol=1e-5)


def test_save_and_from_pretrained_round_trip_with_tied_weights_and_tokenizer(tmp_path):
    tokenizer = train_tokenizer("char", ["to be or not to be"])
    model = tiny("lstm-lm", vocab=tokenizer.vocab_size)
    save_pretrained(model, tmp_path / "p", tokenizer=tokenizer, task="charlm")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert config["model"]["arch"] == "sequence" and config["io"]["vocab_size"] == tokenizer.vocab_size
    assert config["task"] == "charlm" and config["readout"] == "sequence"
    assert "head.weight" not in load_file(tmp_path / "p" / "model.safetensors")  # stored once

    state = torch.random.get_rng_state()
    loaded = load_pretrained(tmp_path / "p")
    assert torch.equal(torch.random.get_rng_state(), state)  # building did not move the global RNG
    assert loaded.model.head.weight is loaded.model.embed.weight  # still tied
    assert loaded.tokenizer.encode("to be") == tokenizer.encode("to be")
    ids = torch.tensor([tokenizer.encode("not to be")])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids)[0], model(ids)[0])
    assert not loaded.model.training


def test_pretrained_errors_name_the_file(tmp_path):
    model = tiny("gru-classifier")
    save_pretrained(model, tmp_path / "p")
    with pytest.raises(RunDirError, match="config.json"):
        from_pretrained(tmp_path / "nowhere")
    weights = tmp_path / "p" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(RunDirError, match=r"corrupt weights file .*model.safetensors"):
        from_pretrained(tmp_path / "p")
    weights.unlink()
    with pytest.raises(RunDirError, match=r"missing weights file .*model.safetensors"):
        from_pretrained(tmp_path / "p")
    (tmp_path / "p" / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match=r"config.json:1: invalid JSON"):
        from_pretrained(tmp_path / "p")


def test_unknown_format_lists_the_choices(capsys, tmp_path):
    from seqlab.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path), "--format", "keras"])
    assert exit_.value.code == 2
    assert "choose from 'onnx', 'torchscript', 'safetensors', 'pretrained'" in capsys.readouterr().err


def test_cli_exports_a_trained_run_to_onnx_and_pretrained(tmp_path, capsys):
    from seqlab.cli.main import main
    from seqlab.training.rundir import load_trained

    run = tmp_path / "run"
    overrides = ["train.steps=3", "train.threads=1", "model.d_model=32", "train.eval_every=3"]
    argv = ["train", "--task", "charlm", "--model", "lstm", "--out", str(run), "--no-progress"]
    assert main(argv + [a for o in overrides for a in ("--set", o)]) == 0
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert main(["export", str(run), "--format", "pretrained"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime vs PyTorch" in out and "pretrained" in out

    trained = load_trained(run).model
    pretrained = load_pretrained(run / "export" / "pretrained")
    ids = torch.tensor([pretrained.tokenizer.encode("To be, or not to be")])
    with torch.no_grad():
        want = trained(ids)[0]
        assert torch.equal(pretrained.model(ids)[0], want)
    session = ort.InferenceSession(str(run / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input_ids": ids.numpy()})[0]
    assert np.abs(got - want.numpy()).max() <= TOL
