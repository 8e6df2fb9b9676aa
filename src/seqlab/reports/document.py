"""A small document model for reports, written as self-contained HTML, Markdown and JSON.

A :class:`Report` is a title, sections and the raw ``data`` behind it; a section holds blocks:
:class:`Paragraph`, :class:`Bullets`, :class:`Table`, :class:`Figure` and :class:`Code`.
:func:`write_report` writes three views of the same document:

* ``<stem>.html`` — one file that needs no network: CSS inline, every figure embedded as a
  ``data:`` URI, no script, and a Content-Security-Policy that forbids loading anything else;
* ``<stem>.md`` — the same text, figures linked by their relative paths;
* ``<stem>.json`` — every block as a dict (tables with their raw ``rows`` and the ``display``
  strings the other two views show) plus ``data``; strict JSON (NaN and infinity become null).

Table cells are formatted in one place, :meth:`Table.display`, so the HTML, the Markdown and
the JSON's ``display`` always agree.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqlab.errors import SeqlabError
from seqlab.fileio import atomic_write_text

EMPTY_CELL = "—"  # what None shows as: a visible dash, never an empty cell
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportError(SeqlabError, ValueError):
    """A report cannot be written: a figure file is missing or a table is malformed."""


# -- blocks ---------------------------------------------------------------------------------------


@dataclass
class Paragraph:
    """Plain text; `code` spans in backticks and **bold** are the only markup."""

    text: str


@dataclass
class Bullets:
    """A bulleted list; each item follows :class:`Paragraph`'s inline rules."""

    items: list[str]


@dataclass
class Table:
    """A table of raw cells, formatted for display by :meth:`display`.

    Args:
        caption: what the table shows (also its default HTML id, slugged).
        header: column titles, with units (e.g. ``"tokens/s"``).
        rows: raw cells — int, float, str, bool or None; every row as long as ``header``.
        formats: per column, a format spec for numbers (``".3f"``, ``",.0f"``, ``".1%"``);
            None (for the table or a column) picks one automatically.
        id: the HTML id; empty = a slug of the caption.
    """

    caption: str
    header: list[str]
    rows: list[list[Any]]
    formats: list[str | None] | None = None
    id: str = ""

    def __post_init__(self) -> None:
        width = len(self.header)
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise ReportError(
                    f"table {self.caption!r}: row {i} has {len(row)} cells, the header has {width}"
                )
        if self.formats is not None and len(self.formats) != width:
            raise ReportError(f"table {self.caption!r}: {len(self.formats)} formats for {width} columns")

    def display(self) -> list[list[str]]:
        """The cells as shown: None -> "—", numbers by the column's format (or automatically),
        NaN / infinity as "nan" / "inf" / "-inf", booleans as "yes" / "no"."""
        formats = self.formats or [None] * len(self.header)
        return [[format_cell(cell, spec) for cell, spec in zip(row, formats)] for row in self.rows]


@dataclass
class Figure:
    """An image file (PNG), ``path`` relative to the report's directory."""

    path: str
    caption: str


@dataclass
class Code:
    """Preformatted text: a config, generated samples, the environment."""

    text: str
    title: str = ""
    language: str = ""


Block = Paragraph | Bullets | Table | Figure | Code


@dataclass
class Section:
    """A titled part of the report; one entry of the table of contents."""

    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """A whole report: title, sections and the raw results behind it (written to the JSON)."""

    title: str
    sections: list[Section]
    subtitle: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# -- cell formatting ------------------------------------------------------------------------------


def format_cell(value: Any, spec: str | None = None) -> str:
    """One table cell as text (see :meth:`Table.display`)."""
    if value is None:
        return EMPTY_CELL
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if spec:
            return format(value, spec)
        return f"{value:,}" if isinstance(value, int) else _auto_float(value)
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value))


def _auto_float(value: float) -> str:
    """4 significant digits; whole numbers with thousands separators from 1,000; scientific
    below 0.001."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < 1e-3:
        return f"{value:.2e}"
    text = f"{value:.4g}"
    return f"{value:,.0f}" if magnitude >= 1e3 or "e" in text else text


# -- ids ------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """``"Final metrics (val)"`` -> ``"final-metrics-val"``; never empty."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def _assign_ids(report: Report) -> tuple[list[str], dict[int, str]]:
    """Unique HTML ids: one per section (in order) and one per table (by ``id(table)``)."""
    seen: set[str] = set()

    def unique(base: str) -> str:
        name, n = base, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        return name

    section_ids = [unique("section-" + slug(s.title)) for s in report.sections]
    table_ids = {
        id(block): unique(block.id or "table-" + slug(block.caption))
        for section in report.sections
        for block in section.blocks
        if isinstance(block, Table)
    }
    return section_ids, table_ids


# -- inline markup --------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`[^`]+`)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def inline_html(text: str) -> str:
    """Escape ``text`` for HTML, then turn `code` spans and **bold** into tags."""
    parts = []
    for part in _CODE_SPAN.split(text):
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            parts.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            parts.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(parts)


