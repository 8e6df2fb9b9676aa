"""Helpers shared by the ``scripts/data/prepare_*.py`` scripts (run by hand, never at import time).

Each prepare script reads a file downloaded once from a package registry (PyPI or Debian), turns
it into a small UTF-8 text file and writes it xz-compressed (preset 9) into
``src/seqlab/data/builtin/``; ``src/seqlab/data/builtin/DATA_SOURCES.md`` lists the commands.
"""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

from seqlab.fileio import atomic_write

BUILTIN = Path(__file__).resolve().parents[2] / "src" / "seqlab" / "data" / "builtin"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (printed so a rebuild can be checked against DATA_SOURCES.md)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_xz(name: str, text: str) -> Path:
    """Write ``text`` as UTF-8, xz preset 9, atomically to ``builtin/<name>``; returns the path.

    The output is byte-for-byte reproducible: same text, same file (xz stores no timestamp).
    """
    data = lzma.compress(text.encode("utf-8"), preset=9)
    path = BUILTIN / name

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    atomic_write(path, write)
    return path


def report(path: Path, text: str, what: str) -> str:
    """One line describing a written file, for the script's output."""
    return f"wrote {path} ({what}; {len(text):,} chars, {path.stat().st_size:,} bytes xz)"
