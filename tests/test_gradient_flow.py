"""Gradient-flow diagnostics: the vanishing-gradient story, measured and checked by hand."""

from __future__ import annotations

import argparse
import json
from functools import partial

import pytest
import torch

from seqlab.cli.gradients import add_parser, cmd_gradients
from seqlab.cli.main import _common_options, main
from seqlab.config import save_file
from seqlab.errors import ConfigError, RunDirError, UnknownNameError
from seqlab.evaluation import (
    build_preset,
    gradient_flow_study,
    gradient_norms_over_time,
    last_step_loss,
    probe_batch,
    recurrent_spectral_radii,
)
from seqlab.models import ModelConfig, SequenceModel, build_model
from seqlab.tasks import build_task
from seqlab.training import save_checkpoint
from seqlab.training.config import resolve_config


def test_rnn_gradient_vanishes_over_100_steps_lstm_keeps_it():
    """Acceptance: T = 100, default init, the same adding batch for both.

    Measured (B = 4, seed 0): g(1) RNN ≈ 1.2e-35, LSTM ≈ 1.3e-5, GRU ≈ 6.7e-11 — the RNN is ~30 orders of
    magnitude below the LSTM; ratios g(1)/g(T): RNN 2.3e-35, LSTM 7.5e-5, GRU 1.7e-10 (B = 16, the CLI
    default: 3.8e-35, 7.5e-5, 1.7e-10). ρ(W_hh) of the RNN ≈ 0.6 ≈ 1/√3, the circular-law radius of
    U(±1/√H) entries: every step back shrinks the error by at least that factor.
    """
    rng_before = torch.get_rng_state()
    result = gradient_flow_study(["rnn", "lstm", "gru"], length=100, batch_size=4, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the study forks the RNG
    rnn, lstm, gru = (result["models"][m] for m in ("rnn", "lstm", "gru"))
    assert len(rnn["curves"]["blocks.0"]) == 100
    assert 0 < rnn["g_first"] * 10 < lstm["g_first"]  # the acceptance bound; measured ~1e30×
    assert rnn["g_first"] < gru["g_first"] < lstm["g_first"]
    assert rnn["ratio"] < 1e-20 < gru["ratio"] < 1e-6 < lstm["ratio"] < 1e-2
    assert 0.5 < rnn["max_spectral_radius"] < 0.7


def _linear_input_rnn(T: int = 6, B: int = 3):
    """One residual Elman-RNN block, linear input projection (adding task), no positions, float64."""
    task = build_task("adding")
    config = ModelConfig(d_model=8, layer_types=["rnn"], d_ff=0, positional="none")
    model = SequenceModel(config, task.io).double()
    batch = probe_batch(task, T, B, seed=1)
    batch.inputs, batch.targets = batch.inputs.double(), batch.targets.double()
    return task, model, batch


def test_hook_norms_match_hand_written_bptt():
    """The hooked g(t) equals the BPTT recursion written out with the model's own weights:

    δ_T = ∂L/∂y_T,  δ_t = W_hhᵀ((1 − h_{t+1}²) ⊙ δ_{t+1}),  ∂L/∂u_t = W_ihᵀ((1 − h_t²) ⊙ δ_t).
    """
    task, model, batch = _linear_input_rnn()
    block, layer = model.blocks[0], model.blocks[0].mixer.layer
    W_ih, W_hh = layer.weight_ih_l0, layer.weight_hh_l0
    b = layer.bias_ih_l0 + layer.bias_hh_l0
    # 1. the forward pass written out: e -> u = norm1(e) -> h_t -> x = e + y -> head(norm(x))
    e = model.embed(batch.inputs).detach().requires_grad_()  # (B, T, D)
    u = block.norm1(e)
    hs, h = [], torch.zeros(u.shape[0], 8, dtype=u.dtype)
    for t in range(u.shape[1]):
        h = torch.tanh(u[:, t] @ W_ih.T + h @ W_hh.T + b)
        hs.append(h)
    y = torch.stack(hs, 1)  # (B, T, D)
    outputs = model.head(model.norm(e + y))
    assert torch.allclose(outputs, model(batch.inputs)[0])
    loss = last_step_loss(task, outputs, batch)
    d_e, d_u, d_y = torch.autograd.grad(loss, [e, u, y])
    # the gradient at the mixer *output* is only the direct part: 0 before T (why curves use the input)
    assert d_y[:, :-1].abs().max() == 0
    # 2. BPTT by hand
    delta, d_u_hand = d_y[:, -1], [None] * len(hs)
    for t in reversed(range(len(hs))):
        if t < len(hs) - 1:
            delta = ((1 - hs[t + 1] ** 2) * delta) @ W_hh
        d_u_hand[t] = ((1 - hs[t] ** 2) * delta) @ W_ih
    d_u_hand = torch.stack(d_u_hand, 1)  # (B, T, D)
    assert torch.allclose(d_u_hand, d_u)
    # 3. the hooks give the same norms, averaged over the batch; the input curve is ∂L/∂e
    curves = gradient_norms_over_time(model, batch, partial(last_step_loss, task))
    assert torch.allclose(curves["blocks.0"], d_u_hand.norm(dim=-1).mean(0))
    assert torch.allclose(curves["input"], d_e.norm(dim=-1).mean(0))
    assert curves["blocks.0"][0] < curves["blocks.0"][-1]


def test_loss_is_a_sum_over_rows_so_curves_do_not_depend_on_batch_size():
    task, model, batch = _linear_input_rnn(T=5, B=4)
    loss_fn = partial(last_step_loss, task)
    whole = gradient_norms_over_time(model, batch, loss_fn)["blocks.0"]
    rows = [
        gradient_norms_over_time(model, batch.rows(torch.tensor([i])), loss_fn)["blocks.0"] for i in range(4)
    ]
    assert torch.allclose(whole, torch.stack(rows).mean(0))
    assert model.training  # mode restored after the eval-mode probe


def _with_eigenvalues(n: int, seed: int = 0) -> torch.Tensor:
    """A real n×n matrix P·diag-ish·P⁻¹ with eigenvalues 0.72 ± 0.96i (|λ| = 1.2), 0.5, −0.3, 0.1, ..."""
    g = torch.Generator().manual_seed(seed)
    D = torch.diag(torch.linspace(-0.3, 0.5, n, dtype=torch.float64))
    D[:2, :2] = torch.tensor([[0.72, -0.96], [0.96, 0.72]], dtype=torch.float64)  # a 1.2-scaled rotation
    P = torch.randn(n, n, generator=g, dtype=torch.float64) + 3 * torch.eye(n, dtype=torch.float64)
    return P @ D @ torch.linalg.inv(P)


def test_spectral_radius_of_known_matrices_in_rnn_lstm_and_slstm():
    io = build_task("adding").io
    layers = ["rnn", "lstm", "slstm", "attention"]
    model = build_model(ModelConfig(d_model=8, layer_types=layers, mixers={"slstm": {"num_heads": 2}}), io)
    known = _with_eigenvalues(8).float()
    with torch.no_grad():
        model.blocks[0].mixer.layer.weight_hh_l0.copy_(known)
        model.blocks[1].mixer.layer.weight_hh_l0[8:16].copy_(known)  # gates (i, f, g, o): forget
        model.blocks[2].mixer.recurrent[1, :, 1, :].copy_(_with_eigenvalues(4, seed=1).float().T)
    radii = recurrent_spectral_radii(model)
    assert radii["blocks.0.mixer.layer.weight_hh_l0"] == pytest.approx(1.2, abs=1e-4)
    assert radii["blocks.1.mixer.layer.weight_hh_l0[forget]"] == pytest.approx(1.2, abs=1e-4)
    assert radii["blocks.1.mixer.layer.weight_hh_l0[input]"] < 1.0  # untouched, U(±1/√8) init
    assert radii["blocks.2.mixer.recurrent[head1,forget]"] == pytest.approx(1.2, abs=1e-4)
    lstm_keys = [k for k in radii if k.startswith("blocks.1.")]
    assert len(lstm_keys) == 4 and len([k for k in radii if k.startswith("blocks.2.")]) == 2 * 4
    assert not any(k.startswith("blocks.3.") for k in radii)  # attention: no recurrent matrix


def _harness() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqlab")
    add_parser(parser.add_subparsers(dest="command", required=True), _common_options(argparse.SUPPRESS))
    return parser


def _gradients(*argv: str) -> int:
    args = _harness().parse_args(["gradients", *argv])
    return cmd_gradients(args)


def _run_dir(tmp_path):
    """A run directory (config.yaml + checkpoint/) of a small GRU on the adding task, weights set."""
    run = tmp_path / "gru-run"
    config = resolve_config("adding", "gru", None, ["model.d_model=16"])
    model = build_model(config.model, build_task("adding").io)
    with torch.no_grad():
        model.blocks[0].mixer.layer.weight_hh_l0.mul_(3.0)  # "trained": differs from a fresh init
    save_file(config.to_dict(), run / "config.yaml")
    save_checkpoint(run / "checkpoint", model, {"step": 0})
    return run, model


def test_cli_writes_figure_and_json_for_presets_and_a_run(tmp_path, capsys):
    run, trained = _run_dir(tmp_path)
    out = tmp_path / "out"
    assert (
        _gradients(str(run), "--models", "rnn,lstm", "--length", "12", "--batch-size", "2", "--out", str(out))
        == 0
    )
    png = (out / "gradient_flow.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    result = json.loads((out / "gradient_flow.json").read_text())
    assert list(result["models"]) == ["rnn", "lstm", "gru-run"]
    assert result["length"] == 12 and result["dtype"] == "float64"
    for record in result["models"].values():
        assert set(record["curves"]) == {"input", "blocks.0", "blocks.1"}
        assert all(len(c) == 12 and all(g >= 0 for g in c) for c in record["curves"].values())
        assert record["ratio"] == pytest.approx(record["g_first"] / record["g_last"])
    loaded = result["models"]["gru-run"]
    assert loaded["source"] == str(run) and result["models"]["rnn"]["source"] == "preset"
    assert loaded["spectral_radii"] == pytest.approx(recurrent_spectral_radii(trained))  # the run's weights
    table = capsys.readouterr().out
    assert "ratio" in table and all(name in table for name in ("rnn", "lstm", "gru-run"))


def test_cli_through_main_once_wired(tmp_path, capsys):
    """``seqlab gradients`` as users call it (the subcommand is registered in cli/main.py)."""
    out = tmp_path / "g"
    assert main(["gradients", "rnn", "--length", "8", "--batch-size", "2", "--out", str(out)]) == 0
    assert (out / "gradient_flow.png").stat().st_size > 0
    assert main(["gradients", "no-such-model", "--out", str(out)]) == 2
    assert "neither a run directory nor a model preset" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"'nope' is neither a run directory nor a model preset.*lstm"):
        _gradients("nope", "--out", str(tmp_path))
    with pytest.raises(UnknownNameError, match=r"unknown model 'nope'; choose from: .*rnn"):
        _gradients("--models", "nope", "--out", str(tmp_path))
    with pytest.raises(ConfigError, match="length must be an integer >= 2"):
        _gradients("--models", "rnn", "--length", "1", "--out", str(tmp_path))
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        gradient_flow_study(["rnn"], length=10, batch_size=0)
    with pytest.raises(ConfigError, match=r"preset 'seq2seq' is arch 'transformer-seq2seq'"):
        build_preset("seq2seq", build_task("adding").io)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        _gradients("rnn", "--out", str(tmp_path / "file"))
    with pytest.raises(RunDirError, match="not a run directory"):
        _gradients(str(tmp_path), "--out", str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="makes sequences of 128 steps, fewer than length 500"):
        probe_batch(build_task("charlm"), 500, 2, seed=0)
