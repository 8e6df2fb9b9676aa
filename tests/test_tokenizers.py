"""Tokenizers: round trips per kind, special tokens, vocabulary limits, save/load, clear errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
import torch

from seqlab.data import (
    SPECIAL_TOKENS,
    CharTokenizer,
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    read_text,
    train_tokenizer,
)
from seqlab.data.tokenizers import LM_WORD_PATTERN, build_vocab
from seqlab.errors import ConfigError, RunDirError, ShapeError

KINDS = ["char", "word", "bpe", "wordpiece", "unigram"]
CORPUS = read_text(None)  # the built-in tragedies, 0.4 M characters
TRAIN = CORPUS[:60_000]
VAL = CORPUS[60_000:70_000]
LINES = TRAIN.splitlines(keepends=True)


def _train(kind: str, **options) -> Tokenizer:
    size = {"char": None, "word": None, "bpe": 400, "wordpiece": 400, "unigram": 400}[kind]
    return train_tokenizer(
        kind, LINES if kind not in ("char", "word") else [TRAIN], vocab_size=size, **options
    )


@pytest.fixture(scope="module")
def trained() -> dict[str, Tokenizer]:
    return {kind: _train(kind) for kind in KINDS}


# -- round trips --------------------------------------------------------------------------------


def test_bpe_round_trips_any_text_exactly(trained):
    bpe = trained["bpe"]
    odd = "héllo  wörld\n\n  日本語 🙂\ttab  \r\nend [MASK] ▁x  "  # unseen characters, runs of spaces
    for text in [VAL, odd, "", " ", "\n\n\n"]:
        ids = bpe.encode(text)
        assert bpe.decode(ids) == text
        assert bpe.unk_id not in ids  # byte-level: nothing is unknown


def test_bpe_trained_on_the_corpus_round_trips_its_validation_text():
    cut = int(len(CORPUS) * 0.9)
    bpe = train_tokenizer("bpe", CORPUS[:cut].splitlines(keepends=True), vocab_size=2000, min_frequency=2)
    ids = bpe.encode(CORPUS[cut:])
    assert bpe.decode(ids) == CORPUS[cut:]
    assert len(ids) < 0.5 * len(CORPUS[cut:])  # it does compress: > 2 characters per token


def test_bpe_on_shakespeare_round_trips_the_validation_text():
    from seqlab.data.datasets import load_dataset

    splits = load_dataset("shakespeare")
    train, val = splits["train"].text, splits["validation"].text
    bpe = train_tokenizer("bpe", train.splitlines(keepends=True), vocab_size=4096, min_frequency=2)
    assert bpe.decode(bpe.encode(val)) == val


def test_char_and_lm_word_round_trip_exactly_within_their_vocabulary(trained):
    assert trained["char"].decode(trained["char"].encode(VAL)) == VAL
    word = train_tokenizer("word", [VAL], pattern=LM_WORD_PATTERN, separator="")
    assert word.decode(word.encode(VAL)) == VAL
    assert word.encode(VAL).count(word.unk_id) == 0


def test_default_word_tokenizer_normalises_whitespace(trained):
    word = trained["word"]
    text = "To be,  or not\n\tto be"
    assert word.decode(word.encode(text)) == "To be , or not to be"
    assert word.decode(word.encode("To be, zyzzyva")) == "To be , [UNK]"


def test_wordpiece_round_trips_the_words_joined_by_single_spaces(trained):
    wp = trained["wordpiece"]
    words = re.findall(r"\w+|[^\w\s]+", VAL)
    spelt = [w if wp.unk_id not in wp.encode(w) else "[UNK]" for w in words]  # unspellable: [UNK] whole
    assert wp.decode(wp.encode(VAL)) == " ".join(spelt)
    assert spelt.count("[UNK]") < 0.01 * len(words)
    assert any(t.startswith("##") for t in wp.tokens)


def test_unigram_round_trips_text_of_seen_characters_and_marks_unseen_ones(trained):
    ug = trained["unigram"]
    for text in [VAL, " leading and trailing  ", "\n\nnew  lines\n"]:
        assert ug.decode(ug.encode(text)) == text
    ids = ug.encode("a日b")
    assert ids.count(ug.unk_id) == 1 and ug.decode(ids) == "a[UNK]b"


@pytest.mark.parametrize("kind", ["word", "bpe", "wordpiece", "unigram"])
def test_lowercase_option(kind):
    tok = _train(kind, lowercase=True)
    assert tok.encode("The KING") == tok.encode("the king")


# -- words: tokens as plain words ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_words_are_the_tokens_without_their_markers(trained, kind):
    tok = trained[kind]
    words = tok.words
    assert len(words) == tok.vocab_size and words[:7] == list(SPECIAL_TOKENS)  # specials unchanged
    for i in range(7, tok.vocab_size):
        token = tok.tokens[i]
        if kind == "wordpiece":  # decode keeps the '##' of a lone continuation
            assert words[i] == (token[2:] if token.startswith("##") and len(token) > 2 else token)
        else:  # the text the token decodes to, whitespace stripped
            assert words[i] == tok.decode([i]).strip(), token
    plain = {
        "char": {" ": "", "a": "a"},
        "word": {"the": "the", ",": ","},
        "bpe": {"Ġthe": "the", "Ċ": "", "Ġ": "", "ĠI": "I"},
        "wordpiece": {"##s": "s", "the": "the"},
        "unigram": {"▁the": "the", "▁": "", "\n": ""},
    }[kind]
    assert {t: words[tok.token_to_id(t)] for t in plain} == plain


def test_lm_word_tokens_lose_their_leading_space():
    tok = train_tokenizer("word", [TRAIN], pattern=LM_WORD_PATTERN, separator="")
    words = dict(zip(tok.tokens, tok.words, strict=True))
    assert (words[" the"], words["the"], words["\n"], words[" '"]) == ("the", "the", "", "'")
    assert len(set(tok.words)) < tok.vocab_size  # ' the' and 'the' share a word: that is expected


# -- reproducibility ----------------------------------------------------------------------------

TRAIN_IN_A_FRESH_PROCESS = """
import json, sys
from seqlab.data import read_text, train_tokenizer
text = read_text(None)[:60_000]  # enough: before the fix WordPiece and Unigram differed on it every run
for kind in ("char", "word", "bpe", "wordpiece", "unigram"):
    size = None if kind in ("char", "word") else 400
    texts = [text] if size is None else iter(text.splitlines(keepends=True))  # an iterator, read once
    tok = train_tokenizer(kind, texts, vocab_size=size)
    tok.save(f"{sys.argv[1]}/{kind}.json")
