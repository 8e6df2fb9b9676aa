"""Seq2seq on text pairs (task pairs): batches, tokenizers, metrics, training, the translate CLI."""

from __future__ import annotations

import argparse
import itertools
import json
import math

import pytest
import torch

import seqlab.tasks.pairs  # noqa: F401  (registers the tasks)
from seqlab.cli import translate as translate_cli
from seqlab.errors import ConfigError, RunDirError
from seqlab.metrics.text import bleu, chrf, exact_match, phoneme_error_rate, word_error_rate
from seqlab.tasks.base import IGNORE
from seqlab.tasks.pairs import PairsTask, make_pair_batch, score_decoded
from seqlab.training import ExperimentConfig, train

LETTERS = "abcdef"


def _word(i: int) -> str:
    """A deterministic 2–5 letter word over LETTERS."""
    n, word = 2 + i % 4, ""
    for k in range(n):
        word += LETTERS[(i * 7 + k * (i % 5 + 1)) % len(LETTERS)]
    return word


def _write_tsv(path, n=240):
    """A learnable 'G2P' table: each letter becomes its upper-case symbol + '1' (a -> A1)."""
    rows = ["word\tphones"]
    words = sorted({_word(i) for i in range(n)})
    rows += [f"{w}\t{' '.join(c.upper() + '1' for c in w)}" for w in words]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _options(path, **kw):
    base = {"table": str(path), "source_column": "word", "target_column": "phones"}
    return base | {"source_tokenizer": "char", "target_tokenizer": "space"} | kw


def _config(path, steps=300, **task):
    return ExperimentConfig.from_dict(
        {
            "task": {"name": "pairs"} | _options(path, **task),
            "model": {
                "arch": "rnn-seq2seq",
                "embedding_size": 16,
                "hidden_size": 32,
                "encoder_hidden_size": 16,
                "attention_size": 16,
                "dropout": 0.0,
            },
            "train": {"steps": steps, "batch_size": 32, "lr": 1e-2, "warmup_steps": 10, "eval_every": 0},
        }
    )


def _parser():
    parser = argparse.ArgumentParser(prog="seqlab")
    sub = parser.add_subparsers(dest="command", required=True)
    translate_cli.add_parser(sub, argparse.ArgumentParser(add_help=False))
    return parser


# -- batches -----------------------------------------------------------------------------------------


def test_batch_layout_matches_the_docstring_example():
    batch = make_pair_batch(
        [torch.tensor([7, 8]), torch.tensor([8])], [torch.tensor([9, 10]), torch.tensor([10])], 0, 2, 3
    )
    assert batch.source.tolist() == [[7, 8], [8, 0]]
    assert batch.source_mask.tolist() == [[True, True], [True, False]]
    assert batch.inputs.tolist() == [[2, 9, 10], [2, 10, 0]]
    assert batch.targets.tolist() == [[9, 10, 3], [10, 3, IGNORE]]
    assert batch.mask.tolist() == [[True] * 3, [True, True, False]]
    assert torch.equal(batch.target_mask, batch.mask)


def test_inference_batches_hold_only_bos():
    batch = make_pair_batch([torch.tensor([5, 6, 7])], None, 0, 2, 3)
    assert batch.inputs.tolist() == [[2]] and batch.targets.tolist() == [[3]]


def test_task_batches_and_length_caps(tmp_path):
    task = PairsTask(_options(_write_tsv(tmp_path / "p.tsv"), max_source_len=4, max_target_len=4))
    assert task.dropped > 0  # 5-letter words are dropped from training ...
    assert all(len(s) <= 4 for s in task.raw["train"].sources)
    assert max(len(s) for s in task.raw["validation"].sources) <= 5  # ... kept (truncated) elsewhere
    assert all(len(s) <= 4 for s in task.data["validation"][0])
    g = torch.Generator().manual_seed(0)
    batch = task.train_batch(8, g)
    assert (batch.inputs[:, 0] == task.bos).all()
    n = batch.target_mask.sum(dim=1)
    assert batch.targets[torch.arange(8), n - 1].eq(task.eos).all()
    tokens = task.train_batch_tokens(60, g)
    assert tokens.source.shape[0] * (tokens.source.shape[1] + tokens.inputs.shape[1]) <= 60


def test_tokenizers_are_fitted_on_the_training_split_only(tmp_path):
    path = tmp_path / "p.tsv"
    words = ["".join(w) for n in (2, 3, 4) for w in itertools.product("ab", repeat=n)]
    rows = [f"{w}\t{' '.join(c.upper() for c in w)}" for w in [*words, "xyz"]]
    path.write_text("word\tphones\n" + "\n".join(rows) + "\n", encoding="utf-8")
    task = PairsTask(_options(path, split=[0.5, 0.5], seed=4))
    assert "xyz" not in task.raw["train"].sources  # (seed 4 puts it in validation)
    seen = set("".join(task.raw["train"].sources))
    assert set(task.encoder.source.tokens[7:]) == seen == {"a", "b"}
    assert task.data["validation"][0][task.raw["validation"].sources.index("xyz")].tolist() == [1, 1, 1]
    phones = {p for t in task.raw["train"].targets for p in t.split()}
    assert set(task.encoder.target.tokens[7:]) == phones
    assert task.encoder.source.kind == "char" and task.encoder.metrics == "g2p"


# -- metrics -----------------------------------------------------------------------------------------


