"""The built-in corpus and reading users' text files."""

from __future__ import annotations

from pathlib import Path

from seqlab.errors import ConfigError

BUILTIN = Path(__file__).parent / "builtin" / "tragedies.txt"


def builtin_corpus_path() -> Path:
    """Macbeth, Romeo and Juliet and Hamlet (public domain; see builtin/DATA_CARD.md)."""
    return BUILTIN


def read_text(path: str | Path | None) -> str:
    """UTF-8 text of ``path`` (None = the built-in corpus); errors name the file and the problem."""
    path = Path(path) if path else BUILTIN
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"text file not found: {path}") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({err.reason})") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    if len(text) < 2:
        raise ConfigError(f"{path}: expected at least 2 characters of text, got {len(text)}")
    return text
