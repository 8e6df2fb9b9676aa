"""Helpers shared by the ``scripts/data/prepare_*.py`` scripts (run by hand, never at import time).

Each prepare script reads a file downloaded once from a package registry (PyPI or Debian), turns
it into a small UTF-8 text file and writes it (xz-compressed, preset 9, when the name ends in
``.xz``) into ``src/seqlab/data/builtin/``; ``DATA_SOURCES.md`` and ``SERIES_SOURCES.md`` there
list the commands. The scripts import this module as ``common`` (Python puts the script's folder
on the path).

Nothing here needs torch: :mod:`seqlab.fileio` imports only the standard library, and
:func:`load_series_csv` loads ``seqlab/data/series_csv.py`` by its path, because importing it as
``seqlab.data.series_csv`` would run ``seqlab/data/__init__.py``, which imports torch (absent from
the scratch venv ``prepare_series.py`` runs in).
"""

from __future__ import annotations

import hashlib
import importlib.util
import lzma
import sys
from pathlib import Path
from types import ModuleType

from seqlab.fileio import atomic_write

SRC = Path(__file__).resolve().parents[2] / "src"
BUILTIN = SRC / "seqlab" / "data" / "builtin"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (printed so a rebuild can be checked against DATA_SOURCES.md)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_builtin(name: str, text: str) -> Path:
    """Write ``text`` as UTF-8 (xz preset 9 if ``name`` ends in ``.xz``) atomically to ``builtin/<name>``.

    Returns the path. The output is byte-for-byte reproducible: same text, same file (xz stores
    no timestamp).
    """
    data = text.encode("utf-8")
    if name.endswith(".xz"):
        data = lzma.compress(data, preset=9)
    path = BUILTIN / name

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    atomic_write(path, write)
    return path


def report(path: Path, text: str, what: str) -> str:
    """One line describing a written file, for the script's output (compare with the SOURCES pages)."""
    size = f"{path.stat().st_size:,} bytes" + (" xz" if path.suffix == ".xz" else "")
    return f"wrote {path.name} ({what}; {len(text):,} chars, {size}, sha256 {sha256(path)})"


def load_series_csv() -> ModuleType:
    """``src/seqlab/data/series_csv.py`` loaded by path: the series format without torch.

    Example::

        series_csv = load_series_csv()
        text = series_csv.series_to_csv(series)  # any object with values, columns, timestamps, labels
    """
    name = "seqlab_series_csv"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SRC / "seqlab" / "data" / "series_csv.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
