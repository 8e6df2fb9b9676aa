"""Vocabulary tokenizers: one id per character or per word (regular-expression split).

Both keep the special tokens first (ids 0..), then the regular tokens most frequent first
(:func:`~seqlab.data.tokenizers.base.build_vocab`); a token outside the vocabulary becomes
[UNK], or is an error when the tokenizer has no [UNK].

What round-trips (``decode(encode(t)) == t``):

- character: every text whose characters are all in the vocabulary;
- word: ``separator.join(words)`` where ``words`` are the pattern's matches (lower-cased with
  ``lowercase``), when every word is in the vocabulary. The default pattern drops
  whitespace, so ``"To be,  or"`` decodes as ``"To be , or"``; :data:`LM_WORD_PATTERN` with
  ``separator=""`` keeps the whitespace and round-trips exactly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqlab.data.tokenizers.base import SPECIAL_TOKENS, Offsets, Tokenizer, build_vocab, check_fields
from seqlab.errors import ConfigError, RunDirError, ShapeError

__all__ = ["LM_WORD_PATTERN", "WORD_PATTERN", "CharTokenizer", "WordTokenizer"]

WORD_PATTERN = r"\w+|[^\w\s]"  # words and single punctuation marks; whitespace is dropped
LM_WORD_PATTERN = r" ?\w+| ?[^\w\s]|\s+"  # a word keeps the space before it; other whitespace is a token


class VocabTokenizer(Tokenizer):
    """A fixed list of tokens, special tokens first; subclasses say how text splits into pieces."""

    separator = ""  # what decode puts between pieces
    unit = "token"  # in error messages

    def __init__(self, regular: Sequence[str], special_tokens: Sequence[str] = ()) -> None:
        specials = list(special_tokens)
        unknown = [t for t in specials if t not in SPECIAL_TOKENS]
        if unknown:
            raise ConfigError(f"special token {unknown[0]!r}: choose from {', '.join(SPECIAL_TOKENS)}")
        self._specials = specials
        self._tokens = specials + list(regular)
        self._index = {t: i for i, t in enumerate(self._tokens)}
        if len(self._index) != len(self._tokens):
            dup = next(t for t in self._tokens if self._tokens.count(t) > 1)
            raise ConfigError(f"{self.kind} vocabulary: token {dup!r} appears twice")

    @property
    def tokens(self) -> list[str]:
        return self._tokens

    def token_to_id(self, token: str) -> int | None:
        return self._index.get(token)

    @property
    def special_tokens(self) -> list[str]:
        return list(self._specials)

    def _pieces(self, text: str) -> Iterator[tuple[str, int, int]]:
        """``(piece, start, end)`` for each piece of ``text``."""
        raise NotImplementedError

    def _encode(self, text: str) -> tuple[list[int], Offsets]:
        ids, offsets = [], []
        n_special, unk = len(self._specials), self.unk_id
        for piece, start, end in self._pieces(text):
            i = self._index.get(piece)
            if i is None or i < n_special:  # text never spells a special token
                if unk is None:
                    raise ShapeError(f"{self.unit} {piece!r} is not in the vocabulary")
                i = unk
            ids.append(i)
            offsets.append((start, end))
        return ids, offsets

    def _encode_ids(self, text: str) -> list[int]:
        n_special, unk, index = len(self._specials), self.unk_id, self._index
        ids = [index.get(piece, -1) for piece, _, _ in self._pieces(text)]
        if not ids or min(ids) >= n_special:
            return ids  # every piece known, no special token spelt
        if unk is None:
            return self._encode(text)[0]  # raises, naming the unknown piece
        return [i if i >= n_special else unk for i in ids]

    def _decode(self, ids: list[int]) -> str:
        return self.separator.join(self._tokens[i] for i in ids)


class CharTokenizer(VocabTokenizer):
    """One id per character.

    ``CharTokenizer(chars)`` (and :meth:`from_text`) is the historical vocabulary of the char
    LM: the given characters, no special tokens, unknown characters an error. :meth:`train`
    builds a frequency-ordered vocabulary with special tokens and [UNK].

    Example::

        >>> tok = CharTokenizer.from_text("hello")
        >>> tok.tokens, tok.encode("hole")
        (['e', 'h', 'l', 'o'], [1, 3, 2, 0])
    """

    kind = "char"
    unit = "character"

    def __init__(self, chars: Sequence[str], special_tokens: Sequence[str] = ()) -> None:
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ConfigError(f"char vocabulary: {bad[0]!r} is not a single character")
        self.chars = list(chars)
        super().__init__(self.chars, special_tokens)

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The sorted distinct characters of ``text``, no special tokens."""
        return cls(sorted(set(text)))

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        min_frequency: int = 1,
        max_size: int | None = None,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
    ) -> CharTokenizer:
        """Special tokens, then the characters seen ``min_frequency``+ times (at most ``max_size``)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        return cls(build_vocab(counts, min_frequency, max_size), special_tokens)

    def _pieces(self, text: str) -> Iterator[tuple[str, int, int]]:
        return ((ch, i, i + 1) for i, ch in enumerate(text))

    def _encode_ids(self, text: str) -> list[int]:
        """Vectorised: code points (UTF-32) -> ids through a lookup table (-1 = unknown)."""
        if getattr(self, "_table", None) is None:
            chars = [(ord(t), i) for i, t in enumerate(self._tokens) if len(t) == 1]  # specials never match
            self._table = np.full(max((c for c, _ in chars), default=0) + 2, -1, dtype=np.int64)
            for code, i in chars:
                self._table[code] = i
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # (n,)
        ids = self._table[np.minimum(codes, len(self._table) - 1)]  # beyond the table: its last cell, -1
        if not len(ids) or int(ids.min()) >= 0:
            return ids.tolist()
        return super()._encode_ids(text)  # [UNK] or the error naming the character

    def to_json(self) -> dict[str, Any]:
        if not self._specials:  # the historical format, readable by every seqlab version
            return {"type": "char", "chars": self.chars}
        return {"type": "char", "special_tokens": self._specials, "chars": self.chars, "format": 2}

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | Path) -> CharTokenizer:
        check_fields(data, path, chars=list)
        try:
            return cls(data["chars"], data.get("special_tokens", []))
        except ConfigError as err:
            raise RunDirError(f"{path}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a character tokenizer file (either format); other kinds are a RunDirError."""
        from seqlab.data.tokenizers.base import read_tokenizer_json

        data = read_tokenizer_json(path)
        if data["type"] != "char":
            raise RunDirError(f"{path}: not a character tokenizer file (type {data['type']!r})")
        return cls.from_json(data, path)


