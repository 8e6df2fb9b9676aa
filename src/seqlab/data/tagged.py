"""Tagged sentences (one tag per token) and the two file formats users bring them in.

:class:`TaggedSentences` is the container of the ``tag`` task: N sentences, each a list of
tokens and a list of as many tags. Two readers fill it:

- :func:`read_conllu` — CoNLL-U (Universal Dependencies), parsed with the ``conllu`` package;
  the tag is the ``upos`` or ``xpos`` column. Multi-word token ranges (``2-3``) and empty
  nodes (``2.1``) are skipped: the tagged units are the syntactic words, as in UD's own
  tagging evaluation (CoNLL 2018 shared task, UPOS on words).
- :func:`read_columns` — plain ``token<TAB>tag`` lines, a blank line between sentences
  (the CoNLL-2000/2003 layout with two columns)::

      The<TAB>DET
      cat<TAB>NOUN
      <blank>
      Hello<TAB>INTJ

A malformed file is a :class:`~seqlab.errors.ConfigError` naming the file and the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from seqlab.errors import ConfigError

__all__ = ["TaggedSentences", "read_columns", "read_conllu", "read_tagged"]

TAG_COLUMNS = ("upos", "xpos")
FORMATS = ("auto", "conllu", "columns")


@dataclass
class TaggedSentences:
    """N sentences: ``tokens[i]`` and ``tags[i]`` are lists of equal, non-zero length."""

    tokens: list[list[str]]
    tags: list[list[str]]

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ConfigError(f"{len(self.tokens)} token lists but {len(self.tags)} tag lists")
        for i, (words, tags) in enumerate(zip(self.tokens, self.tags)):
            if not words or len(words) != len(tags):
                raise ConfigError(f"sentence {i}: {len(words)} tokens and {len(tags)} tags")

    def __len__(self) -> int:
        return len(self.tokens)

    def dedupe_keys(self) -> list[str]:
        """What makes two sentences the same input (for ``split_items``): their words."""
        return [" ".join(words) for words in self.tokens]

    def subset(self, index: Sequence[int]) -> TaggedSentences:
        return TaggedSentences([self.tokens[i] for i in index], [self.tags[i] for i in index])

    def tag_counts(self) -> Counter[str]:
        return Counter(t for tags in self.tags for t in tags)

    def stats(self) -> dict:
        counts = self.tag_counts()
        return {
            "sentences": len(self),
            "tokens": sum(counts.values()),
            "tags": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        }


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Runs of non-blank lines as [(line number, line)], numbered from 1."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err})") from None
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            block.append((number, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def read_columns(path: str | Path) -> TaggedSentences:
    """Sentences of a ``token<TAB>tag`` file (blank lines between sentences)."""
    path = Path(path)
    tokens, tags = [], []
    for block in _blocks(path):
        words, labels = [], []
        for number, line in block:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise ConfigError(
                    f"{path}, line {number}: expected 'token<TAB>tag' (2 non-empty tab-separated fields), "
                    f"got {line!r}"
                )
            words.append(fields[0].strip())
            labels.append(fields[1].strip())
        tokens.append(words)
        tags.append(labels)
    if not tokens:
        raise ConfigError(f"{path}: no sentences (expected 'token<TAB>tag' lines)")
    return TaggedSentences(tokens, tags)


def read_conllu(path: str | Path, column: Literal["upos", "xpos"] = "upos") -> TaggedSentences:
    """Sentences of a CoNLL-U file, tagged with ``column`` (``upos`` or ``xpos``).

    Every word line must have the 10 CoNLL-U fields and a tag in ``column`` (not ``_``);
    ``conllu``'s field checks (ids, heads, features) apply line by line.
    """
    from conllu.exceptions import ParseException
    from conllu.parser import DEFAULT_FIELDS, parse_line

    if column not in TAG_COLUMNS:
        raise ConfigError(
            f"column: unknown CoNLL-U tag column {column!r}; choose from {', '.join(TAG_COLUMNS)}"
        )
    path = Path(path)
    tokens, tags = [], []
    for block in _blocks(path):
        words, labels = [], []
        for number, line in block:
            if line.startswith("#"):
                continue
            where = f"{path}, line {number}"
            if line.count("\t") != 9:
                raise ConfigError(
                    f"{where}: expected 10 tab-separated CoNLL-U fields, got {line.count(chr(9)) + 1}"
                )
            try:
                token = parse_line(line, DEFAULT_FIELDS)
            except ParseException as err:
                raise ConfigError(f"{where}: {err}") from None
            if not isinstance(token["id"], int):  # a multi-word range (2-3) or an empty node (2.1)
                continue
            if token[column] in (None, "_"):
                raise ConfigError(
                    f"{where}: no {column} tag ('_'); try column={'xpos' if column == 'upos' else 'upos'}"
                )
            words.append(token["form"])
            labels.append(token[column])
        if words:
            tokens.append(words)
            tags.append(labels)
    if not tokens:
        raise ConfigError(f"{path}: no sentences (expected CoNLL-U word lines)")
    return TaggedSentences(tokens, tags)


def read_tagged(
    path: str | Path, format: Literal["auto", "conllu", "columns"] = "auto", column: str = "upos"
) -> TaggedSentences:
    """Read ``path`` as CoNLL-U or ``token<TAB>tag``; ``auto``: ``.conllu`` files are CoNLL-U."""
    if format not in FORMATS:
        raise ConfigError(f"format: unknown tagged-file format {format!r}; choose from {', '.join(FORMATS)}")
    if format == "conllu" or (format == "auto" and Path(path).suffix.lower() == ".conllu"):
        return read_conllu(path, column)  # type: ignore[arg-type]
    return read_columns(path)