def inline_markdown(text: str) -> str:
    """Markdown keeps the markup as written; angle brackets outside code spans are escaped so
    no raw HTML reaches a Markdown renderer."""
    return "".join(
        part if part.startswith("`") and part.endswith("`") and len(part) > 1 else _escape_angles(part)
        for part in _CODE_SPAN.split(text)
    )


def _escape_angles(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- writing --------------------------------------------------------------------------------------


def write_report(report: Report, out_dir: str | Path, stem: str = "report") -> dict[str, Path]:
    """Write ``out_dir/<stem>.html``, ``.md`` and ``.json``, each atomically.

    Everything is rendered before anything is written, so a missing figure leaves no partial set.

    Args:
        report: the document.
        out_dir: the report's directory; figure paths are relative to it.
        stem: the file name without suffix.

    Returns:
        ``{"html": path, "md": path, "json": path}``.

    Raises:
        ReportError: a figure file is missing or is not a PNG.
    """
    out_dir = Path(out_dir)
    section_ids, table_ids = _assign_ids(report)
    texts = {
        "html": render_html(report, out_dir, section_ids, table_ids),
        "md": render_markdown(report, section_ids),
        "json": json.dumps(report_dict(report, section_ids, table_ids), indent=2, allow_nan=False) + "\n",
    }
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in texts}
    for kind, text in texts.items():
        atomic_write_text(paths[kind], text)
    return paths


def figure_data_uri(figure: Figure, out_dir: Path) -> str:
    """The figure's PNG as a ``data:image/png;base64,...`` URI.

    Raises:
        ReportError: the file is missing or is not a PNG.
    """
    path = out_dir / figure.path
    if not path.is_file():
        raise ReportError(f"figure {figure.caption!r}: no file {path}")
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ReportError(f"figure {figure.caption!r}: {path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def report_dict(
    report: Report, section_ids: list[str] | None = None, table_ids: dict[int, str] | None = None
) -> dict[str, Any]:
    """The report as strict-JSON-ready data: NaN / infinity are None in ``rows`` and ``data``."""
    if section_ids is None or table_ids is None:
        section_ids, table_ids = _assign_ids(report)
    sections = [
        {"title": s.title, "id": sid, "blocks": [_block_dict(b, table_ids) for b in s.blocks]}
        for s, sid in zip(report.sections, section_ids)
    ]
    return {
        "title": report.title,
        "subtitle": report.subtitle,
        "sections": sections,
        "data": _jsonable(report.data),
    }


def _block_dict(block: Block, table_ids: dict[int, str]) -> dict[str, Any]:
    if isinstance(block, Paragraph):
        return {"type": "paragraph", "text": block.text}
    if isinstance(block, Bullets):
        return {"type": "bullets", "items": list(block.items)}
    if isinstance(block, Table):
        return {
            "type": "table",
            "id": table_ids[id(block)],
            "caption": block.caption,
            "header": list(block.header),
            "formats": block.formats,
            "rows": _jsonable(block.rows),
            "display": block.display(),
        }
    if isinstance(block, Figure):
        return {"type": "figure", "path": block.path, "caption": block.caption}
    if isinstance(block, Code):
        return {"type": "code", "title": block.title, "language": block.language, "text": block.text}
    raise ReportError(f"not a report block: {type(block).__name__}")


