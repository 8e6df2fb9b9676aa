"""condlm: a language model conditioned on a label by a control token (CTRL)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seqlab.cli.main import main
from seqlab.data import train_tokenizer
from seqlab.errors import ConfigError
from seqlab.models import build_model
from seqlab.tasks import IGNORE, build_task
from seqlab.tasks.base import Batch
from seqlab.tasks.condlm import CondLMTask, LabelVocab, make_batch, sample, wrong_labels
from seqlab.training import ExperimentConfig, load_checkpoint, train
from seqlab.training.evaluation import Predictor
from seqlab.training.rundir import load_run_config
from tables import write_sentiment_csv


def _table_options(path, **options):
    return {
        "table": str(path),
        "text_column": "review",
        "label_column": "sentiment",
        "min_frequency": 1,
    } | options


# -- batches and vocabulary ----------------------------------------------------------------------


def test_the_hand_worked_batch_of_the_docstring():
    tok = train_tokenizer("char", ["bad", "ok"], min_frequency=1)
    assert tok.tokens[7:] == ["a", "b", "d", "k", "o"] and tok.eos_id == 3 and tok.pad_id == 0
    vocab = LabelVocab(tok, ["negative", "positive"])
    ids = [torch.tensor(tok.encode(t)) for t in ("ok", "bad")]
    batch = make_batch(ids, [1, 0], vocab)
    assert batch.inputs.tolist() == [[13, 11, 10, 0], [12, 8, 7, 9]]  # control token first
    assert batch.targets.tolist() == [[11, 10, 3, IGNORE], [8, 7, 9, 3]]  # text then [EOS]
    assert batch.target_mask.tolist() == [[True, True, True, False], [True] * 4]
    assert batch.mask.tolist() == batch.target_mask.tolist() and batch.lengths.tolist() == [3, 4]
    assert vocab.words[-2:] == ("[LABEL_negative]", "[LABEL_positive]")
    assert vocab.decode([13, 11, 10, 3, 8]) == "ok"  # control token dropped, cut at [EOS]


def test_vocabulary_layout_and_training_batches(tmp_path):
    task = CondLMTask(_table_options(write_sentiment_csv(tmp_path / "r.csv")))
    V, names = task.tokenizer.vocab_size, task.label_names
    assert names == ["neg", "pos"]
    assert task.io.vocab_size == task.io.output_dim == V + 2
    assert task.io.vocab == (*task.tokenizer.words, "[LABEL_neg]", "[LABEL_pos]")
    batch = task.train_batch_tokens(600, torch.Generator().manual_seed(0))
    B, T = batch.inputs.shape
    assert B * T <= 600 and int(batch.lengths.max()) == T
    assert batch.inputs[:, 0].tolist() == (V + batch.labels).tolist()  # one control token per row
    assert (batch.inputs[:, 1:] < V).all()  # ... and only there
    scored = batch.targets[batch.target_mask]
    assert (scored < V).all() and int((scored == task.tokenizer.eos_id).sum()) == B  # one [EOS] each
    # the texts are the table's (lower-cased), in order: row 0 decodes back to its text
    first = task._batch("train", torch.tensor([0]))
    assert task.vocab.decode(first.targets[0].tolist()) == task.raw["train"].texts[0].lower()


def test_wrong_labels_are_a_derangement():
    for C in range(2, 7):
        y = torch.arange(C)
        w = wrong_labels(y, C)
        assert (w != y).all() and sorted(w.tolist()) == y.tolist()  # no fixed point, a permutation


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'task.cls_token'"):
        ExperimentConfig.from_dict({"task": {"name": "condlm", "cls_token": True}, "model": {}})
    with pytest.raises(ConfigError, match="control_samples"):
        build_task("condlm", {"control_samples": -1})
    with pytest.raises(ConfigError, match="unknown label; choose from neg, pos"):
        LabelVocab(train_tokenizer("char", ["ab"]), ["neg", "pos"]).label_index("happy")
    assert LabelVocab(train_tokenizer("char", ["ab"]), ["neg", "pos"]).label_index("po") == 1


# -- metrics on fixed models -----------------------------------------------------------------------


def _eos_model(vocab: LabelVocab, boost_label: int, factor: float):
    """Uniform over the M = V + C tokens, except that after control token ``boost_label`` the
    [EOS] logit is ln(factor) higher: p(EOS) = factor / (M − 1 + factor)."""

    def predict(batch: Batch) -> torch.Tensor:
        B, T = batch.inputs.shape
        M = vocab.V + len(vocab.label_names)
        logits = torch.zeros(B, T, M, dtype=torch.float64)  # exact enough for a 1e-9 check
        boosted = batch.inputs[:, 0] == vocab.V + boost_label  # (B,)
        logits[boosted, :, vocab.eos] = math.log(factor)
        return logits

    return predict


def test_metrics_by_hand_on_a_fixed_model(tmp_path):
    task = CondLMTask(_table_options(write_sentiment_csv(tmp_path / "r.csv"), control_samples=0))
    M = task.io.vocab_size
    metrics = task.evaluate(_eos_model(task.vocab, boost_label=1, factor=3.0), batch_size=5)
    # by hand: L(0) = (n + 1) ln M; L(1) = n ln(M + 2) + ln((M + 2) / 3); chars: one per char + [EOS]
    for split, prefix in (("validation", "val"), ("test", "test")):
        texts, y = task.raw[split].texts, np.array(task.raw[split].labels)
        n = np.array([len(t) for t in texts])
        L = np.stack([(n + 1) * np.log(M), n * np.log(M + 2) + np.log((M + 2) / 3)], axis=1)  # (N, 2)
        true, wrong = L[np.arange(len(y)), y].sum(), L[np.arange(len(y)), 1 - y].sum()
        tokens = chars = (n + 1).sum()
        assert metrics[f"{prefix}_loss"] == pytest.approx(true / tokens)
        assert metrics[f"{prefix}_ppl"] == pytest.approx(math.exp(true / tokens))
        assert metrics[f"{prefix}_bpc"] == pytest.approx(true / chars / math.log(2))
        assert metrics[f"{prefix}_bpc_wrong"] == pytest.approx(wrong / chars / math.log(2))
        gain = (wrong - true) / chars / math.log(2)
        assert metrics[f"{prefix}_cond_gain_bpc"] == pytest.approx(gain, abs=1e-9)
        assert metrics[f"{prefix}_label_acc"] == pytest.approx(np.mean(L.argmin(axis=1) == y))
    assert not any(k.startswith("control") for k in metrics)  # control_samples=0: off


def test_a_model_that_ignores_the_label_gains_nothing(tmp_path):
    task = CondLMTask(_table_options(write_sentiment_csv(tmp_path / "r.csv"), control_samples=0))
    metrics = task.evaluate(_eos_model(task.vocab, boost_label=5, factor=3.0), batch_size=8)  # no such label
    assert metrics["val_cond_gain_bpc"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["val_bpc"] == pytest.approx(math.log2(task.io.vocab_size))  # uniform: log2 M per char


def _writer(vocab: LabelVocab, texts: dict[int, str]):
    """A fixed model that, after control token k, writes ``texts[k]`` then [EOS]."""
    ids = {k: [*vocab.tokenizer.encode(t), vocab.eos] for k, t in texts.items()}

    def predict(batch: Batch) -> torch.Tensor:
        B, T = batch.inputs.shape
        logits = torch.zeros(B, T, vocab.V + len(vocab.label_names))
        for b in range(B):
            text = ids[int(batch.inputs[b, 0]) - vocab.V]
            logits[b, torch.arange(T), torch.tensor(text)[torch.arange(T).clamp(max=len(text) - 1)]] = 30.0
        return logits

    return predict


def test_control_accuracy_and_samples_on_fixed_writers(tmp_path):
    task = CondLMTask(
        _table_options(write_sentiment_csv(tmp_path / "r.csv"), control_samples=3, sample_max_len=40)
    )
    obedient = _writer(task.vocab, {0: "a dull film , i hated it", 1: "a great film , i loved it"})
    metrics = task.evaluate(obedient, batch_size=16)
    assert metrics["control_acc"] == metrics["control_acc_pos"] == metrics["control_acc_neg"] == 1.0
    assert metrics["control_classifier_acc"] == 1.0  # the table is easy
    stubborn = _writer(task.vocab, {0: "a great film , i loved it", 1: "a great film , i loved it"})
    metrics = task.evaluate(stubborn, batch_size=16)
    assert metrics["control_acc"] == 0.5 and metrics["control_acc_neg"] == 0.0
    task.write_predictions(tmp_path, obedient, batch_size=16)
    samples = json.loads((tmp_path / "samples.json").read_text())
    assert samples["pos"] == [{"text": "a great film , i loved it", "classified_as": "pos"}] * 3
    assert "## neg (3 of 3 classified as neg)" in (tmp_path / "samples.md").read_text()


def test_sampling_never_draws_a_control_token_and_stops_at_eos():
    tok = train_tokenizer("char", ["ab"], min_frequency=1)
    vocab = LabelVocab(tok, ["x", "y"])

    def predict(batch):  # control tokens most likely, then 'a' until 3 tokens are written, then [EOS]
        B, T = batch.inputs.shape
        logits = torch.zeros(B, T, vocab.V + 2)
        logits[..., vocab.V :] = 50.0
        logits[:, :, tok.token_to_id("a")] = 40.0
        logits[:, 3:, vocab.eos] = 45.0
        return logits

    prompts = torch.tensor([[vocab.V], [vocab.V + 1]])
    out = sample(predict, prompts, 10, 1.0, vocab, torch.Generator().manual_seed(0))
    assert out == [[7, 7, 7, vocab.eos]] * 2 and vocab.decode(out[0]) == "aaa"
    assert sample(predict, prompts, 2, 0.0, vocab, torch.Generator()) == [[7, 7]] * 2  # the cap


# -- end to end ------------------------------------------------------------------------------------


def _train(tmp_path, task: dict, model: dict | None = None, steps: int = 30):
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "condlm"} | task,
            "model": model or {"d_model": 16, "layer_types": ["lstm"]},
            "train": {"steps": steps, "batch_tokens": 800, "lr": 1e-2, "warmup_steps": 2, "eval_every": 0},
        }
    )
    run = tmp_path / "run"
    return run, train(config, run, progress=False)


def test_train_on_a_table_then_generate_with_a_label(tmp_path, capsys):
    options = _table_options(write_sentiment_csv(tmp_path / "r.csv"), control_samples=2, sample_max_len=30)
    run, metrics = _train(tmp_path, options, steps=40)
    assert {"val_bpc", "val_bpc_wrong", "val_cond_gain_bpc", "control_acc", "test_label_acc"} <= set(metrics)
    assert {"tokenizer.json", "labels.json", "samples.json", "samples.md"} <= {p.name for p in run.iterdir()}
    # greedy generation by the CLI (stateful steps) == the task's sampler (prefix re-read)
    code = main(["generate", str(run), "--label", "po", "--temperature", "0", "--max-new-tokens", "30"])
    cli_text = capsys.readouterr().out.rstrip("\n")
    assert code == 0
    task = CondLMTask(options)
    model = build_model(load_run_config(run, "test").model, task.io)
    load_checkpoint(run / "checkpoint", model)
    model.eval()
    new = sample(Predictor(model), torch.tensor([[task.vocab.V + 1]]), 30, 0.0, task.vocab, torch.Generator())
    assert cli_text == task.vocab.decode(new[0])
    # a prompt is normalised (lower-cased) and continued
    assert main(["generate", str(run), "--label", "neg", "--prompt", "A DULL", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("a dull")
    # errors: unknown label, no label
    assert main(["generate", str(run), "--label", "happy"]) == 2
    assert "--label 'happy': unknown label; choose from neg, pos" in capsys.readouterr().err
    assert main(["generate", str(run)]) == 2
    assert "is a condlm run; choose a label from neg, pos" in capsys.readouterr().err


def test_generation_never_emits_a_control_token():
    from seqlab.models import ModelConfig, SequenceModel
    from seqlab.spec import IOSpec

    model = SequenceModel(ModelConfig(d_model=8, layer_types=["lstm"]), IOSpec(output_dim=10, vocab_size=10))
    with torch.no_grad():
        model.head.bias[8:] = 50.0  # ids 8, 9 (the "control tokens") dominate every step
    prompt = torch.tensor([[8, 1, 2]])
    free = model.generate(prompt, 20, 1.0, generator=torch.Generator().manual_seed(0))
    assert set(free[0, 3:].tolist()) <= {8, 9}  # unrestricted, the model picks them
    kept = model.generate(prompt, 20, 1.0, generator=torch.Generator().manual_seed(0), allowed=8)
    assert kept[0, 3:].max() < 8  # allowed=8: only text tokens are drawn
    assert model.generate(prompt, 5, 0.0, allowed=8)[0, 3:].max() < 8  # greedy too


def test_label_on_a_run_that_is_not_conditioned_is_an_error(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question.\n" * 20, encoding="utf-8")
    config = ExperimentConfig.from_dict(
        {
            "task": {"name": "charlm", "text": str(text), "seq_len": 16, "eval_windows": 2},
            "model": {"d_model": 8, "layer_types": ["lstm"]},
            "train": {"steps": 2, "batch_size": 2, "eval_every": 0},
        }
    )
    run = tmp_path / "lm"
    train(config, run, progress=False)
    assert main(["generate", str(run), "--label", "pos"]) == 2
    err = capsys.readouterr().err
    assert "run of task 'charlm', which is not conditioned on a label" in err and "'condlm'" in err
    assert main(["generate", str(run), "--max-new-tokens", "3"]) == 0  # without --label: as before


def test_a_transformer_trains_on_the_builtin_movie_reviews(tmp_path):
    model = {"d_model": 32, "layer_types": ["attention"], "mixers": {"attention": {"num_heads": 2}}}
    run, metrics = _train(tmp_path, {"control_samples": 0}, model, steps=20)
    assert metrics["val_bpc"] < math.log2(75) - 1  # well below uniform over the 73 + 2 tokens
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2))  # char tokens
    assert json.loads((run / "labels.json").read_text())["label_names"] == ["negative", "positive"]


@pytest.mark.slow
def test_an_lstm_learns_to_use_the_label_on_a_learnable_table(tmp_path):
    """~15 s: on the table (label-specific words) 150 steps make the label pay off.

    Measured: val cond_gain_bpc 0.157 (bpc 0.994 true vs 1.151 wrong label), val label_acc 0.917.
    """
    options = _table_options(write_sentiment_csv(tmp_path / "r.csv"), control_samples=4, sample_max_len=40)
    _, metrics = _train(tmp_path, options, steps=150)
    assert metrics["val_cond_gain_bpc"] > 0.05 and metrics["test_cond_gain_bpc"] > 0.05
    assert metrics["val_label_acc"] > 0.75