"""


def test_training_gives_the_same_file_in_every_process(tmp_path):
    """HF trains WordPiece and Unigram in hash-map order (random per process); seqlab undoes it."""
    for run, seed in (("a", "1"), ("b", "2")):
        (tmp_path / run).mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", TRAIN_IN_A_FRESH_PROCESS, str(tmp_path / run)], check=True, env=env
        )
    for kind in KINDS:
        first, second = ((tmp_path / run / f"{kind}.json").read_text(encoding="utf-8") for run in "ab")
        assert first == second, f"{kind}: two trainings on the same text differ"
    unigram = json.loads(first)["hf"]["model"]["vocab"]
    assert [p for p, _ in unigram[:7]] == list(SPECIAL_TOKENS)
    assert [(-s, p) for p, s in unigram[7:]] == sorted((-s, p) for p, s in unigram[7:])


# -- special tokens and batches -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_take_the_first_ids(trained, kind):
    tok = trained[kind]
    assert tok.special_tokens == list(SPECIAL_TOKENS)
    assert tok.tokens[:7] == list(SPECIAL_TOKENS)
    ids = [tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.cls_id, tok.sep_id, tok.mask_id]
    assert ids == list(range(7))
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == ids
    assert tok.id_to_token(6) == "[MASK]" and len(tok.tokens) == tok.vocab_size
    wrapped = tok.encode("to be", add_special_tokens=True)
    assert wrapped[0] == tok.bos_id and wrapped[-1] == tok.eos_id and wrapped[1:-1] == tok.encode("to be")
    assert tok.decode(wrapped) == tok.decode(tok.encode("to be"))  # specials skipped
    assert tok.decode(wrapped, skip_special_tokens=False).startswith("[BOS]")
    spelt = tok.encode("a [MASK] b")
    if kind == "unigram":  # documented: Unigram's pieces include the special tokens
        assert tok.mask_id in spelt and tok.decode(spelt, skip_special_tokens=False) == "a [MASK] b"
    else:
        assert tok.mask_id not in spelt  # text spelling a special token is text


def test_historical_char_vocabulary_has_no_special_tokens():
    tok = CharTokenizer.from_text("hello")
    assert tok.tokens == ["e", "h", "l", "o"] and tok.special_tokens == []
    assert tok.pad_id is None and tok.unk_id is None
    with pytest.raises(ShapeError, match="character 'z' is not in the vocabulary"):
        tok.encode("hz")
    with pytest.raises(ConfigError, match=r"no \[BOS\]/\[EOS\]"):
        tok.encode("he", add_special_tokens=True)


@pytest.mark.parametrize("kind", KINDS)
def test_encode_batch_pads_right_and_decode_batch_inverts_it(trained, kind):
    tok = trained[kind]
    texts = ["to be or not", "be", ""]
    ids, mask = tok.encode_batch(texts)
    lengths = [len(tok.encode(t)) for t in texts]
    assert ids.dtype == torch.long and mask.dtype == torch.bool and ids.shape == (3, max(lengths))
    assert mask.sum(1).tolist() == lengths
    assert (ids[~mask] == tok.pad_id).all()
    assert tok.decode_batch(ids) == [tok.decode(tok.encode(t)) for t in texts]
    short, short_mask = tok.encode_batch(texts, add_special_tokens=True, max_length=3)
    assert short.shape[1] == 3 and short[0, 0] == tok.bos_id and short_mask[2].sum() == 2


def test_decode_batch_with_a_mask_when_there_is_no_pad_token():
    tok = CharTokenizer.from_text("abc")
    ids, mask = tok.encode_batch(["abc", "a"])
    assert ids[1].tolist() == [0, 0, 0]  # padded with 0 = 'a': only the mask tells them apart
    assert tok.decode_batch(ids, mask) == ["abc", "a"]


# -- vocabulary limits --------------------------------------------------------------------------


def test_build_vocab_orders_by_frequency_then_string_and_applies_limits():
    counts = Counter({"b": 3, "a": 3, "c": 5, "d": 1, "e": 2})
    assert build_vocab(counts) == ["c", "a", "b", "e", "d"]
    assert build_vocab(counts, min_frequency=2) == ["c", "a", "b", "e"]
    assert build_vocab(counts, min_frequency=2, max_size=2) == ["c", "a"]
    assert build_vocab(Counter(dict(reversed(list(counts.items()))))) == build_vocab(counts)
    with pytest.raises(ConfigError, match="min_frequency"):
        build_vocab(counts, min_frequency=0)


def test_word_vocabulary_min_frequency_max_size_and_unknowns():
    texts = ["the cat sat on the mat", "the dog sat"]
    tok = train_tokenizer("word", texts, min_frequency=2)
    assert tok.tokens[7:] == ["the", "sat"]
    assert tok.decode(tok.encode("the cat sat")) == "the [UNK] sat"
    assert train_tokenizer("word", texts, max_size=1).tokens[7:] == ["the"]
    assert train_tokenizer("word", texts, vocab_size=9).tokens[7:] == ["the", "sat"]  # 7 specials + 2
    reordered = train_tokenizer("word", list(reversed(texts)))
    assert reordered.tokens == train_tokenizer("word", texts).tokens  # ties: alphabetical


def test_char_vocabulary_min_frequency():
    tok = train_tokenizer("char", "abracadabra", min_frequency=2)
    assert tok.tokens[7:] == ["a", "b", "r"]
    assert tok.encode("cab") == [tok.unk_id, 7, 8] and tok.decode(tok.encode("cab")) == "[UNK]ab"


def test_subword_min_frequency_limits_merges():
    lines = ["abab abab abab xyxy"] * 2
    rare = train_tokenizer("bpe", lines, vocab_size=400, min_frequency=1)
    frequent = train_tokenizer("bpe", lines, vocab_size=400, min_frequency=5)
    assert rare.token_to_id("xy") is not None and frequent.token_to_id("xy") is None
    assert frequent.token_to_id("ab") is not None


# -- save / load --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_give_identical_ids(trained, kind, tmp_path):
    tok = trained[kind]
    path = tmp_path / "run" / "tokenizer.json"
    tok.save(path)
    again = load_tokenizer(path)
    assert type(again) is type(tok) and again.kind == kind
    assert again.tokens == tok.tokens and again.special_tokens == tok.special_tokens
    sample = VAL[:3000] + " a [MASK] b zyzzyva"
    assert again.encode(sample) == tok.encode(sample)
    assert again.decode(tok.encode(sample)) == tok.decode(tok.encode(sample))
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # one file, no temp left


def test_the_historical_char_format_still_loads(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"type": "char", "chars": ["\n", " ", "a", "b"]}))
    for tok in (load_tokenizer(path), CharTokenizer.load(path)):
        assert isinstance(tok, CharTokenizer) and tok.encode("ab a\n") == [2, 3, 1, 2, 0]
    CharTokenizer.from_text("ba\n ").save(path)
    assert json.loads(path.read_text()) == {"type": "char", "chars": ["\n", " ", "a", "b"]}


def test_char_load_refuses_another_kind(trained, tmp_path):
    trained["bpe"].save(tmp_path / "tokenizer.json")
    with pytest.raises(RunDirError, match="not a character tokenizer file"):
        CharTokenizer.load(tmp_path / "tokenizer.json")


# -- errors -------------------------------------------------------------------------------------


def test_unknown_kind_lists_the_choices():
    with pytest.raises(
        ConfigError, match="unknown tokenizer kind 'bpee'; choose from: char, word, bpe, wordpiece"
    ):
        train_tokenizer("bpee", ["text"])


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("bpe", {}, "vocab_size: the bpe tokenizer needs"),
        ("bpe", {"vocab_size": 100}, "needs at least 263"),
        ("wordpiece", {"vocab_size": 100, "max_size": 50}, "max_size applies to char and word"),
        ("unigram", {"vocab_size": 100, "min_frequency": 2}, "unigram prunes by likelihood"),
        ("unigram", {"vocab_size": 100, "special_tokens": ["[PAD]"]}, r"unigram needs \[UNK\]"),
        ("char", {"lowercase": True}, "lowercase applies to word and subword"),
        ("bpe", {"vocab_size": 300, "pattern": r"\w+"}, "pattern and separator apply to the word"),
        ("word", {"vocab_size": 5}, "more than the 7 special tokens"),
        ("word", {"pattern": "("}, "invalid regular expression"),
        ("char", {"special_tokens": ["[FOO]"]}, "special token '\\[FOO\\]'"),
        ("char", {"min_frequency": 0}, "min_frequency"),
    ],
)
def test_bad_options_are_clear_config_errors(kind, options, message):
    with pytest.raises(ConfigError, match=message):
        train_tokenizer(kind, ["some text"], **options)


def _write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "char", "chars": [', r"tokenizer.json:1:\d+: invalid JSON"),
        ("[1, 2]", "not a tokenizer file"),
        (
            {"type": "sentencepiece"},
            "unknown tokenizer type 'sentencepiece'; expected one of char, word, bpe",
        ),
        ({"type": "char", "chars": "abc"}, "'chars' missing or not a list"),
        ({"type": "char", "chars": ["ab"]}, "'ab' is not a single character"),
        ({"type": "word", "words": ["a"]}, "'special_tokens' missing"),
        ({"type": "bpe", "special_tokens": [], "hf": {"model": {"type": "BPE", "vocab": 3}}}, "damaged bpe"),
        (
            {"type": "bpe", "special_tokens": [], "hf": {"model": {"type": "Unigram"}}},
            "must hold a BPE model",
        ),
    ],
)
def test_corrupt_files_are_run_dir_errors_naming_the_file(tmp_path, content, message):
    path = _write(tmp_path / "tokenizer.json", content)
    with pytest.raises(RunDirError, match=message) as err:
        load_tokenizer(path)
    assert str(path) in str(err.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(RunDirError, match="missing tokenizer file .*nothing.json"):
        load_tokenizer(tmp_path / "nothing.json")
    bad = tmp_path / "latin.json"
    bad.write_bytes(b'{"type": "char", "chars": ["\xe9"]}')
    with pytest.raises(RunDirError, match="cannot read tokenizer file .*latin.json"):
        load_tokenizer(bad)


def test_public_classes_share_the_interface():
    assert issubclass(CharTokenizer, Tokenizer) and issubclass(WordTokenizer, Tokenizer)
    assert issubclass(SubwordTokenizer, Tokenizer)
    assert CharTokenizer.from_text("ab").decode(torch.tensor([1, 0])) == "ba"
    with pytest.raises(IndexError, match="token id 5 is outside"):
        CharTokenizer.from_text("ab").decode([5])
