"""Text classification: batches, tokenizer, metrics, baselines, predictions, the classify CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

import seqlab.tasks.classify  # noqa: F401  (registers the task)
from seqlab.cli import classify as classify_cli
from seqlab.data import LabelledTexts
from seqlab.data.datasets import load_dataset
from seqlab.errors import ConfigError, RunDirError
from seqlab.evaluation.baselines import classification_baselines, majority_baseline, ngram_logreg_baseline
from seqlab.tasks.base import IGNORE, build_task
from seqlab.tasks.classify import ClassifyTask, make_batch
from seqlab.training import ExperimentConfig, train
from tables import write_sentiment_csv


def _table_task(path, **options):
    return ClassifyTask({"table": str(path), "text_column": "review", "label_column": "sentiment"} | options)


def _config(path, run_steps=30, **task):
    options = {"name": "classify", "table": str(path), "text_column": "review", "label_column": "sentiment"}
    options["preprocess"] = {"punctuation": "strip", "stop_words": {"keep": ["great"]}}  # the CLI repeats it
    return ExperimentConfig.from_dict(
        {
            "task": options | {"min_frequency": 1} | task,
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {"steps": run_steps, "batch_size": 16, "lr": 1e-2, "warmup_steps": 2, "eval_every": 0},
        }
    )


def _parser():
    parser = argparse.ArgumentParser(prog="seqlab")
    sub = parser.add_subparsers(dest="command", required=True)
    classify_cli.add_parser(sub, argparse.ArgumentParser(add_help=False))
    return parser


# -- batches -----------------------------------------------------------------------------------------


def test_the_label_is_scored_at_the_last_real_token_and_padding_is_masked():
    batch = make_batch([torch.tensor([7, 9, 8, 4]), torch.tensor([10, 11, 4])], [1, 0])
    assert batch.inputs.tolist() == [[7, 9, 8, 4], [10, 11, 4, 0]]  # the docstring's worked example
    assert batch.mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert batch.targets.tolist() == [[IGNORE] * 3 + [1], [IGNORE, IGNORE, 0, IGNORE]]
    assert batch.target_mask.tolist() == [[False] * 3 + [True], [False, False, True, False]]
    assert batch.lengths.tolist() == [4, 3] and batch.labels.tolist() == [1, 0]


def test_task_batches_end_in_cls_are_truncated_and_bucketed(tmp_path):
    task = _table_task(write_sentiment_csv(tmp_path / "r.csv"), max_len=4, min_frequency=1)
    cls = task.tokenizer.cls_id
    g = torch.Generator().manual_seed(0)
    batch = task.train_batch(8, g)
    last = batch.inputs[torch.arange(8), batch.lengths - 1]
    assert (last == cls).all() and batch.lengths.max() <= 4  # first max_len - 1 tokens, then [CLS]
    assert (batch.inputs[~batch.mask] == task.tokenizer.pad_id).all()
    assert batch.target_mask.sum(dim=1).tolist() == [1] * 8
    assert torch.equal(batch.targets[batch.target_mask], batch.labels)
    full = ClassifyTask(None)  # movie-reviews: texts of many lengths
    padding = []
    for _ in range(20):
        b = full.train_batch_tokens(512, g)
        assert b.inputs.numel() <= 512 and b.inputs.shape[0] >= 512 // full.train_length
        padding.append(1 - b.mask.float().mean().item())
    assert sum(padding) / len(padding) < 0.2  # one length bucket per batch: little padding
    b = full.train_batch(32, g)
    assert 1 - b.mask.float().mean().item() > 0.2  # uniform draws pad to the longest of 32
    with pytest.raises(ConfigError, match="smaller than one training sequence"):
        full.train_batch_tokens(8, g)


def test_the_tokenizer_is_fitted_on_the_training_split_only(tmp_path):
    path = write_sentiment_csv(tmp_path / "r.csv")
    task = _table_task(path, min_frequency=1)
    train_words = {w for t in task.raw["train"].texts for w in t.lower().replace(",", " , ").split()}
    held_out_only = {w for s in ("validation", "test") for t in task.raw[s].texts for w in t.split()}
    held_out_only -= train_words
    assert held_out_only  # the numbers make some held-out words new
    vocab = set(task.tokenizer.tokens)
    assert not held_out_only & vocab
    assert set(task.tokenizer.tokens[7:]) <= train_words
    assert task.io.vocab_size == task.tokenizer.vocab_size and task.io.output_dim == 2


def test_config_errors():
    with pytest.raises(ConfigError, match="mutually exclusive"):
        ClassifyTask({"dataset": "movie-reviews", "table": "x.csv"})
    with pytest.raises(ConfigError, match="not a labelled-text dataset"):
        ClassifyTask({"dataset": "cmudict"})
    with pytest.raises(ConfigError, match="split"):
        ClassifyTask({"split": [1.0]})


# -- metrics and predictions -------------------------------------------------------------------------


def test_metrics_equal_scikit_learn_and_predictions_are_written(tmp_path):
    task = _table_task(write_sentiment_csv(tmp_path / "r.csv", n=200), min_frequency=1)
    weights = torch.randn(task.io.vocab_size, 2, generator=torch.Generator().manual_seed(1))
    predict = lambda b: weights[b.inputs] * b.mask[..., None]  # noqa: E731  (B, T, 2) fixed scores
    task.save(tmp_path)
    metrics = task.evaluate(predict, batch_size=7)
    assert not (tmp_path / "predictions.jsonl").exists()  # evaluating writes nothing
    task.write_predictions(tmp_path, predict, batch_size=7)  # the trainer's / `seqlab evaluate`'s hook
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    names = task.label_names
    y_true = [names.index(r["true"]) for r in rows]
    y_pred = [names.index(r["predicted"]) for r in rows]
    assert y_true == task.raw["test"].labels and [r["text"] for r in rows] == task.raw["test"].texts
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    assert metrics["test_acc"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert (metrics["test_precision"], metrics["test_recall"], metrics["test_f1"]) == pytest.approx((p, r, f))
    assert metrics["test_confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()
    probs = np.array([[row["probabilities"][n] for n in names] for row in rows])
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs.argmax(1) == y_pred).all()
    # errors grouped by true -> predicted, every mistake once
    errors = json.loads((tmp_path / "errors.json").read_text())
    wrong = sum(t != q for t, q in zip(y_true, y_pred))
    assert errors["errors"] == wrong == sum(g["count"] for g in errors["groups"])
    for g in errors["groups"]:
        assert all(rows[x["index"]]["true"] == g["true"] != g["predicted"] for x in g["examples"])
    assert "true → predicted" in (tmp_path / "errors.md").read_text()
    assert json.loads((tmp_path / "labels.json").read_text()) == {"label_names": ["neg", "pos"]}


# -- baselines ---------------------------------------------------------------------------------------


def test_baselines_on_movie_reviews():
    splits = load_dataset("movie-reviews")
    majority = majority_baseline(splits)
    logreg = ngram_logreg_baseline(splits, Cs=(4.0, 8.0))  # two of the default grid: a few seconds
    assert majority["test_acc"] == pytest.approx(533 / 1057)  # the card: 533 negative of 1,057
    assert logreg["test_acc"] > 0.75 > majority["test_acc"]  # measured: 0.7947 (C = 8 on validation)
    assert logreg["test_f1"] > majority["test_f1"] and logreg["C"] == 8.0
    assert logreg["val_acc"] == max(logreg["val_by_C"].values())


@pytest.mark.slow
def test_baselines_default_grid_on_movie_reviews():
    result = classification_baselines(load_dataset("movie-reviews"))
    assert result["logreg"]["C"] == 8.0 and result["logreg"]["test_acc"] == pytest.approx(0.7947, abs=0.002)


def test_baselines_on_a_tiny_split():
    def part(pairs):
        return LabelledTexts([t for t, _ in pairs], [y for _, y in pairs], ["neg", "pos"])

    splits = {
        "train": part([("good fun", 1), ("great fun", 1), ("bad mess", 0), ("awful mess", 0), ("bad", 0)]),
        "validation": part([("good", 1), ("awful", 0)]),
        "test": part([("great", 1), ("mess", 0)]),
    }
    assert majority_baseline(splits)["label"] == "neg" and majority_baseline(splits)["test_acc"] == 0.5
    assert ngram_logreg_baseline(splits, Cs=[10.0])["test_acc"] == 1.0
    with pytest.raises(ConfigError, match="expected LabelledTexts"):
        majority_baseline({"train": splits["train"]})


# -- end to end --------------------------------------------------------------------------------------


def test_train_a_small_lstm_on_a_user_csv_then_classify(tmp_path, capsys):
    path = write_sentiment_csv(tmp_path / "reviews.csv")
    run = tmp_path / "run"
    metrics = train(_config(path, run_steps=100), run, progress=False)
    assert metrics["val_acc"] >= 0.75 and "test_f1" in metrics
    assert {"tokenizer.json", "labels.json", "predictions.jsonl", "errors.json", "errors.md"} <= {
        p.name for p in run.iterdir()
    }
    args = _parser().parse_args(["classify", str(run), "i loved it , great", "dull , i hated it"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]
    args = _parser().parse_args(["classify", str(run), "great", "--json", "--top-k", "2"])
    args.func(args)
    (result,) = json.loads(capsys.readouterr().out)
    assert result["label"] == "pos" and list(result["probabilities"]) == ["pos", "neg"]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # the CLI and the task agree on the probabilities of the test texts
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    again = classify_cli.load_classifier(run).classify([r["text"] for r in rows[:5]])
    for row, res in zip(rows, again):
        assert res["probabilities"] == pytest.approx(row["probabilities"], abs=1e-5)


def test_classify_refuses_other_runs(tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        classify_cli.load_classifier(tmp_path)
    args = _parser().parse_args(["classify", str(tmp_path), "x", "--top-k", "0"])
    with pytest.raises(ConfigError, match="--top-k"):
        args.func(args)


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("text,sentiment\nnice,pos\n", "column 'review' does not exist"),
        (b'review,sentiment\n"caf\xe9",pos\n', "not valid UTF-8"),
        ("", "empty"),
        ("review,sentiment\n" + "".join(f"t{i},pos\n" for i in range(20)), "fewer than 2 labels"),
    ],
)
def test_a_bad_table_stops_training_before_the_run_directory_exists(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=message) as err:
        train(_config(path), run, progress=False)
    assert "bad.csv" in str(err.value)  # every message names the file
    assert not run.exists()


def test_a_bad_table_through_the_cli_is_one_error_line(tmp_path, capsys):
    from seqlab.cli.main import main

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'review,sentiment\n"fine",pos\n"na\xefve",neg\n')
    run = tmp_path / "run"
    assert main(["train", "--task", "classify", "--set", f"task.table={bad}", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.csv:3:" in err[-1] and "not valid UTF-8" in err[-1]
    assert not run.exists()


def test_the_task_builds_by_name():
    task = build_task("classify", {"tokenizer": "char", "max_len": 300})
    assert task.tokenizer.kind == "char" and task.primary_metric == "val_acc"
