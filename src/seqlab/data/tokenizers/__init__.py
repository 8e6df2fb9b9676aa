"""Tokenizers behind one interface: character, word, and subword BPE / WordPiece / Unigram.

Train one with :func:`train_tokenizer`, save it as one JSON file, read any kind back with
:func:`load_tokenizer`::

    tok = train_tokenizer("bpe", lines, vocab_size=1000, min_frequency=2)
    tok.save(run_dir / "tokenizer.json")
    same = load_tokenizer(run_dir / "tokenizer.json")   # same ids for the same text

The interface (:class:`Tokenizer`), the special tokens and what round-trips for each kind
are described in :mod:`.base`, :mod:`.vocab` and :mod:`.subword`. ``tok.words`` gives each
token as a plain word (markers such as ``Ġ``, ``▁``, ``##`` and a leading space removed), the
strings to look pretrained word vectors up with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from seqlab.data.tokenizers.base import SPECIAL_TOKENS, Tokenizer, build_vocab, read_tokenizer_json
from seqlab.data.tokenizers.subword import SUBWORD_KINDS, SubwordTokenizer
from seqlab.data.tokenizers.vocab import LM_WORD_PATTERN, WORD_PATTERN, CharTokenizer, WordTokenizer
from seqlab.errors import ConfigError, RunDirError

__all__ = [
    "LM_WORD_PATTERN",
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "WORD_PATTERN",
    "CharTokenizer",
    "SubwordTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "build_vocab",
    "load_tokenizer",
    "train_tokenizer",
]

TOKENIZER_KINDS = ("char", "word", *SUBWORD_KINDS)


def train_tokenizer(
    kind: str,
    texts: Iterable[str],
    *,
    vocab_size: int | None = None,
    min_frequency: int = 1,
    max_size: int | None = None,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    lowercase: bool = False,
    pattern: str | None = None,
    separator: str | None = None,
) -> Tokenizer:
    """Train a tokenizer of ``kind`` (``char``, ``word``, ``bpe``, ``wordpiece``, ``unigram``).

    Args:
        kind: which tokenizer; anything else is a ConfigError listing the choices.
        texts: the training texts (a string or an iterable of strings, e.g. lines of a file).
        vocab_size: the largest vocabulary, special tokens included. Required for the subword
            kinds (their training target); optional for char and word.
        min_frequency: the fewest occurrences for a character / word to enter the vocabulary,
            or for a BPE merge or WordPiece word to be learnt (Unigram: must stay 1).
        max_size: char and word only — the most regular (non-special) tokens to keep.
        special_tokens: the special tokens, ids 0.. in this order.
        lowercase: lower-case text first (word and subword kinds).
        pattern: word only — the regular expression of a word (default :data:`WORD_PATTERN`).
        separator: word only — what decode joins words with (default ``" "``).

    Returns:
        The trained :class:`Tokenizer`. The same texts and options give the same tokenizer file in
        every process, for every kind (WordPiece and Unigram need extra care for that, described
        under "Reproducibility" in :mod:`.subword`; WordPiece reads the texts twice, so it holds
        an iterator's texts in memory).

    Example::

        >>> tok = train_tokenizer("char", ["abracadabra"], min_frequency=2)
        >>> tok.tokens[7:], tok.decode(tok.encode("cab"))
        (['a', 'b', 'r'], '[UNK]ab')
    """
    if kind not in TOKENIZER_KINDS:
        raise ConfigError(f"unknown tokenizer kind {kind!r}; choose from: {', '.join(TOKENIZER_KINDS)}")
    texts = [texts] if isinstance(texts, str) else texts
    if kind != "word" and (pattern is not None or separator is not None):
        raise ConfigError(f"pattern and separator apply to the word tokenizer, not {kind!r}")
    specials = list(special_tokens)
    if kind in SUBWORD_KINDS:
        if max_size is not None:
            raise ConfigError(f"max_size applies to char and word tokenizers; give {kind!r} a vocab_size")
        if vocab_size is None:
            raise ConfigError(f"vocab_size: the {kind} tokenizer needs a target vocabulary size")
        return SubwordTokenizer.train(kind, texts, vocab_size, min_frequency, specials, lowercase)
    max_size = _regular_cap(vocab_size, max_size, len(specials))
    if kind == "char":
        if lowercase:
            raise ConfigError("lowercase applies to word and subword tokenizers, not 'char'")
        return CharTokenizer.train(texts, min_frequency, max_size, specials)
    return WordTokenizer.train(
        texts,
        min_frequency,
        max_size,
        specials,
        WORD_PATTERN if pattern is None else pattern,
        lowercase,
        " " if separator is None else separator,
    )


def _regular_cap(vocab_size: int | None, max_size: int | None, n_special: int) -> int | None:
    """The most regular tokens allowed by ``vocab_size`` (total) and ``max_size`` (regular)."""
    if vocab_size is None:
        return max_size
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= n_special:
        raise ConfigError(
            f"vocab_size: expected more than the {n_special} special tokens, got {vocab_size!r}"
        )
    cap = vocab_size - n_special
    return cap if max_size is None else min(cap, max_size)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer file written by :meth:`Tokenizer.save` (any kind, either char format).

    Raises:
        RunDirError: the file is missing, unreadable, not JSON, of an unknown type, or damaged
            (the message names the file).
    """
    data = read_tokenizer_json(path)
    kind = data["type"]
    if kind == "char":
        return CharTokenizer.from_json(data, path)
    if kind == "word":
        return WordTokenizer.from_json(data, path)
    if kind in SUBWORD_KINDS:
        return SubwordTokenizer.from_json(data, path)
    raise RunDirError(
        f"{path}: unknown tokenizer type {kind!r}; expected one of {', '.join(TOKENIZER_KINDS)}"
    )
