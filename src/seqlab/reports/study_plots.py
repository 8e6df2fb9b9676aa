"""The plots of a comparison study (matplotlib's Agg canvas; every PNG written atomically).

* :func:`plot_lines` — one line per model against a shared x (throughput, memory and latency
  against length, gradient norm against step), optionally on log axes.
* :func:`plot_loss_curves` — training loss against step and against training time, a line per model.
* :func:`plot_attention` — attention heatmaps, a panel per (block, head).
* :func:`plot_forecasts` — actual series and each model's forecasts, a panel per model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqlab.evaluation.plots import moving_average
from seqlab.fileio import atomic_write

Series = dict[str, tuple[list[float], list[float]]]  # name -> (x, y)


def _canvas(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(draw: Callable[[], Any], path: Path) -> Path:
    """Draw a figure and write it to ``path`` atomically."""

    def write(tmp: str) -> None:
        fig = draw()
        fig.tight_layout()
        fig.savefig(tmp, format="png")

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return path


def plot_lines(
    series: Series,
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """A line (with markers) per series against its x values."""

    def draw() -> Any:
        fig = _canvas(7.5, 4.2)
        ax = fig.add_subplot()
        for i, (name, (x, y)) in enumerate(series.items()):
            marker = "o" if len(x) <= 12 else None
            ax.plot(x, y, marker=marker, ms=4, color=f"C{i % 10}", label=name)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return fig

    return _save(draw, path)


def plot_loss_curves(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> Path:
    """Training loss (moving average over ~1/20 of the points) against step and against
    training time; ``curves`` maps a model to ``{"step", "time_s", "loss"}``."""

    def draw() -> Any:
        fig = _canvas(11, 4.2)
        axes = fig.subplots(1, 2, sharey=True)
        for i, (name, c) in enumerate(curves.items()):
            window = max(1, len(c["loss"]) // 20) | 1
            smooth = moving_average(c["loss"], window)
            axes[0].plot(c["step"], smooth, color=f"C{i % 10}", label=name)
            axes[1].plot(c["time_s"], smooth, color=f"C{i % 10}", label=name)
        axes[0].set(xlabel="step", ylabel="training loss (moving average)")
        axes[1].set(xlabel="training time (s)")
        for ax in axes:
            ax.grid(True, alpha=0.3)
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(title)
        return fig

    return _save(draw, path)


def plot_attention(tokens: list[str], blocks: dict[str, list], path: Path, title: str) -> Path:
    """Heatmaps of attention weights, ``blocks[index]`` of shape (H, T, T): rows are queries,
    columns keys; a row per block, a column per head."""
    import numpy as np

    def draw() -> Any:
        heads = max(len(w) for w in blocks.values())
        fig = _canvas(3.2 * heads + 0.6, 3.3 * len(blocks) + 0.4)
        axes = np.atleast_2d(fig.subplots(len(blocks), heads, squeeze=False))
        shown = [t.replace("\n", "⏎") if t.strip() or t == " " else repr(t) for t in tokens]
        for r, (index, weights) in enumerate(sorted(blocks.items(), key=lambda kv: int(kv[0]))):
            for h in range(heads):
                ax = axes[r][h]
                ax.imshow(np.asarray(weights[h]), cmap="viridis", vmin=0.0, vmax=1.0)
                ax.set_title(f"block {index}, head {h}", fontsize=9)
                step = max(1, len(tokens) // 12)
                ax.set_xticks(range(0, len(tokens), step), shown[::step], fontsize=7)
                ax.set_yticks(range(0, len(tokens), step), shown[::step], fontsize=7)
        fig.suptitle(title)
        return fig

    return _save(draw, path)


def plot_forecasts(forecasts: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """A panel per model: the actual test series, the model's forecasts and seasonal naive's."""

    def draw() -> Any:
        n = len(forecasts)
        cols = min(4, n)
        rows = -(-n // cols)
        fig = _canvas(3.6 * cols, 2.8 * rows + 0.4)
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        for ax, (name, f) in zip(axes.flat, forecasts.items(), strict=False):
            x = list(range(f["start"], f["start"] + len(f["actual"])))
            ax.plot(x, f["actual"], color="black", lw=1.2, label="actual")
            ax.plot(x[: len(f["naive"])], f["naive"], color="grey", lw=1.0, ls=":", label="seasonal naive")
            ax.plot(x[: len(f["forecast"])], f["forecast"], color="C3", lw=1.2, label="forecast")
            for origin in x[:: f["horizon"]]:
                ax.axvline(origin, color="grey", lw=0.4, alpha=0.4)
            ax.set_title(name, fontsize=9)
            ax.grid(True, alpha=0.3)
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(title)
        return fig

    return _save(draw, path)
