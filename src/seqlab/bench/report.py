"""Presenting ``seqlab bench`` records: a text table and throughput / memory vs T figures.

Every figure is written atomically (:func:`seqlab.fileio.atomic_write`) with matplotlib's Agg
backend; each case is one colour, its reference the same colour dashed.
"""

from __future__ import annotations

import math
from pathlib import Path

from seqlab.fileio import atomic_write

COLUMNS = (
    ("case", 20, "case"),
    ("kind", 8, "kind"),
    ("dtype", 9, "dtype"),
    ("B", 4, "B"),
    ("T", 6, "T"),
    ("tok/s", 10, "tokens_per_s"),
    ("ref tok/s", 10, "reference_tokens_per_s"),
    ("ratio", 7, "ratio"),
    ("MB", 8, "peak_mb"),
    ("ref MB", 8, "reference_peak_mb"),
    ("MFU", 7, "mfu"),
    ("ref MFU", 8, "reference_mfu"),
    ("ms/tok", 8, "ms_per_token"),
)


def _cell(key: str, value: object, width: int) -> str:
    if value is None:
        return f"{'-':>{width}s}"
    if key in ("case", "kind", "dtype"):
        return f"{value!s:{width}s}"
    if key in ("mfu", "reference_mfu"):
        return f"{100 * value:{width - 1}.1f}%"
    if key == "ratio":
        return f"{value:{width - 1}.2f}x"
    if isinstance(value, float):
        return f"{value:{width}.{1 if abs(value) < 100 else 0}f}"
    return f"{value!s:>{width}s}"


def format_table(records: list[dict]) -> str:
    """One line per record; ratio = case tokens/s ÷ reference tokens/s (> 1: the case is faster);
    MFU against the matmul peak of the record's dtype; errors and notes after the row."""
    lines = [
        " ".join(f"{title:>{w}s}" if i > 2 else f"{title:{w}s}" for i, (title, w, _) in enumerate(COLUMNS))
    ]
    for r in records:
        row = " ".join(_cell(key, r.get(key), w) for _, w, key in COLUMNS)
        extra = r.get("error") or r.get("note") or ""
        lines.append(f"{row}  {extra}".rstrip())
    return "\n".join(lines)


def _series(records: list[dict], key: str) -> dict[str, list[tuple[int, float]]]:
    """{label: [(T, value)]} for the case (key) and its reference (reference_key), T ascending."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for prefix, suffix in (("", ""), ("reference_", " (ref)")):
            value = r.get(prefix + key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                continue
            label = f"{r['case']} {r['dtype'] if not prefix else r['reference_dtype']}{suffix}"
            out.setdefault(label, []).append((r["T"], value))
    return {label: sorted(points) for label, points in out.items()}


def _plot(records: list[dict], key: str, ylabel: str, path: Path, floor: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5))
    colours: dict[str, object] = {}
    for label, points in _series(records, key).items():
        case = label.split()[0]
        colour = colours.setdefault(case, f"C{len(colours) % 10}")
        ts, ys = zip(*points, strict=True)
        style = "--" if label.endswith("(ref)") else "-"
        ax.plot(ts, [max(y, floor) for y in ys], style, marker="o", color=colour, label=label)
    ax.set(xscale="log", yscale="log", xlabel="T (context for decode)", ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if colours:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def plot_throughput(records: list[dict], path: Path) -> None:
    """tokens/s vs T, log-log, each case and (dashed) its reference."""
    _plot(records, "tokens_per_s", "tokens / s (median)", path, floor=1e-3)


def plot_memory(records: list[dict], path: Path) -> None:
    """Extra peak memory (MB) vs T, log-log (values below 0.1 MB drawn at 0.1)."""
    _plot(records, "peak_mb", "extra peak memory (MB)", path, floor=0.1)
