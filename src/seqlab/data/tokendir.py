"""Token directories: a language-modelling corpus tokenised once, memory-mapped for training.

A corpus larger than RAM is streamed through a tokenizer into a ``uint16``/``uint32`` file
(:mod:`seqlab.data.tokenfile`); the LM task then reads random windows (or TBPTT rows) straight
from the memory map, touching only the pages it needs. Layout::

    DIR/tokenizer.json          the tokenizer, trained on the training text only
    DIR/train.bin (+ .json)     the training ids and their sidecar (dtype, count, SHA-256)
    DIR/validation.txt          the held-out text (small; re-encoded when the task starts)

Made by ``seqlab data prepare tokens`` (or :func:`prepare_token_dir`), used by
``seqlab train --task charlm --set task.tokens=DIR``. The directory is built under a temporary
name and renamed into place whole, so an interrupted preparation never leaves a half-made
directory where a good one was.

Example::

    $ seqlab data prepare tokens --text big.txt --val-fraction 0.01 --tokenizer bpe \\
          --vocab-size 8192 --out data/big-bpe
    $ seqlab train --task charlm --model lstm --set task.tokens=data/big-bpe
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from seqlab.data.files import decode_utf8, read_utf8
from seqlab.data.tokenfile import TokenFile, file_chunks, write_token_file
from seqlab.data.tokenizers import (
    LM_WORD_PATTERN,
    SUBWORD_KINDS,
    CharTokenizer,
    Tokenizer,
    load_tokenizer,
    train_tokenizer,
)
from seqlab.errors import ConfigError
from seqlab.fileio import UMASK, atomic_write_text, fsync_dir

__all__ = ["SUBWORD_VOCAB", "open_token_dir", "prepare_token_dir", "split_file", "train_lm_tokenizer"]

SUBWORD_VOCAB = 1024  # the subword vocabulary size when none is given
MAX_HELD_OUT = 1 << 20  # bytes of a file's tail held out at most (1 MiB ≫ 64 windows of 128 tokens)
TOKENIZER, TRAIN, VALIDATION = "tokenizer.json", "train.bin", "validation.txt"


def train_lm_tokenizer(
    kind: str, pieces: Iterable[str], held_out: str = "", *, vocab_size: int | None, min_frequency: int
) -> Tokenizer:
    """The LM task's tokenizer, learnt from the training text given as ``pieces`` (e.g. lines).

    ``char`` with no limits (``vocab_size`` None, ``min_frequency`` 1) is the historical
    character vocabulary: the sorted distinct characters of the training **and** ``held_out``
    text, no special tokens. Every other choice is trained on the training text only, with
    special tokens and [UNK]; words keep the space before them (``LM_WORD_PATTERN``), so word
    text round-trips. Subword kinds default to :data:`SUBWORD_VOCAB` entries.
    """
    if kind == "char" and vocab_size is None and min_frequency == 1:
        chars = set(held_out)
        for piece in pieces:
            chars.update(piece)
        return CharTokenizer(sorted(chars))
    if kind in SUBWORD_KINDS:
        size = SUBWORD_VOCAB if vocab_size is None else vocab_size
        return train_tokenizer(kind, pieces, vocab_size=size, min_frequency=min_frequency)
    options = {"pattern": LM_WORD_PATTERN, "separator": ""} if kind == "word" else {}
    return train_tokenizer(kind, pieces, vocab_size=vocab_size, min_frequency=min_frequency, **options)


def split_file(path: str | Path, val_fraction: float) -> tuple[int, str]:
    """Where the held-out tail of a text file starts (a byte offset at a line start) and its text.

    The tail is the last ``val_fraction`` of the file's bytes — at most :data:`MAX_HELD_OUT`
    bytes, since it is held in memory and evaluation reads only its first windows — moved
    forward to the next line start, so no line is cut; the training part is every byte before
    it (streamed, never loaded).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(size - min(int(size * val_fraction), MAX_HELD_OUT))
        f.readline()  # finish the line the cut fell into
        cut = f.tell()
        tail = f.read()
    if cut == 0 or not tail.strip():
        raise ConfigError(
            f"{path}: too short to hold out {val_fraction:.0%} as whole lines; use a longer file, "
            "a larger fraction, or --validation FILE"
        )
    first_line = 1 + _count_newlines(path, cut)
    return cut, decode_utf8(tail, path, first_line)


