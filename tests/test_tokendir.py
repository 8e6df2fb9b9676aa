"""Token directories: prepare once (streamed), train the LM from the memory map, resume nothing lost."""

from __future__ import annotations

import json

import pytest
import torch

from seqlab.cli.main import main
from seqlab.data import load_tokenizer, read_text
from seqlab.data.tokendir import open_token_dir, prepare_token_dir, split_file
from seqlab.errors import ConfigError
from seqlab.tasks import build_task
from seqlab.training import ExperimentConfig, train

TEXT = read_text(None)[:60_000]  # the built-in tragedies


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_split_file_cuts_at_a_line_start(corpus):
    cut, tail = split_file(corpus, 0.1)
    data = corpus.read_bytes()
    assert data[cut - 1 : cut] == b"\n" and tail == data[cut:].decode()
    assert 0.09 < len(tail) / len(TEXT) < 0.11


@pytest.mark.parametrize("kind, vocab", [("char", None), ("bpe", 300), ("word", None)])
def test_prepared_ids_equal_encoding_the_training_part(tmp_path, corpus, kind, vocab):
    summary = prepare_token_dir(tmp_path / "tok", train=corpus, val_fraction=0.1, kind=kind, vocab_size=vocab)
    tokenizer, tokens, held_out = open_token_dir(tmp_path / "tok")
    cut, tail = split_file(corpus, 0.1)
    train_text = corpus.read_bytes()[:cut].decode()
    assert held_out == tail and train_text + held_out == TEXT
    assert tokens[:].tolist() == tokenizer.encode(train_text)
    assert summary["train_tokens"] == len(tokens) and summary["tokenizer"] == kind
    assert tokenizer.decode(tokens[:].tolist()) == train_text  # char, byte-level BPE, LM words round-trip
    if kind == "word":  # trained on chunks, as encoded: whitespace runs across lines are words too
        assert tokenizer.token_to_id("\n\n") is not None


def test_a_failed_preparation_leaves_the_previous_directory(tmp_path, corpus, monkeypatch):
    out = tmp_path / "tok"
    prepare_token_dir(out, train=corpus, val_fraction=0.1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        prepare_token_dir(out, train=corpus, val_fraction=0.1)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("seqlab.data.tokendir.write_token_file", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_token_dir(out, train=corpus, val_fraction=0.2, kind="bpe", vocab_size=300, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "tok"]  # no temp dir left
    monkeypatch.undo()
    prepare_token_dir(out, train=corpus, val_fraction=0.2, kind="bpe", vocab_size=300, overwrite=True)
    assert load_tokenizer(out / "tokenizer.json").kind == "bpe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "tok"]  # the old one is gone


def test_overwrite_only_replaces_token_directories(tmp_path, corpus):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="is not a token directory"):
        prepare_token_dir(precious, train=corpus, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"
    with pytest.raises(ConfigError, match="is not a token directory"):
        prepare_token_dir(corpus, train=corpus, overwrite=True)  # a file


def test_bad_inputs_are_named(tmp_path, corpus):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n" * 50 + b"caf\xe9\n" + b"more\n" * 5)
    with pytest.raises(ConfigError, match=r"bad.txt:51:4: not valid UTF-8"):
        prepare_token_dir(tmp_path / "t", train=bad, val_fraction=0.02)
    with pytest.raises(ConfigError, match="no such file"):
        prepare_token_dir(tmp_path / "t", train=tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="missing.txt: no such file"):
        prepare_token_dir(tmp_path / "t", train=corpus, validation=tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="not a token directory .*missing tokenizer.json"):
        open_token_dir(tmp_path)
    assert not (tmp_path / "t").exists()


def test_lm_trains_from_the_memory_map_with_random_windows_and_tbptt(tmp_path, corpus):
    prepare_token_dir(tmp_path / "tok", train=corpus, val_fraction=0.1, kind="bpe", vocab_size=300)
    task = build_task("charlm", {"tokens": str(tmp_path / "tok"), "seq_len": 16}, seed=0)
    batch = task.train_batch(4, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (4, 16) and torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    L = task.stream_rows(4)
    first, second = task.stream_batch(4, 0, 8), task.stream_batch(4, 8, 8)
    row0 = task.train_tokens[0:17]
    assert torch.equal(torch.cat([first.inputs[0], second.inputs[0]]), row0[:16]) and L > 16
    for tbptt in (0, 8):
        config = ExperimentConfig.from_dict(
            {
                "task": {"name": "charlm", "tokens": str(tmp_path / "tok"), "seq_len": 16, "eval_windows": 4},
                "model": {"d_model": 32, "layer_types": ["lstm"]},
                "train": {"steps": 3, "batch_size": 4, "eval_every": 3, "tbptt": tbptt},
            }
        )
        metrics = train(config, tmp_path / f"run{tbptt}")
        assert metrics["val_bpc"] > 0 and (tmp_path / f"run{tbptt}" / "tokenizer.json").is_file()
    assert load_tokenizer(tmp_path / "run0" / "tokenizer.json").tokens == task.tokenizer.tokens


def test_sources_are_exclusive_and_a_token_dir_fixes_the_tokenizer():
    with pytest.raises(ConfigError, match="mutually exclusive.*text=.*tokens="):
        build_task("charlm", {"text": "a.txt", "tokens": "dir"}, seed=0)
    with pytest.raises(ConfigError, match="brings its own tokenizer.*drop tokenizer='bpe', vocab_size=64"):
        build_task("charlm", {"tokens": "dir", "tokenizer": "bpe", "vocab_size": 64}, seed=0)


def test_cli_prepare_then_train_then_generate(tmp_path, corpus, capsys):
    out = tmp_path / "tok"
    assert main(["data", "prepare", "tokens", "--text", str(corpus), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tokenizer"] == "char" and summary["dtype"] == "uint16"
    run = tmp_path / "run"
    args = ["train", "--task", "charlm", "--model", "lstm", "--out", str(run), "--json"]
    sets = [
        "task.tokens=" + str(out),
        "task.seq_len=16",
        "train.steps=2",
        "train.eval_every=2",
        "model.d_model=16",
    ]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "KING", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("KING")
    assert main(["data", "prepare", "tokens", "--dataset", "cmudict", "--out", str(tmp_path / "x")]) == 2
    assert "not a text dataset" in capsys.readouterr().err


def test_a_bad_text_file_stops_training_before_the_run_directory_exists(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\n" * 20 + b"\xff\xfe broken\n")
    run = tmp_path / "run"
    assert main(["train", "--task", "charlm", "--set", f"task.text={bad}", "--out", str(run)]) == 2
    assert "bad.txt:21:1: not valid UTF-8" in capsys.readouterr().err
    assert not run.exists()