def _jsonable(value: Any) -> Any:
    """Plain JSON data: NaN / infinity -> None, tuples -> lists, numpy scalars -> Python,
    paths and other objects -> str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


# -- HTML -----------------------------------------------------------------------------------------

# nothing may be fetched: inline styles, data: images, no scripts, no forms, no frames
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --stripe: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 64rem; padding: 1.5rem 1.25rem 3rem; color: var(--fg);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.9rem; margin: 0 0 .2rem; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem;
  border-bottom: 1px solid var(--line); }
.subtitle { color: var(--muted); margin: 0 0 1rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
nav.toc { background: var(--stripe); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem 1.2rem; }
nav.toc h2 { font-size: 1rem; margin: .2rem 0; border: 0; }
nav.toc ol { margin: .2rem 0; padding-left: 1.3rem; }
code { font: .9em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--stripe); padding: .1em .3em; border-radius: 4px; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table.report-table { border-collapse: collapse; font-size: .92rem; min-width: 40%; }
table.report-table caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0; }
table.report-table th, table.report-table td { border: 1px solid var(--line); padding: .3rem .65rem; }
table.report-table th { background: var(--stripe); text-align: left; }
table.report-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.report-table tbody tr:nth-child(even) { background: #fbfcfd; }
figure.report-figure { margin: 1.2rem 0; }
figure.report-figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figure.report-figure figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
.code-title { font-weight: 600; margin: 1rem 0 .2rem; }
pre.report-code { background: var(--stripe); border: 1px solid var(--line); border-radius: 6px;
  padding: .7rem .9rem; overflow-x: auto; max-height: 36rem; }
pre.report-code code { background: none; padding: 0; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""


def render_html(report: Report, out_dir: Path, section_ids: list[str], table_ids: dict[int, str]) -> str:
    """The whole page; figures are read from ``out_dir`` and embedded."""
    from seqlab import __version__

    esc = html.escape
    toc = "\n".join(
        f'<li><a href="#{sid}">{esc(s.title)}</a></li>' for s, sid in zip(report.sections, section_ids)
    )
    body = "\n".join(
        f'<section class="report-section" id="{sid}">\n<h2>{esc(s.title)}</h2>\n'
        + "\n".join(_block_html(b, out_dir, table_ids) for b in s.blocks)
        + "\n</section>"
        for s, sid in zip(report.sections, section_ids)
    )
    subtitle = f'<p class="subtitle">{inline_html(report.subtitle)}</p>\n' if report.subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="seqlab {esc(__version__)}">\n'
        f"<title>{esc(report.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1 class="report-title">{esc(report.title)}</h1>\n{subtitle}</header>\n'
        f'<nav class="toc">\n<h2>Contents</h2>\n<ol>\n{toc}\n</ol>\n</nav>\n'
        f"<main>\n{body}\n</main>\n"
        f"<footer>Written by seqlab {esc(__version__)}; the numbers behind this page are in "
        "the JSON file beside it.</footer>\n</body>\n</html>\n"
    )


def _block_html(block: Block, out_dir: Path, table_ids: dict[int, str]) -> str:
    esc = html.escape
    if isinstance(block, Paragraph):
        return f"<p>{inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "\n</ul>"
    if isinstance(block, Table):
        return _table_html(block, table_ids[id(block)])
    if isinstance(block, Figure):
        return (
            f'<figure class="report-figure">\n<img src="{figure_data_uri(block, out_dir)}" '
            f'alt="{esc(block.caption)}">\n<figcaption>{inline_html(block.caption)}</figcaption>\n</figure>'
        )
    if isinstance(block, Code):
        title = f'<div class="code-title">{esc(block.title)}</div>\n' if block.title else ""
        language = f' class="language-{esc(block.language)}"' if block.language else ""
        return f'{title}<pre class="report-code"><code{language}>{esc(block.text)}</code></pre>'
    raise ReportError(f"not a report block: {type(block).__name__}")


def _table_html(table: Table, table_id: str) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.header)
    numeric = _numeric_columns(table)
    rows = []
    for raw, shown in zip(table.rows, table.display()):
        cells = "".join(  # numbers right-aligned, and a missing number (—) with them
            f'<td class="num">{esc(s)}</td>' if _is_number(r) or (r is None and n) else f"<td>{esc(s)}</td>"
            for r, s, n in zip(raw, shown, numeric)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="table-wrap">\n<table class="report-table" id="{esc(table_id)}">\n'
        f"<caption>{inline_html(table.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n</div>"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_columns(table: Table) -> list[bool]:
    """Per column: does it hold any number (then it is right-aligned)?"""
    return [any(_is_number(row[j]) for row in table.rows) for j in range(len(table.header))]


# -- Markdown -------------------------------------------------------------------------------------


def render_markdown(report: Report, section_ids: list[str]) -> str:
    """GitHub-flavoured Markdown; figures are linked, not embedded."""
    lines = [f"# {inline_markdown(report.title)}", ""]
    if report.subtitle:
        lines += [f"_{inline_markdown(report.subtitle)}_", ""]
    lines += ["## Contents", ""]
    lines += [f"{i}. {inline_markdown(s.title)}" for i, s in enumerate(report.sections, 1)]
    for section in report.sections:
        lines += ["", f"## {inline_markdown(section.title)}"]
        for block in section.blocks:
            lines += ["", *_block_markdown(block)]
    return "\n".join(lines).rstrip() + "\n"


def _block_markdown(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return [inline_markdown(block.text)]
    if isinstance(block, Bullets):
        return [f"- {inline_markdown(item)}" for item in block.items]
    if isinstance(block, Table):
        cell = lambda s: _escape_angles(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        numeric = _numeric_columns(block)
        lines = [f"**{inline_markdown(block.caption)}**", ""]
        lines.append("| " + " | ".join(cell(h) for h in block.header) + " |")
        lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
        lines += ["| " + " | ".join(cell(s) for s in row) + " |" for row in block.display()]
        return lines
    if isinstance(block, Figure):
        alt = block.caption.replace("[", "(").replace("]", ")")
        return [f"![{_escape_angles(alt)}]({block.path})", "", f"*{inline_markdown(block.caption)}*"]
    if isinstance(block, Code):
        longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)
        title = [f"**{inline_markdown(block.title)}**", ""] if block.title else []
        return [*title, fence + block.language, block.text.rstrip("\n"), fence]
    raise ReportError(f"not a report block: {type(block).__name__}")
