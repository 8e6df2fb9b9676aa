"""Reports: a small document model written as self-contained HTML, Markdown and JSON
(:mod:`seqlab.reports.document`), the environment a report was made in, training-curve plots
and the report of one training run (``seqlab report RUN_DIR``)."""

from __future__ import annotations

from seqlab.reports.document import (
    Block,
    Bullets,
    Code,
    Figure,
    Paragraph,
    Report,
    ReportError,
    Section,
    Table,
    write_report,
)
from seqlab.reports.environment import environment

__all__ = [
    "Block",
    "Bullets",
    "Code",
    "Figure",
    "Paragraph",
    "Report",
    "ReportError",
    "Section",
    "Table",
    "environment",
    "write_report",
]
