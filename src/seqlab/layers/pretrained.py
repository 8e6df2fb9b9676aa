"""Pretrained word vectors -> embedding tables, with an out-of-vocabulary policy.

Shape legend: V vocabulary · D vector width.

:func:`pretrained_embedding` builds a :class:`~seqlab.layers.word_embedding.PretrainedEmbedding`
for a tokenizer's vocabulary from loaded vectors (:mod:`seqlab.data.vectors`): rows of words
the vectors know are copied (optionally matching case-insensitively), and the others follow
the OOV policy — ``random`` N(0, σ of the vectors), ``zero``, or ``ngram`` (composed from
character n-grams; see :func:`embedding_matrix`). The :class:`Coverage` report says which.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from seqlab.errors import ConfigError
from seqlab.layers.word_embedding import DEFAULT_SPECIALS, PretrainedEmbedding, fasttext_ngrams

__all__ = ["Coverage", "OOVPolicy", "Vectors", "embedding_matrix", "pretrained_embedding"]


class Vectors(Protocol):
    """What the builders below need of loaded vectors (:class:`seqlab.data.vectors.WordVectors`)."""

    words: list[str]

    @property
    def vectors(self) -> np.ndarray: ...  # (N, D)

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, word: object) -> bool: ...

    def get(self, word: str, default: np.ndarray | None = None) -> np.ndarray | None: ...

    def scale(self) -> float: ...


OOVPolicy = Literal["random", "zero", "ngram"]


@dataclass(frozen=True)
class Coverage:
    """How a vocabulary was covered: found exactly, found lower-cased, or OOV (and what OOV got)."""

    total: int
    exact: int
    lowercase: int
    composed: int  # OOV words given a vector composed from character n-grams
    random: int
    zero: int

    @property
    def found(self) -> int:
        return self.exact + self.lowercase

    @property
    def oov(self) -> int:
        return self.total - self.found

    def __str__(self) -> str:
        share = self.found / max(self.total, 1)
        return (
            f"{self.found}/{self.total} words found ({share:.1%}: {self.exact} exact, {self.lowercase} "
            f"lower-cased); {self.oov} OOV: {self.composed} n-gram composed, "
            f"{self.random} random, {self.zero} zero"
        )


def embedding_matrix(
    vectors: Vectors,
    vocab: Sequence[str],
    oov: OOVPolicy = "random",
    seed: int = 0,
    lowercase: bool = True,
    specials: Sequence[str] = DEFAULT_SPECIALS,
) -> tuple[np.ndarray, Coverage]:
    """The (V, D) float32 matrix for ``vocab``: each word's vector, OOV rows by ``oov``.

    Look-up order: the exact word, then (``lowercase``) its lower-cased form. OOV rows are
    ``random`` (N(0, σ²) with σ the std of the loaded vectors' entries, from ``seed``), ``zero``,
    or ``ngram``: fastText ``.bin`` vectors give the word's real subword vector (mean of its n-gram
    rows); text vectors give the similarity-weighted mean of the 5 known words whose sets of
    character 3..5-grams of ``<word>`` (lower-cased) have the highest cosine with the word's own
    (falling back to random when no known word shares an n-gram). Special tokens are never
    composed, and the empty word is never looked up nor composed: when OOV, ``zero`` gives them
    zero rows, the other policies random ones.

    ``vocab`` is meant to be a tokenizer's :attr:`~seqlab.data.tokenizers.Tokenizer.words` (its
    tokens with their markers removed: ``'Ġthe'`` and ``' the'`` are looked up as ``'the'``).
    A word may repeat (copies that are found share the vector); whitespace tokens are ``''``.
    """
    if oov not in ("random", "zero", "ngram"):
        raise ConfigError(f"oov: unknown policy {oov!r}; choose from: random, zero, ngram")
    matrix = np.zeros((len(vocab), vectors.dim), dtype=np.float32)
    counts = dict.fromkeys(("exact", "lowercase", "composed", "random", "zero"), 0)
    missing = []
    for i, word in enumerate(vocab):
        key = word if word in vectors else word.lower() if lowercase and word.lower() in vectors else None
        if key is None or not word:
            missing.append(i)
            continue
        matrix[i] = vectors.get(key)
        counts["exact" if key == word else "lowercase"] += 1
    composed: dict[str, np.ndarray] = {}
    if oov == "ngram":
        words = list(dict.fromkeys(vocab[i] for i in missing if vocab[i] and vocab[i] not in specials))
        composed = _compose_oov(vectors, words)
    sigma = vectors.scale() if missing and oov != "zero" else 0.0
    draws = np.random.default_rng(seed).normal(0.0, sigma, size=(len(missing), vectors.dim))
    for row, i in zip(draws, missing, strict=True):
        if vocab[i] in composed:
            matrix[i], kind = composed[vocab[i]], "composed"
        elif oov == "zero":
            kind = "zero"
        else:
            matrix[i], kind = row, "random"
        counts[kind] += 1
    return matrix, Coverage(total=len(vocab), **counts)


def _compose_oov(vectors: Vectors, words: Sequence[str], k: int = 5) -> dict[str, np.ndarray]:
    """OOV word -> vector from character n-grams (see :func:`embedding_matrix`)."""
    if hasattr(vectors, "subword_rows"):  # a fastText model: its own subword vectors
        return {w: v for w in words if (v := vectors.get(w)) is not None}

    def grams(word: str) -> set[str]:
        return set(fasttext_ngrams(word.lower(), 3, 5))

    wanted = {w: grams(w) for w in words}
    needed = set().union(*wanted.values())
    postings: dict[str, list[int]] = defaultdict(list)
    sizes = np.zeros(len(vectors))
    for i, known in enumerate(vectors.words):  # one pass over the known words
        g = grams(known)
        sizes[i] = len(g)
        for gram in g & needed:
            postings[gram].append(i)
    out = {}
    for word, g in wanted.items():
        hits = [postings[x] for x in g if x in postings]
        if not hits:
            continue
        ids, shared = np.unique(np.concatenate(hits), return_counts=True)
        score = shared / np.sqrt(len(g) * sizes[ids])  # cosine of the two n-gram sets
        top = np.argsort(-score, kind="stable")[:k]
        weights = score[top, None]
        out[word] = ((weights * vectors.vectors[ids[top]]).sum(0) / weights.sum()).astype(np.float32)
    return out


def pretrained_embedding(
    vectors: Vectors,
    vocab: Sequence[str],
    oov: OOVPolicy = "random",
    freeze: bool = True,
    seed: int = 0,
    lowercase: bool = True,
) -> tuple[PretrainedEmbedding, Coverage]:
    """An ``nn.Embedding`` for ``vocab`` initialised from ``vectors`` (see :func:`embedding_matrix`).

    Example:
        >>> from seqlab.data.vectors import WordVectors
        >>> wv = WordVectors(["cat", "dog"], np.eye(2, dtype=np.float32))
        >>> emb, cov = pretrained_embedding(wv, ["[PAD]", "Cat", "dog"], oov="zero")
        >>> emb.weight.tolist(), cov.found, emb.weight.requires_grad
        ([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], 2, False)
    """
    matrix, coverage = embedding_matrix(vectors, vocab, oov, seed, lowercase)
    return PretrainedEmbedding(torch.from_numpy(matrix), freeze=freeze), coverage
