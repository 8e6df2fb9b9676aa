"""Small, reusable plots (matplotlib's Agg backend: no display, no global pyplot state).

* :func:`plot_by_length` — accuracy against test length, one line per model (the per-length
  curves of Delétang et al. 2022), with the chance level dashed.
"""

from __future__ import annotations

from pathlib import Path


def moving_average(values: list[float], window: int) -> list[float]:
    """Centred moving average; the ends average over the part of the window that exists.

    Example: ``moving_average([0, 0, 3, 0, 0], 3) == [0.0, 1.0, 1.0, 1.0, 0.0]``
    (the first point is (0 + 0) / 2, the middle ones (0 + 3 + 0) / 3).
    """
    if window <= 1:
        return [float(v) for v in values]
    half = window // 2
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        out.append(sum(part) / len(part))
    return out


def plot_by_length(
    curves: dict[str, dict[int, float]],
    path: str | Path,
    title: str,
    chance: float | None = None,
    *,
    window: int = 1,
) -> Path:
    """One PNG of accuracy against test length: a line per curve, chance dashed if given.

    Args:
        curves: name (e.g. a model) -> {length: accuracy in [0, 1]}; lengths need not be
            contiguous and are sorted here.
        path: the PNG to write (parent folders are created).
        title: the plot's title.
        chance: the accuracy of guessing (e.g. 0.5 for parity), drawn as a dashed line.
        window: centred moving average over this many consecutive points (1: raw); with few
            test sequences per length the raw curve is mostly sampling noise. Said in the y label.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (name, curve) in enumerate(curves.items()):
        lengths = sorted(curve)
        ax.plot(lengths, moving_average([curve[n] for n in lengths], window), color=f"C{i % 10}", label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1.0, label=f"chance ({chance:.2f})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("test length")
    smoothed = f" (moving average over {window} lengths)" if window > 1 else ""
    ax.set_ylabel("accuracy" + smoothed)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if curves or chance is not None:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")  # explicit: the path may be a temp file without the suffix
    return path
