"""The language-model task's tokenizer and data-source options (charlm)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqlab.data import SPECIAL_TOKENS, CharTokenizer, load_tokenizer, read_text
from seqlab.data.datasets import DATASETS, DataCard, Dataset, load_dataset
from seqlab.data.types import Text, TextPairs
from seqlab.errors import ConfigError
from seqlab.tasks.base import build_task
from seqlab.training import ExperimentConfig, train

CORPUS = read_text(None)
TINY_TRAIN = CORPUS[:30_000]
TINY_VAL = CORPUS[30_000:36_000] + " zyzzyva quux"  # two words the training split never has


def _card(name: str, kind: str) -> DataCard:
    return DataCard(name, kind, "test data", "tests", "public domain", "sliced", {"train": 1}, "characters")


if "test-lm-tokenizers-tiny" not in DATASETS:

    @DATASETS.register("test-lm-tokenizers-tiny")
    class _TinyText(Dataset):
        card = _card("test-lm-tokenizers-tiny", "text")

        def load(self) -> dict:
            return {"train": Text(TINY_TRAIN), "validation": Text(TINY_VAL)}

    @DATASETS.register("test-lm-tokenizers-pairs")
    class _TinyPairs(Dataset):
        card = _card("test-lm-tokenizers-pairs", "pairs")

        def load(self) -> dict:
            return {"train": TextPairs(["a"], ["b"]), "validation": TextPairs(["c"], ["d"])}


def _uniform(task):
    V = task.io.output_dim
    return task.evaluate(lambda b: torch.zeros(*b.inputs.shape, V), 16)


def test_default_keeps_the_historical_character_vocabulary(tmp_path):
    task = build_task("charlm", {"seq_len": 32, "eval_windows": 4})
    assert isinstance(task.tokenizer, CharTokenizer)
    assert task.tokenizer.tokens == sorted(set(CORPUS)) and task.tokenizer.special_tokens == []
    split = int(len(CORPUS) * 0.9)
    assert task.train_data.tolist() == task.tokenizer.encode(CORPUS[:split])
    task.save(tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text()) == {
        "type": "char",
        "chars": sorted(set(CORPUS)),
    }
    metrics = _uniform(task)
    assert metrics["val_bpc"] == pytest.approx(math.log2(task.io.output_dim))
    assert metrics["val_bpc"] == pytest.approx(metrics["val_loss"] / math.log(2))


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece", "unigram"])
def test_subword_lm_bits_per_character_counts_the_characters_the_tokens_cover(kind):
    options = {"vocab_size": 300} | ({"min_frequency": 2} if kind != "unigram" else {})
    task = build_task(
        "charlm", {"dataset": "test-lm-tokenizers-tiny", "tokenizer": kind, "seq_len": 16} | options
    )
    assert task.tokenizer.kind == kind and task.io.vocab_size == task.tokenizer.vocab_size <= 300
    metrics = _uniform(task)
    predicted = min(64, (len(task.val_data) - 1) // 16) * 16  # eval_windows (64) of seq_len (16)
    ids, spans = task.tokenizer.encode_with_offsets(TINY_VAL)
    assert ids == task.val_data.tolist()
    chars = spans[predicted][1] - spans[0][1]  # token 0 is context only
    V = task.io.output_dim
    assert metrics["val_loss"] == pytest.approx(math.log(V))  # nats per token
    assert metrics["val_bpc"] == pytest.approx(predicted * math.log2(V) / chars)
    assert metrics["val_bpc"] < math.log2(V)  # every token covers at least one character
    assert chars > 1.2 * predicted  # subword tokens span more than one character on average


def test_the_tokenizer_learns_from_the_training_split_only():
    task = build_task("charlm", {"dataset": "test-lm-tokenizers-tiny", "tokenizer": "word", "seq_len": 16})
    assert task.tokenizer.token_to_id(" zyzzyva") is None  # only in the validation split
    assert task.tokenizer.unk_id in task.val_data.tolist()
    assert task.tokenizer.decode(task.train_data) == TINY_TRAIN  # words keep their spaces
    options = {"dataset": "test-lm-tokenizers-tiny", "tokenizer": "char", "min_frequency": 2}
    char = build_task("charlm", options).tokenizer
    rare = {c for c in set(TINY_TRAIN + TINY_VAL) if TINY_TRAIN.count(c) < 2}
    assert rare and char.special_tokens == list(SPECIAL_TOKENS)
    assert set(char.chars) == set(TINY_TRAIN) - rare  # seen twice in the training split


def test_text_and_dataset_are_mutually_exclusive(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("abc" * 100)
    one_source = r"text, dataset and tokens are mutually exclusive: give one source, not text=.* and dataset="
    with pytest.raises(ConfigError, match=one_source):
        build_task("charlm", {"text": str(text), "dataset": "test-lm-tokenizers-tiny"})


def test_dataset_errors_name_the_problem():
    with pytest.raises(ConfigError, match="'test-lm-tokenizers-pairs' is not a text dataset .*TextPairs"):
        build_task("charlm", {"dataset": "test-lm-tokenizers-pairs"})
    with pytest.raises(
        KeyError, match="unknown dataset 'no-such-corpus'; choose from: .*test-lm-tokenizers-tiny"
    ):
        build_task("charlm", {"dataset": "no-such-corpus"})
    with pytest.raises(ConfigError, match="task.tokenizer: expected one of 'char', 'word', 'bpe'"):
        ExperimentConfig.from_dict({"task": {"name": "charlm", "tokenizer": "sentencepiece"}})


def test_a_user_text_with_bpe(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(CORPUS[:20_000], encoding="utf-8")
    task = build_task("charlm", {"text": str(text), "tokenizer": "bpe", "vocab_size": 300, "seq_len": 16})
    split = int(20_000 * 0.9)
    assert task.tokenizer.decode(task.train_data) == CORPUS[:split]
    assert task.tokenizer.decode(task.val_data) == CORPUS[split:20_000]
    with pytest.raises(ConfigError, match=r"held-out split has \d+ bpe tokens, fewer than seq_len \+ 1"):
        build_task("charlm", {"text": str(text), "tokenizer": "bpe", "vocab_size": 300, "seq_len": 4000})


def _config(steps: int, **train_options) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "task": {
                "name": "charlm",
                "dataset": "test-lm-tokenizers-tiny",
                "tokenizer": "bpe",
                "vocab_size": 320,
                "min_frequency": 2,
                "seq_len": 16,
                "eval_windows": 4,
            },
            "model": {"d_model": 16, "layer_types": ["lstm"]},
            "train": {
                "steps": steps,
                "batch_size": 4,
                "lr": 1e-2,
                "warmup_steps": 1,
                "eval_every": 0,
                "log_every": 1,
                "tensorboard": False,
            }
            | train_options,
        }
    )


def test_bpe_lm_trains_end_to_end_and_its_tokenizer_reloads(tmp_path):
    metrics = train(_config(5), tmp_path, progress=False)
    assert math.isfinite(metrics["val_bpc"]) and math.isfinite(metrics["val_loss"])
    assert metrics["val_bpc"] < metrics["val_loss"] / math.log(2)  # > 1 character per token
    tok = load_tokenizer(tmp_path / "tokenizer.json")
    task = build_task("charlm", _config(5).task.options)
    assert tok.kind == "bpe" and tok.vocab_size == task.tokenizer.vocab_size
    assert tok.encode(TINY_VAL) == task.tokenizer.encode(TINY_VAL)
    assert tok.decode(tok.encode(TINY_VAL)) == TINY_VAL


def test_bpe_lm_streams_for_truncated_bptt(tmp_path):
    metrics = train(_config(3, tbptt=8), tmp_path, progress=False)
    assert math.isfinite(metrics["val_bpc"])


def test_bpe_lm_on_shakespeare_round_trips_its_validation_split():
    if "shakespeare" not in DATASETS:
        pytest.skip("the shakespeare dataset is not registered")
    options = {"dataset": "shakespeare", "tokenizer": "bpe", "vocab_size": 2048, "min_frequency": 2}
    task = build_task("charlm", options)
    val = load_dataset("shakespeare")["validation"].text
    assert task.tokenizer.decode(task.val_data) == val
    assert len(task.val_data) < 0.4 * len(val)  # about 3 characters per token
