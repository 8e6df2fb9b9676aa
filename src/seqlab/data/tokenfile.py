"""Memory-mapped token files: corpora larger than RAM, tokenized once (nanoGPT's ``uint16`` idea).

Shape legend: B batch · T window length · N tokens in the file · L steps per stream row.

:func:`write_token_file` streams a text through a tokenizer chunk by chunk (about 1 MB each,
cut just after a newline, so the corpus is never held in memory) and writes the ids as raw
little-endian ``uint16`` (vocabularies of up to 65,536 ids) or ``uint32``, with a JSON sidecar
``<file>.json``::

    {"format": "seqlab-tokens", "dtype": "uint16", "count": 1115394, "vocab_size": 65,
     "source": "input.txt", "tokenizer": "CharTokenizer", "sha256": "9f2c..."}

The token file is written atomically (a temp file renamed into place), so an interrupted write
leaves any previous file untouched; the old sidecar is removed just before the rename and the
new one written just after, so a crash in between leaves a file that refuses to open rather
than one described by the wrong sidecar. :class:`TokenFile` opens the ids read-only with
:class:`numpy.memmap`: pages are read from disk only when a window touches them.

Chunks end at newlines, so the ids equal ``tokenizer.encode(whole text)`` for any tokenizer
whose tokens never span a newline (characters; BPE pre-tokenizers that keep newlines apart).
Tokens that can span one — the LM word pattern's whitespace runs such as ``"\n\n"`` — may be
split where a chunk ends (once per ~1 MB).

Example::

    >>> meta = write_token_file("input.txt", CharTokenizer.from_text(text), "train.bin")  # doctest: +SKIP
    >>> tokens = TokenFile("train.bin")  # doctest: +SKIP
    >>> x, y = tokens.random_windows(8, 128, torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())  # doctest: +SKIP
    (torch.Size([8, 128]), True)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqlab.data.files import decode_utf8
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write, atomic_write_text

__all__ = ["CHUNK_SIZE", "TokenFile", "file_chunks", "sidecar_path", "token_dtype", "write_token_file"]

CHUNK_SIZE = 1 << 20  # bytes of a file (characters of in-memory text) per tokenizer call
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}
FORMAT = "seqlab-tokens"


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar describing a token file: ``train.bin`` -> ``train.bin.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def token_dtype(vocab_size: int) -> str:
    """``uint16`` when every id fits (vocab_size ≤ 65,536), else ``uint32``."""
    if not 1 <= vocab_size <= 2**32:
        raise ConfigError(f"vocab_size: expected an integer in [1, 2**32], got {vocab_size}")
    return "uint16" if vocab_size <= 2**16 else "uint32"


def _vocab_size(tokenizer: Any) -> int:
    size = getattr(tokenizer, "vocab_size", None)
    if size is None and hasattr(tokenizer, "get_vocab_size"):  # Hugging Face tokenizers.Tokenizer
        size = tokenizer.get_vocab_size()
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ConfigError(f"{type(tokenizer).__name__} has no integer vocab_size; pass vocab_size=")
    return int(size)


def file_chunks(
    path: Path, chunk_size: int = CHUNK_SIZE, stop: int | None = None
) -> Iterator[tuple[int, str]]:
    """(first line, text) pieces of a UTF-8 file, each ending just after a newline (but the last).

    ``stop``: read only the first ``stop`` bytes (cut them at a line start to keep lines whole).
    """
    line, pending, left = 1, b"", stop
    with open(path, "rb") as f:
        while block := f.read(chunk_size if left is None else min(chunk_size, left)):
            left = None if left is None else left - len(block)
            pending += block
            cut = pending.rfind(b"\n") + 1  # b"\n" never occurs inside a multi-byte UTF-8 character
            if cut == 0:
                continue  # a line longer than a chunk: keep reading until it ends
            text = decode_utf8(pending[:cut], path, line)
            yield line, text.removeprefix("\ufeff") if line == 1 else text
            line, pending = line + pending.count(b"\n", 0, cut), pending[cut:]
    if pending:
        text = decode_utf8(pending, path, line)
        yield line, text.removeprefix("\ufeff") if line == 1 else text


def _text_chunks(texts: Iterable[str], chunk_size: int) -> Iterator[tuple[int, str]]:
    """The same for in-memory text pieces, concatenated as given (add separators yourself)."""
    line, buffer, size = 1, [], 0
    for piece in texts:
        if not isinstance(piece, str):
            raise ConfigError(f"write_token_file: expected text pieces (str), got {type(piece).__name__}")
        buffer.append(piece)
        size += len(piece)
        if size >= chunk_size:
            joined = "".join(buffer)
            cut = joined.rfind("\n") + 1
            buffer, size = ([joined[cut:]], len(joined) - cut) if cut else ([joined], size)
            if cut:
                yield line, joined[:cut]
                line += joined.count("\n", 0, cut)
    if size:
        yield line, "".join(buffer)


def _ids(encoded: Any, vocab_size: int, where: str) -> np.ndarray:
    ids = np.asarray(getattr(encoded, "ids", encoded), dtype=np.int64)  # .ids: a tokenizers.Encoding
    if ids.ndim != 1:
        raise ConfigError(f"{where}: the tokenizer returned an array of shape {ids.shape}, not a list of ids")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = int(ids.min() if ids.min() < 0 else ids.max())
        raise ConfigError(f"{where}: the tokenizer gave id {bad}, outside [0, vocab_size={vocab_size})")
    return ids


def write_token_file(
    source: str | os.PathLike | Iterable[str],
    tokenizer: Any,
    out_path: str | Path,
    *,
    vocab_size: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> dict:
    """Tokenize a text file (or text pieces) chunk by chunk into a memory-mappable token file.

    Args:
        source: a UTF-8 file (a ``str`` or path-like is always a path), or an iterable of text
            pieces joined as given — e.g. ``open(...)`` lines, or ``[text]``.
        tokenizer: anything with ``encode(str)`` returning ids (a list, an array, or an object
            with ``.ids``) and a ``vocab_size`` (or ``get_vocab_size()``).
        out_path: the token file; its sidecar is ``out_path + '.json'``.
        vocab_size: overrides the tokenizer's (it picks the dtype and bounds the ids).
        chunk_size: bytes (or characters) per tokenizer call; chunks are cut after a newline.

    Returns:
        The sidecar's content (``dtype``, ``count``, ``vocab_size``, ``source``, ``sha256``...).
    """
    out_path = Path(out_path)
    vocab = _vocab_size(tokenizer) if vocab_size is None else vocab_size
    dtype = token_dtype(vocab)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        chunks, name = file_chunks(path, chunk_size), str(path)
    else:
        chunks, name = _text_chunks(source, chunk_size), "<text>"
    digest, count = hashlib.sha256(), 0

    def write(tmp: str) -> None:
        nonlocal count
        with open(tmp, "wb") as f:
            for line, text in chunks:
                ids = _ids(tokenizer.encode(text), vocab, f"{name}:{line}")
                data = ids.astype(DTYPES[dtype]).tobytes()
                f.write(data)
                digest.update(data)
                count += len(ids)
        if count == 0:
            raise ConfigError(f"{name}: no tokens (the text is empty)")
        sidecar_path(out_path).unlink(missing_ok=True)  # never let the old sidecar describe new data

    try:
        atomic_write(out_path, write)
    finally:
        chunks.close()  # closes the source file if the write stopped half-way
    meta = {
        "format": FORMAT,
        "dtype": dtype,
        "count": count,
        "vocab_size": vocab,
        "source": name,
        "tokenizer": type(tokenizer).__name__,
        "sha256": digest.hexdigest(),
    }
    atomic_write_text(sidecar_path(out_path), json.dumps(meta, indent=2) + "\n")
    return meta


def _read_sidecar(path: Path) -> dict:
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{side}: missing sidecar of token file {path} (write it with write_token_file)"
        ) from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{side}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{side}: cannot read ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f'{side}: not a seqlab token-file sidecar (expected "format": {FORMAT!r})')
    if meta.get("dtype") not in DTYPES:
        raise ConfigError(f"{side}: dtype: expected one of {list(DTYPES)}, got {meta.get('dtype')!r}")
    for key in ("count", "vocab_size"):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int) or meta[key] < 1:
            raise ConfigError(f"{side}: {key}: expected a positive integer, got {meta.get(key)!r}")
    return meta


class TokenFile:
    """A token file opened read-only with :class:`numpy.memmap`; ids come out as LongTensors.

    Opening checks the sidecar and that the file holds exactly ``count`` ids of its ``dtype``
    (a truncated or foreign file is an error); :meth:`verify` also checks the SHA-256.

    Example::

        >>> tokens = TokenFile("train.bin")  # doctest: +SKIP
        >>> len(tokens), tokens[:5]  # doctest: +SKIP
        (1115394, tensor([18, 47, 56, 57, 58]))
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta = _read_sidecar(self.path)
        self.dtype = DTYPES[self.meta["dtype"]]
        self.vocab_size: int = self.meta["vocab_size"]
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such token file (its sidecar exists)")
        size, expected = self.path.stat().st_size, self.meta["count"] * self.dtype.itemsize
        if size != expected:
            raise ConfigError(
                f"{self.path}: {size} bytes, but its sidecar says {self.meta['count']} {self.meta['dtype']} "
                f"ids = {expected} bytes (a truncated file, or not the one the sidecar describes)"
            )
        self.data = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.meta["count"],))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int | slice) -> Tensor:
        """Ids as int64: a (k,) LongTensor for a slice, a 0-d one for an integer."""
        return torch.from_numpy(np.asarray(self.data[index], dtype=np.int64))

    def verify(self) -> None:
        """Re-hash the file (reading it once) and compare with the sidecar's SHA-256."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            while block := f.read(CHUNK_SIZE):
                digest.update(block)
        if digest.hexdigest() != self.meta.get("sha256"):
            raise ConfigError(f"{self.path}: SHA-256 differs from its sidecar's: the file has changed")

    def random_windows(
        self, batch_size: int, seq_len: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """B windows at random offsets (drawn from ``generator``): inputs and next-token targets.

        Returns:
            ``(inputs, targets)``, each a (B, T) LongTensor with ``targets[:, t] = inputs[:, t + 1]``
            inside the window and ``targets[:, -1]`` the id after it.
        """
        if len(self) <= seq_len:
            raise ConfigError(
                f"{self.path}: {len(self)} tokens, too few for windows of {seq_len} (+1 target)"
            )
        starts = torch.randint(0, len(self) - seq_len, (batch_size,), generator=generator).tolist()
        rows = np.stack([self.data[s : s + seq_len + 1] for s in starts]).astype(np.int64)  # (B, T + 1)
        rows = torch.from_numpy(rows)
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()

    def stream_rows(self, batch_size: int) -> int:
        """L = ⌊(N − 1) / B⌋: the steps per row when the N − 1 (input, target) steps are laid out
        as B contiguous rows for truncated BPTT (the layout of :mod:`seqlab.tasks.stream`)."""
        L = (len(self) - 1) // batch_size
        if L < 2:
            raise ConfigError(f"{self.path}: {len(self)} tokens, too few for {batch_size} rows")
        return L

    def stream_batch(self, batch_size: int, start: int, length: int) -> tuple[Tensor, Tensor]:
        """Steps [start, start + length) of every row: inputs and targets, each (B, length).

        Row b holds steps [b·L, (b+1)·L), so consecutive windows of a row continue each other and
        a recurrent state can be carried across them. Only the windows are read from disk.
        """
        L = self.stream_rows(batch_size)
        if not 0 <= start < start + length <= L:
            raise ConfigError(f"window [{start}, {start + length}) is outside the rows' {L} steps")
        offsets = [b * L + start for b in range(batch_size)]
        rows = np.stack([self.data[o : o + length + 1] for o in offsets]).astype(np.int64)  # (B, length + 1)
        rows = torch.from_numpy(rows)
        return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
