"""The built-in corpus and reading users' language-modelling text (a file or a folder of ``*.txt``)."""

from __future__ import annotations

from pathlib import Path

from seqlab.data.files import read_text_corpus
from seqlab.errors import ConfigError

BUILTIN = Path(__file__).parent / "builtin" / "tragedies.txt"


def builtin_corpus_path() -> Path:
    """Macbeth, Romeo and Juliet and Hamlet (public domain; see builtin/DATA_CARD.md)."""
    return BUILTIN


def read_text(path: str | Path | None) -> str:
    """The text of ``path`` (None = the built-in corpus), read by :func:`.files.read_text_corpus`.

    ``path`` is a UTF-8 file (a leading byte-order mark dropped) or a folder of ``*.txt`` files
    (joined in name order, one blank line between). Bad input is one :class:`ConfigError` line
    naming the file, and the line and column of a byte that is not UTF-8; an empty file, or a
    text shorter than 2 characters (an LM needs an input and a target), is an error too.

    Example::

        >>> read_text(None).splitlines()[0]
        'FIRST WITCH:'
    """
    path = Path(path) if path else BUILTIN
    text = read_text_corpus(path).text
    if len(text) < 2:
        raise ConfigError(f"{path}: expected at least 2 characters of text, got {len(text)}")
    return text
