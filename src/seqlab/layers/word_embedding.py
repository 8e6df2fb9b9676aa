"""Word embeddings built from characters: fastText subwords, CharNgram, and the pretrained table.

Shape legend: B batch · T time · D embedding width · V vocabulary · L n-grams per word (padded).

**fastText subwords** (Bojanowski et al. 2017, "Enriching Word Vectors with Subword Information").
A word ``w`` is framed as ``<w>``; ``G_w`` is the set of its character n-grams, ``minn <= n <= maxn``
(3..6 by default), each hashed into one of ``buckets`` rows::

    v_w = ( E_word[w] + Σ_{g ∈ G_w} E_ngram[hash(g) mod buckets] ) / (1 + |G_w|)

``hash`` is 32-bit FNV-1a over the UTF-8 bytes, with fastText's quirk that each byte is
sign-extended (``uint32(int8(byte))``) before the XOR, so non-ASCII n-grams land in the same
buckets as in fastText's own models. "walking" and "walked" share ``<wa, wal, alk, <wal, walk, <walk``,
so their vectors share those rows even when every row is random.

**CharNgram** (Hashimoto et al. 2016, "A Joint Many-Task Model"; torchtext's ``CharNGram``).
The characters of ``w`` are framed by two boundary *symbols* ``#BEGIN#`` and ``#END#``; ``G_w`` is
every n-gram for n ∈ {2, 3, 4}, keyed as ``"{n}gram-{chars}"`` (torchtext's keys), and::

    v_w = mean_{g ∈ G_w} E[g]

Here ``E`` has one row per distinct n-gram of the vocabulary (an exact n-gram vocabulary built at
construction, so there are no hash collisions); n-grams of words outside it are skipped.

Both modules take the vocabulary strings at construction and precompute, per word, the padded
(V, L) row indices and averaging weights as buffers, so ``forward`` is one ``embedding_bag``.
Special tokens (``[PAD]``, ``[UNK]``, ...) and the empty word (what a whitespace token's
:attr:`~seqlab.data.tokenizers.Tokenizer.words` entry is) get a row of their own and no n-grams.
A vocabulary may repeat a word (``' the'`` and ``'the'`` both give ``'the'``): the copies share
their n-gram rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.errors import ConfigError, ShapeError

__all__ = [
    "DEFAULT_SPECIALS",
    "WORD_EMBEDDINGS",
    "CharNgramEmbedding",
    "PretrainedEmbedding",
    "SubwordEmbedding",
    "charngrams",
    "fasttext_hash",
    "fasttext_ngrams",
    "pack_rows",
]

DEFAULT_SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]", "[MASK]", "</s>")
FNV_OFFSET, FNV_PRIME = 2166136261, 16777619


def fasttext_hash(text: str) -> int:
    """fastText's FNV-1a 32-bit hash of ``text`` (UTF-8 bytes, each sign-extended as an int8).

    Example:
        >>> hex(fasttext_hash("a"))  # plain FNV-1a for ASCII
        '0xe40c292c'
    """
    h = FNV_OFFSET
    for byte in text.encode("utf-8"):
        h ^= byte | 0xFFFFFF00 if byte >= 0x80 else byte  # uint32(int8(byte))
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def fasttext_ngrams(word: str, minn: int = 3, maxn: int = 6) -> list[str]:
    """The character n-grams of ``<word>`` fastText uses, in fastText's order.

    Lengths count Unicode characters (fastText walks UTF-8 code points). The lone boundary
    markers ``<`` and ``>`` are never n-grams; the whole ``<word>`` is one when it is short enough.

    Example:
        >>> fasttext_ngrams("ab", 2, 3)
        ['<a', '<ab', 'ab', 'ab>', 'b>']
    """
    s = f"<{word}>"
    out = []
    for i in range(len(s)):
        for n in range(1, maxn + 1):
            if i + n > len(s):
                break
            if n >= minn and not (n == 1 and (i == 0 or i + n == len(s))):
                out.append(s[i : i + n])
    return out


def charngrams(word: str, ns: Iterable[int] = (2, 3, 4)) -> list[str]:
    """CharNgram keys of ``word``: n-grams over ``#BEGIN#`` + characters + ``#END#``.

    Example:
        >>> charngrams("ab", (2,))
        ['2gram-#BEGIN#a', '2gram-ab', '2gram-b#END#']
    """
    symbols = ["#BEGIN#", *word, "#END#"]
    return [f"{n}gram-{''.join(symbols[i : i + n])}" for n in ns for i in range(len(symbols) - n + 1)]


def pack_rows(rows: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Ragged row lists -> (index (V, L) long, weight (V, L) float): 1/len per real entry, 0 for padding.

    A word with no rows gets all-zero weights (its vector is the zero vector).
    """
    width = max([len(r) for r in rows] + [1])
    index = torch.zeros(len(rows), width, dtype=torch.long)
    weight = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        if r:
            index[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
            weight[i, : len(r)] = 1.0 / len(r)
    return index, weight


def _check_ids(ids: Tensor, vocab_size: int, name: str) -> None:
    if ids.dim() != 2 or ids.is_floating_point():
        raise ShapeError(f"{name}: expected token ids of shape (B, T), got {ids.dtype} {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ShapeError(
            f"{name}: token ids must be in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}]"
        )


class _Pinned(nn.Module):
    """Remembers pretrained values so that ``reset_parameters`` restores them instead of re-drawing.

    The values are kept as given (no copy) in a plain attribute, not a buffer: they are not in the
    ``state_dict`` and do not move with the module (a CPU table stays on the CPU, not on the GPU).
    """

    def pin(self, values: dict[str, Tensor]) -> None:
        """Copy ``values`` (parameter path -> tensor) into the parameters and keep them for resets."""
        self._pinned = {path: value.detach() for path, value in values.items()}
        self._restore()

    def _restore(self) -> bool:
        pinned: dict[str, Tensor] = getattr(self, "_pinned", {})
        with torch.no_grad():
            for path, value in pinned.items():
                self.get_parameter(path).copy_(value)
        return bool(pinned)


class PretrainedEmbedding(nn.Embedding, _Pinned):
    """An ``nn.Embedding`` initialised from a (V, D) matrix, frozen or fine-tuned.

    ``reset_parameters()`` restores the pretrained matrix (not a random draw).

    Example:
        >>> emb = PretrainedEmbedding(torch.eye(3), freeze=True)
        >>> emb(torch.tensor([[2]])).tolist(), emb.weight.requires_grad
        ([[[0.0, 0.0, 1.0]]], False)
    """

    def __init__(self, matrix: Tensor, freeze: bool = True) -> None:
        super().__init__(matrix.shape[0], matrix.shape[1])
        self.pin({"weight": matrix.to(torch.float32)})
        self.weight.requires_grad_(not freeze)

    def reset_parameters(self) -> None:
        if not self._restore():
            super().reset_parameters()


class SubwordEmbedding(_Pinned):
    """fastText-style word vectors: mean of the word's own row and its hashed n-gram rows.

    Args:
        vocab: the token strings, in id order.
        dim: embedding width D.
        buckets: rows of the n-gram table (fastText uses 2M; a few 10k suit small models).
        minn, maxn: n-gram lengths in characters, markers included; ``maxn=0``: no n-grams, each
            word is its own row (fastText's models trained without subwords, e.g. supervised ones).
        specials: tokens that get their own row only (no n-grams).

    Shape:
        ids (B, T) -> (B, T, D).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        dim: int,
        buckets: int = 100_000,
        minn: int = 3,
        maxn: int = 6,
        specials: Iterable[str] = DEFAULT_SPECIALS,
    ) -> None:
        super().__init__()
        if buckets < 1 or not (maxn == 0 or 1 <= minn <= maxn):
            raise ConfigError(
                "subword embedding: need buckets >= 1 and 1 <= minn <= maxn (or maxn = 0: no n-grams), "
                f"got buckets={buckets}, minn={minn}, maxn={maxn}"
            )
        self.vocab, self.buckets, self.minn, self.maxn = list(vocab), buckets, minn, maxn
        self.specials = frozenset(specials)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.word = nn.Embedding(len(self.vocab), dim)
        self.ngram = nn.Embedding(buckets, dim)
        grams = [self.ngram_rows(w) for w in self.vocab]
        index, weight = pack_rows(grams)
        self.register_buffer("ngram_index", index, persistent=False)  # (V, L)
        shrink = torch.tensor([len(g) / (1 + len(g)) for g in grams])  # 1/|G| -> 1/(1 + |G|)
        self.register_buffer("ngram_weight", weight * shrink[:, None], persistent=False)  # (V, L)
        self.register_buffer(
            "word_weight", torch.tensor([1.0 / (1 + len(g)) for g in grams]), persistent=False
        )
        self.reset_parameters()

    @classmethod
    def from_fasttext(cls, ft: Any, vocab: Sequence[str], freeze: bool = False) -> SubwordEmbedding:
        """Hold a fastText model's rows (:class:`~seqlab.data.vectors.FastTextVectors`), starting equal to it.

        Words of ``vocab`` in fastText's dictionary take their own row; the others take the mean of
        their n-gram rows as their own row, so that their composed vector is fastText's OOV vector
        (zero when it has none). A model trained without n-grams (``maxn`` 0, or ``minn > maxn``)
        gives word rows only. The n-gram table starts as a view of ``ft.input`` (no copy).
        """
        grams = ft.maxn > 0 and ft.minn <= ft.maxn  # otherwise fastText computes no n-grams
        minn, maxn = (max(ft.minn, 1), ft.maxn) if grams else (1, 0)
        emb = cls(vocab, ft.dim, buckets=ft.bucket if grams else 1, minn=minn, maxn=maxn)
        nw = len(ft.words)
        own = np.zeros((len(vocab), ft.dim), dtype=np.float32)
        for i, word in enumerate(emb.vocab):
            rows = [ft.index[word]] if word in ft else [nw + r for r in emb.ngram_rows(word)]
            if rows:
                own[i] = ft.input[rows].mean(axis=0)
        pinned = {"word.weight": torch.from_numpy(own)}
        if grams:
            pinned["ngram.weight"] = torch.from_numpy(ft.input[nw:])  # a view: rows nw.. of the input
        emb.pin(pinned)
        return emb.requires_grad_(not freeze)

    def ngram_rows(self, word: str) -> list[int]:
        """Rows of the n-gram table for ``word`` (none for special tokens, the empty word, or ``maxn=0``)."""
        if self.maxn == 0 or not word or word in self.specials:
            return []
        return [fasttext_hash(g) % self.buckets for g in fasttext_ngrams(word, self.minn, self.maxn)]

    def reset_parameters(self) -> None:
        """N(0, 0.02) for both tables, or the pinned pretrained values."""
        if not self._restore():
            nn.init.normal_(self.word.weight, std=0.02)
            nn.init.normal_(self.ngram.weight, std=0.02)

    def forward(self, ids: Tensor) -> Tensor:
        B, T = ids.shape[:2]
        _check_ids(ids, len(self.vocab), "subword embedding")
        flat = ids.reshape(-1)  # (B·T,)
        weights = self.ngram_weight[flat].to(self.ngram.weight.dtype)  # (B·T, L)
        grams = F.embedding_bag(
            self.ngram_index[flat], self.ngram.weight, per_sample_weights=weights, mode="sum"
        )
        own = self.word(flat) * self.word_weight[flat, None].to(grams.dtype)  # (B·T, D)
        return (own + grams).view(B, T, -1)  # (B, T, D)

    def embed_words(self, words: Sequence[str]) -> Tensor:
        """Vectors (N, D) for any strings; a word outside the vocabulary is the mean of its n-gram rows."""
        rows = []
        for w in words:
            grams = [len(self.vocab) + r for r in self.ngram_rows(w)]
            rows.append(([self.index[w]] if w in self.index else []) + grams)
        index, weight = pack_rows(rows)
        table = torch.cat([self.word.weight, self.ngram.weight])  # (V + buckets, D)
        return F.embedding_bag(index.to(table.device), table, per_sample_weights=weight.to(table), mode="sum")


class CharNgramEmbedding(_Pinned):
    """CharNgram word vectors: mean of the embeddings of the word's 2-, 3- and 4-grams.

    The table has one row per distinct n-gram key of ``vocab`` (see :func:`charngrams`), plus one
    row per special token present in ``vocab`` and one per empty word (id ``i``: key ``empty-i``,
    so that whitespace tokens stay distinct). ``ngrams`` lists the keys in row order.

    Shape:
        ids (B, T) -> (B, T, D).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        dim: int,
        ns: Sequence[int] = (2, 3, 4),
        specials: Iterable[str] = DEFAULT_SPECIALS,
    ) -> None:
        super().__init__()
        self.vocab, self.ns, self.specials = list(vocab), tuple(ns), frozenset(specials)
        keys = [self._keys(w) or [f"empty-{i}"] for i, w in enumerate(self.vocab)]
        self.ngram_ids: dict[str, int] = {}
        for k in (k for ks in keys for k in ks):
            self.ngram_ids.setdefault(k, len(self.ngram_ids))
        self.ngrams = list(self.ngram_ids)
        self.table = nn.Embedding(len(self.ngrams), dim)
        index, weight = pack_rows([[self.ngram_ids[k] for k in ks] for ks in keys])
        self.register_buffer("ngram_index", index, persistent=False)  # (V, L)
        self.register_buffer("ngram_weight", weight, persistent=False)  # (V, L)
        self.reset_parameters()

    def _keys(self, word: str) -> list[str]:
        """The table keys of ``word``: its n-grams, its own key if special, none if empty."""
        if word in self.specials:
            return [f"special-{word}"]
        return charngrams(word, self.ns) if word else []

    def reset_parameters(self) -> None:
        """N(0, 0.02), or the pinned pretrained values."""
        if not self._restore():
            nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, ids: Tensor) -> Tensor:
        B, T = ids.shape[:2]
        _check_ids(ids, len(self.vocab), "charngram embedding")
        flat = ids.reshape(-1)  # (B·T,)
        weights = self.ngram_weight[flat].to(self.table.weight.dtype)  # (B·T, L)
        x = F.embedding_bag(self.ngram_index[flat], self.table.weight, per_sample_weights=weights, mode="sum")
        return x.view(B, T, -1)  # (B, T, D)

    def embed_words(self, words: Sequence[str]) -> Tensor:
        """Vectors (N, D) for any strings from their known n-grams (zero if none is known)."""
        keys = [self._keys(w) for w in words]
        index, weight = pack_rows([[self.ngram_ids[k] for k in ks if k in self.ngram_ids] for ks in keys])
        w = self.table.weight
        return F.embedding_bag(index.to(w.device), w, per_sample_weights=weight.to(w), mode="sum")


WORD_EMBEDDINGS = (PretrainedEmbedding, SubwordEmbedding, CharNgramEmbedding)