def test_decoded_metrics_equal_the_metric_functions():
    hyps, refs = ["K AE1 T", "D AO1 G", "B ER1 D Z"], ["K AE1 T", "D AA1 G", "B ER1 D"]
    g2p = score_decoded(hyps, refs, "g2p", "val")
    assert g2p["val_per"] == pytest.approx(phoneme_error_rate(hyps, refs)) == pytest.approx(2 / 9)
    assert g2p["val_wer_g2p"] == pytest.approx(1 - exact_match(hyps, refs)) == pytest.approx(2 / 3)
    hyps, refs = ["the cat sat on the mat", "hello there"], ["the cat sat on a mat", "hello there"]
    text = score_decoded(hyps, refs, "text", "test")
    assert text["test_bleu"] == pytest.approx(bleu(hyps, refs)["score"])
    assert text["test_chrf"] == pytest.approx(chrf(hyps, refs)["score"])
    assert text["test_wer"] == pytest.approx(word_error_rate(hyps, refs))
    assert text["test_exact_match"] == 0.5


# -- training and translate ----------------------------------------------------------------------------


def test_train_on_a_user_tsv_then_translate(tmp_path, capsys):
    run = tmp_path / "run"
    metrics = train(_config(_write_tsv(tmp_path / "p.tsv")), run, progress=False)
    for key in ("val_loss", "val_acc", "val_per", "val_wer_g2p", "test_per", "test_exact_match"):
        assert math.isfinite(metrics[key]), key
    assert metrics["test_per"] < 0.5  # the mapping is learnt (a -> A1 ...), not memorised noise
    names = {p.name for p in run.iterdir()}
    assert {"source_tokenizer.json", "target_tokenizer.json", "predictions.jsonl"} <= names
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"source", "reference", "hypothesis", "correct"}
    assert exact_match([r["hypothesis"] for r in rows], [r["reference"] for r in rows]) == pytest.approx(
        metrics["test_exact_match"]
    )
    # the CLI's greedy output is the task's decoding; the beam finds at least as likely outputs
    translator = translate_cli.load_translator(run)
    greedy = translator.translate([r["source"] for r in rows])
    assert [g["hypothesis"] for g in greedy] == [r["hypothesis"] for r in rows]
    beam = translator.translate([r["source"] for r in rows], beam=4)
    assert all(b["score"] >= g["score"] - 1e-5 for b, g in zip(beam, greedy))
    args = _parser().parse_args(["translate", str(run), "ABC", "fed", "--beam", "3"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["ABC", "fed"]  # lower-cased only for the model
    args = _parser().parse_args(["translate", str(run), "ab", "--json", "--max-len", "1"])
    args.func(args)
    (result,) = json.loads(capsys.readouterr().out)
    assert set(result) == {"text", "hypothesis", "score"} and len(result["hypothesis"].split()) <= 1


def test_translate_refuses_other_runs_and_bad_options(tmp_path):
    with pytest.raises(RunDirError, match="not a run directory"):
        translate_cli.load_translator(tmp_path)
    run = tmp_path / "run"
    train(_config(_write_tsv(tmp_path / "p.tsv"), steps=2), run, progress=False)
    with pytest.raises(ConfigError, match="--beam"):
        translate_cli.load_translator(run).translate(["ab"], beam=0)


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("word\tother\nab\tA B\n", "column 'phones' does not exist"),
        ("word\tphones\nab\tA B\ncd\n", "p.tsv"),
        ("word\tphones\nab\tA B\nabc\t \nba\tB A\n", "pair 2 has an empty target"),
    ],
)
def test_a_bad_table_stops_training_before_the_run_directory_exists(tmp_path, content, message):
    path = tmp_path / "p.tsv"
    path.write_text(content, encoding="utf-8")
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        train(_config(path), run, progress=False)
    assert not run.exists()


def test_dataset_and_table_are_exclusive_and_defaults_follow_the_dataset():
    with pytest.raises(ConfigError, match="mutually exclusive"):
        PairsTask({"dataset": "cmudict", "table": "x.tsv"})
    from seqlab.tasks.pairs import PairEncoder, PairsConfig

    g2p = PairEncoder(PairsConfig())
    assert (g2p.source_kind, g2p.target_kind, g2p.metrics, g2p.lowercase) == ("char", "space", "g2p", True)
    mt = PairEncoder(PairsConfig(), "translation-en-es")
    assert (mt.source_kind, mt.target_kind, mt.metrics, mt.shared) == ("bpe", "bpe", "text", True)


def test_a_shared_vocabulary_transformer_reports_text_metrics(tmp_path):
    path = tmp_path / "mt.tsv"
    pairs = [(f"the {w} cat", f"el gato {w}") for w in ("red", "big", "old", "new", "fat", "shy") * 3]
    text = "source\ttarget\n" + "".join(f"{s} {i}\t{t} {i}\n" for i, (s, t) in enumerate(pairs))
    path.write_text(text, encoding="utf-8")
    config = ExperimentConfig.from_dict(
        {
            "task": {
                "name": "pairs",
                "table": str(path),
                "source_tokenizer": "word",
                "shared_vocabulary": True,
            },
            "model": {
                "arch": "transformer-seq2seq",
                "d_model": 16,
                "num_heads": 2,
                "d_ff": 32,
                "dropout": 0.0,
            },
            "train": {"steps": 5, "batch_size": 8, "lr": 1e-2, "warmup_steps": 1, "eval_every": 0},
        }
    )
    run = tmp_path / "run"
    metrics = train(config, run, progress=False)
    assert {"val_bleu", "val_chrf", "val_wer", "test_bleu", "test_chrf", "test_exact_match"} <= set(metrics)
    assert "val_per" not in metrics
    assert (run / "source_tokenizer.json").read_text() == (run / "target_tokenizer.json").read_text()
    (greedy,) = translate_cli.load_translator(run).translate(["the red cat 1"], max_len=5)
    (beam,) = translate_cli.load_translator(run).translate(["the red cat 1"], beam=3, max_len=5)
    assert len(greedy["hypothesis"].split()) <= 5 and math.isfinite(beam["score"])