def _count_newlines(path: Path, stop: int) -> int:
    count, left = 0, stop
    with open(path, "rb") as f:
        while left > 0 and (block := f.read(min(1 << 20, left))):
            count, left = count + block.count(b"\n"), left - len(block)
    return count


def _pieces(path: Path, stop: int | None, kind: str) -> Iterator[str]:
    """The training text, streamed: lines for the subword trainers (they parallelise over them),
    ~1 MB chunks for char and word, whose tokens (e.g. a ``"\n\n"`` whitespace run of the LM
    word pattern) may span lines — the same pieces :func:`write_token_file` encodes."""
    for _, chunk in file_chunks(path, stop=stop):
        if kind in SUBWORD_KINDS:
            yield from chunk.splitlines(keepends=True)
        else:
            yield chunk


def prepare_token_dir(
    out: str | Path,
    *,
    train: str | Path,
    validation: str | Path | None = None,
    val_fraction: float = 0.1,
    kind: str = "char",
    vocab_size: int | None = None,
    min_frequency: int = 1,
    overwrite: bool = False,
) -> dict:
    """Tokenise a training file (streamed) and its held-out text into the directory ``out``.

    Args:
        out: the token directory to create (refused if it exists, unless ``overwrite``).
        train: the training text file (UTF-8, any size: it is streamed twice, never loaded).
        validation: a held-out text file; None holds out the file's last ``val_fraction``.
        kind, vocab_size, min_frequency: the tokenizer (:func:`train_lm_tokenizer`).
        overwrite: replace an existing ``out`` — only once the new directory is complete.

    Returns:
        A summary: tokenizer kind and size, training tokens, held-out characters, the dtype.
    """
    out, train = Path(out), Path(train)
    _check_replaceable(out, overwrite)
    if validation is None:
        stop, held_out = split_file(train, val_fraction)
    else:
        stop, held_out = None, read_utf8(validation)
    tokenizer = train_lm_tokenizer(
        kind, _pieces(train, stop, kind), held_out, vocab_size=vocab_size, min_frequency=min_frequency
    )
    tokenizer.encode(held_out)  # fails now, naming the piece, if the held-out text cannot be encoded
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~UMASK)  # mkdtemp makes it private; the result is an ordinary dir
        tokenizer.save(tmp / TOKENIZER)
        pieces = (chunk for _, chunk in file_chunks(train, stop=stop))
        meta = write_token_file(pieces, tokenizer, tmp / TRAIN)
        atomic_write_text(tmp / VALIDATION, held_out)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "tokenizer": kind,
        "vocab_size": tokenizer.vocab_size,
        "train_tokens": meta["count"],
        "dtype": meta["dtype"],
        "validation_characters": len(held_out),
        "source": str(train),
    }


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """``out`` may be created, or replaced with ``overwrite`` if it is a token directory."""
    if not out.exists():
        return
    if not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    if not out.is_dir() or not (out / TRAIN).is_file() or not (out / TOKENIZER).is_file():
        raise ConfigError(
            f"{out} exists and is not a token directory (no {TRAIN} + {TOKENIZER}); "
            "--overwrite only replaces token directories: choose another --out"
        )


def _swap_in(new: Path, out: Path) -> None:
    """Put the complete directory ``new`` at ``out``: the old one is renamed aside first and
    deleted last, so ``out`` never holds a half-made directory (a crash between the two renames
    leaves the old one whole at ``.NAME.old``)."""
    old = out.with_name(f".{out.name}.old") if out.exists() else None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def open_token_dir(path: str | Path) -> tuple[Tokenizer, TokenFile, str]:
    """(tokenizer, training ids memory-mapped, held-out text) of a prepared token directory."""
    path = Path(path)
    missing = [name for name in (TOKENIZER, TRAIN, VALIDATION) if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            f"{path}: not a token directory (missing {', '.join(missing)}); make one with "
            "`seqlab data prepare tokens`"
        )
    tokenizer = load_tokenizer(path / TOKENIZER)
    tokens = TokenFile(path / TRAIN)
    if tokens.vocab_size != tokenizer.vocab_size:
        raise ConfigError(
            f"{path}: {TRAIN} was written for {tokens.vocab_size} ids but {TOKENIZER} has "
            f"{tokenizer.vocab_size}; prepare the directory again"
        )
    held_out = read_utf8(path / VALIDATION)
    return tokenizer, tokens, held_out
