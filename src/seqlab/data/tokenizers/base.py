"""The one tokenizer interface every kind implements, and the JSON file it saves to.

Shape legend: B batch · T the longest sequence of the batch.

A tokenizer maps text to integer ids and back. Every kind (character, word, BPE, WordPiece,
Unigram) offers the same methods::

    ids = tok.encode("To be, or not to be")           # list[int]
    tok.decode(ids)                                    # text again (exactly, for char and BPE)
    batch, mask = tok.encode_batch(["a b", "c"])       # (B, T) long right-padded, (B, T) bool
    tok.decode_batch(batch, mask)                      # ["a b", "c"]
    tok.vocab_size, tok.tokens[i], tok.token_to_id("[PAD]"), tok.pad_id
    tok.words[i]                                       # tokens[i] as a plain word (' the' -> 'the')
    tok.save(run_dir / "tokenizer.json")               # load it back with load_tokenizer(path)

Special tokens: ``[PAD] [UNK] [BOS] [EOS] [CLS] [SEP] [MASK]`` take ids 0-6 of a tokenizer
trained with them (the default of :func:`~seqlab.data.tokenizers.train_tokenizer`); the
``pad_id``... properties give their ids, or None when a tokenizer has no such token (the
historical character vocabulary of the char LM has none).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from seqlab.errors import ConfigError, RunDirError
from seqlab.fileio import atomic_write_text

__all__ = ["SPECIAL_TOKENS", "Tokenizer", "build_vocab", "read_tokenizer_json"]

PAD, UNK, BOS, EOS, CLS, SEP, MASK = "[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, CLS, SEP, MASK)

Offsets = list[tuple[int, int]]


class Tokenizer(ABC):
    """Base class: subclasses implement splitting, the id mapping and their JSON form.

    Subclasses set ``kind`` (the ``"type"`` written to the JSON file) and implement
    :meth:`tokens`, :meth:`token_to_id`, :meth:`_encode`, :meth:`_decode`, :meth:`to_json`
    and :meth:`from_json`; everything else is shared.
    """

    kind: ClassVar[str]

    # -- what each kind implements -----------------------------------------------------------

    @property
    @abstractmethod
    def tokens(self) -> list[str]:
        """The vocabulary as strings, indexed by id (``tokens[i]`` is the token of id ``i``)."""

    @abstractmethod
    def token_to_id(self, token: str) -> int | None:
        """The id of ``token``, or None if it is not in the vocabulary."""

    @property
    @abstractmethod
    def special_tokens(self) -> list[str]:
        """The special tokens this tokenizer has (a subset of :data:`SPECIAL_TOKENS`)."""

    @abstractmethod
    def _encode(self, text: str) -> tuple[list[int], Offsets]:
        """Ids of ``text`` and, per id, its ``(start, end)`` character span in ``text``."""

    @abstractmethod
    def _decode(self, ids: list[int]) -> str:
        """Text of ``ids`` (special tokens already filtered by :meth:`decode`)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The plain-data form written by :meth:`save` (it holds ``"type": kind``)."""

    @classmethod
    @abstractmethod
    def from_json(cls, data: dict[str, Any], path: str | Path) -> Tokenizer:
        """Inverse of :meth:`to_json`; problems raise RunDirError naming ``path``."""

    def _plain(self, token: str) -> str:
        """The text a regular token stands for, its kind's markers removed (default: itself)."""
        return token

    # -- shared ------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def words(self) -> list[str]:
        """Each token as a plain word, indexed by id: the strings to look up in word vectors.

        Markers are removed and surrounding whitespace stripped — a word token's leading space
        (``' the'`` -> ``'the'``), byte-level BPE's byte symbols decoded as HF's ByteLevel decoder
        does (``'Ġthe'`` -> ``'the'``, ``'Ċ'`` -> ``''``; a token holding part of a UTF-8 character
        shows ``'\ufffd'``), Unigram's ``'▁'``, WordPiece's ``'##'`` (``'##ing'`` -> ``'ing'``).
        Special tokens are unchanged. Two tokens may give the same word (``' the'`` and ``'the'``),
        and whitespace tokens give ``''``.

        Example::

            >>> from seqlab.data.tokenizers import LM_WORD_PATTERN, train_tokenizer
            >>> tok = train_tokenizer("word", ["the cat\\n"], pattern=LM_WORD_PATTERN, separator="")
            >>> tok.tokens[7:], tok.words[:2], tok.words[7:]
            (['\\n', ' cat', 'the'], ['[PAD]', '[UNK]'], ['', 'cat', 'the'])
        """
        specials = set(self.special_tokens)
        return [t if t in specials else self._plain(t).strip() for t in self.tokens]

    def id_to_token(self, index: int) -> str:
        """The token string of id ``index`` (IndexError outside ``[0, vocab_size)``)."""
        if not 0 <= index < self.vocab_size:
            raise IndexError(f"token id {index} is outside [0, {self.vocab_size})")
        return self.tokens[index]

    def special_id(self, token: str) -> int | None:
        """Id of the special token ``token``, or None if this tokenizer does not have it."""
        return self.token_to_id(token) if token in self.special_tokens else None

    @property
    def pad_id(self) -> int | None:
        return self.special_id(PAD)

    @property
    def unk_id(self) -> int | None:
        return self.special_id(UNK)

    @property
    def bos_id(self) -> int | None:
        return self.special_id(BOS)

    @property
    def eos_id(self) -> int | None:
        return self.special_id(EOS)

    @property
    def cls_id(self) -> int | None:
        return self.special_id(CLS)

    @property
    def sep_id(self) -> int | None:
        return self.special_id(SEP)

    @property
    def mask_id(self) -> int | None:
        return self.special_id(MASK)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Ids of ``text``; ``add_special_tokens`` wraps them in ``[BOS] ... [EOS]``."""
        ids = self._encode_ids(text)
        return self._wrap(ids) if add_special_tokens else ids

    def _encode_ids(self, text: str) -> list[int]:
        """Ids only (subclasses may skip building the spans)."""
        return self._encode(text)[0]

    def encode_with_offsets(self, text: str) -> tuple[list[int], Offsets]:
        """Ids of ``text`` and each id's ``(start, end)`` character span in ``text``.

        Spans let callers count the characters a run of tokens covers (bits per character of
        a subword language model). Example: a character tokenizer gives ``(i, i + 1)``.
        """
        return self._encode(text)

    def decode(self, ids: Sequence[int] | Tensor, skip_special_tokens: bool = True) -> str:
        """Text of ``ids``. ``skip_special_tokens`` drops every special token except [UNK]
        (kept so that text the vocabulary could not represent stays visible)."""
        ids = ids.tolist() if isinstance(ids, Tensor) else [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise IndexError(f"token id {bad[0]} is outside [0, {self.vocab_size})")
        if skip_special_tokens:
            skip = {self.token_to_id(t) for t in self.special_tokens if t != UNK}
            ids = [i for i in ids if i not in skip]
        return self._decode(ids)

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = False, max_length: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Encode ``texts`` into one right-padded batch.

        Args:
            texts: B strings.
            add_special_tokens: wrap each in ``[BOS] ... [EOS]``.
            max_length: cut each sequence to at most this many ids (None: no limit).

        Returns:
            ``(ids, mask)``: ids (B, T) long, padded with ``pad_id`` (0 when the tokenizer has no
            [PAD]); mask (B, T) bool, True at real tokens.

        Example::

            >>> from seqlab.data.tokenizers import CharTokenizer
            >>> ids, mask = CharTokenizer(["a", "b"], special_tokens=["[PAD]"]).encode_batch(["ab", "b"])
            >>> ids.tolist(), mask.tolist()
            ([[1, 2], [2, 0]], [[True, True], [True, False]])
        """
        rows = [self.encode(t, add_special_tokens) for t in texts]
        if max_length is not None:
            rows = [r[:max_length] for r in rows]
        T = max((len(r) for r in rows), default=0)
        pad = self.pad_id if self.pad_id is not None else 0
        ids = torch.full((len(rows), T), pad, dtype=torch.long)  # (B, T)
        mask = torch.zeros(len(rows), T, dtype=torch.bool)  # (B, T)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = True
        return ids, mask

    def decode_batch(
        self,
        ids: Tensor | Sequence[Sequence[int]],
        mask: Tensor | None = None,
        skip_special_tokens: bool = True,
    ) -> list[str]:
        """Texts of a batch ``ids`` (B, T); ``mask`` (B, T) bool keeps only real tokens."""
        rows = ids.tolist() if isinstance(ids, Tensor) else [list(r) for r in ids]
        if mask is not None:
            keep = mask.tolist()
            rows = [[i for i, k in zip(r, m) if k] for r, m in zip(rows, keep, strict=True)]
        return [self.decode(r, skip_special_tokens) for r in rows]

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as one JSON file, atomically (read it with ``load_tokenizer``)."""
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False) + "\n")

    def _wrap(self, ids: list[int]) -> list[int]:
        if self.bos_id is None or self.eos_id is None:
            raise ConfigError(
                f"this {self.kind} tokenizer has no [BOS]/[EOS] tokens; train it with special tokens "
                "to use add_special_tokens=True"
            )
        return [self.bos_id, *ids, self.eos_id]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size})"


def build_vocab(counts: Counter[str], min_frequency: int = 1, max_size: int | None = None) -> list[str]:
    """The tokens seen at least ``min_frequency`` times, most frequent first, at most ``max_size``.

    Ties are broken by the token's string order, so the result never depends on the order the
    text was read in.

    Example::

        >>> build_vocab(Counter("abracadabra"), min_frequency=2)
        ['a', 'b', 'r']
    """
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ConfigError(f"min_frequency: expected an integer >= 1, got {min_frequency!r}")
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ConfigError(f"max_size: expected a positive integer or None, got {max_size!r}")
    kept = sorted((t for t, n in counts.items() if n >= min_frequency), key=lambda t: (-counts[t], t))
    return kept if max_size is None else kept[:max_size]


def read_tokenizer_json(path: str | Path) -> dict[str, Any]:
    """The JSON object of a tokenizer file; a missing, unreadable or corrupt file is a RunDirError."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"missing tokenizer file {path}") from None
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RunDirError(f"cannot read tokenizer file {path}: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RunDirError(f"{path}: not a tokenizer file (expected a JSON object with a 'type')")
    return data


def check_fields(data: dict[str, Any], path: str | Path, **expected: type) -> None:
    """RunDirError naming ``path`` and the key when a field is missing or of the wrong type."""
    for key, tp in expected.items():
        if not isinstance(data.get(key), tp):
            raise RunDirError(f"{path}: {data.get('type')} tokenizer: {key!r} missing or not a {tp.__name__}")
