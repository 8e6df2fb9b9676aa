"""Character tokenizer with JSON save/load (subword tokenizers arrive with the data pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

from seqlab.errors import RunDirError, ShapeError
from seqlab.fileio import atomic_write_text


class CharTokenizer:
    """One id per distinct character, in sorted order; unknown characters are an error."""

    def __init__(self, chars: list[str]) -> None:
        self.chars = list(chars)
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[ch] for ch in text]
        except KeyError as err:
            raise ShapeError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError(f"missing tokenizer file {path}") from None
        except json.JSONDecodeError as err:
            raise RunDirError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
        except (OSError, UnicodeDecodeError) as err:
            raise RunDirError(f"cannot read tokenizer file {path}: {err}") from None
        ok = isinstance(data, dict) and data.get("type") == "char" and isinstance(data.get("chars"), list)
        if not ok:
            raise RunDirError(f"{path}: not a character tokenizer file")
        return cls(data["chars"])