class WordTokenizer(VocabTokenizer):
    """One id per word; words are the matches of a regular expression.

    Args:
        words: the regular vocabulary (after ``lowercase``), in id order.
        special_tokens: special tokens, ids 0.. (a subset of :data:`SPECIAL_TOKENS`).
        pattern: what a word is (default: runs of word characters and single punctuation marks).
        lowercase: lower-case each word before looking it up.
        separator: what :meth:`decode` puts between words (``""`` with :data:`LM_WORD_PATTERN`).

    Example::

        >>> tok = WordTokenizer.train(["the cat, the hat"], special_tokens=["[UNK]"])
        >>> tok.tokens, tok.decode(tok.encode("the dog"))
        (['[UNK]', 'the', ',', 'cat', 'hat'], 'the [UNK]')
    """

    kind = "word"
    unit = "word"

    def __init__(
        self,
        words: Sequence[str],
        special_tokens: Sequence[str] = (),
        pattern: str = WORD_PATTERN,
        lowercase: bool = False,
        separator: str = " ",
    ) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"pattern: invalid regular expression {pattern!r}: {err}") from None
        self.pattern, self.lowercase, self.separator = pattern, lowercase, separator
        super().__init__(words, special_tokens)

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        min_frequency: int = 1,
        max_size: int | None = None,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
        pattern: str = WORD_PATTERN,
        lowercase: bool = False,
        separator: str = " ",
    ) -> WordTokenizer:
        """Special tokens, then the words seen ``min_frequency``+ times (at most ``max_size``)."""
        splitter = cls([], [], pattern, lowercase, separator)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(piece for piece, _, _ in splitter._pieces(text))
        return cls(
            build_vocab(counts, min_frequency, max_size), special_tokens, pattern, lowercase, separator
        )

    def _pieces(self, text: str) -> Iterator[tuple[str, int, int]]:
        for m in self.regex.finditer(text):
            if m.end() > m.start():
                word = m.group()
                yield (word.lower() if self.lowercase else word), m.start(), m.end()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "word",
            "format": 2,
            "special_tokens": self._specials,
            "words": self._tokens[len(self._specials) :],
            "pattern": self.pattern,
            "lowercase": self.lowercase,
            "separator": self.separator,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | Path) -> WordTokenizer:
        check_fields(data, path, special_tokens=list, words=list, pattern=str, lowercase=bool, separator=str)
        try:
            return cls(
                data["words"], data["special_tokens"], data["pattern"], data["lowercase"], data["separator"]
            )
        except ConfigError as err:
            raise RunDirError(f"{path}: {err}") from None
