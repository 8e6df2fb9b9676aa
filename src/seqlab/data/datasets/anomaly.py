"""Labelled anomaly series: a real ECG with annotated anomalies, and real demand with injected ones.

Both load as ``{"train", "validation", "test"}`` contiguous :class:`TimeSeries` slices whose
``labels`` (N,) are 1 on anomalous points; each split's ``notes["anomalies"]`` lists the
anomalous segments ``{"start", "stop", "kind"}`` (indices relative to that split). Loading checks
each split's count of anomalous points against the card (``anomalous_points``).

:func:`inject_anomalies` is the seeded, documented recipe behind ``taylor-anomalies`` and works on
any 1-D series::

    >>> import numpy as np
    >>> x = np.sin(np.arange(400) / 8.0)
    >>> y, labels, kinds, made = inject_anomalies(x, [(200, 400)], {"spike": 2, "flat-line": 1}, seed=0)
    >>> int(labels[:200].sum()), sorted(m.kind for m in made)
    (0, ['flat-line', 'spike', 'spike'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from seqlab.data.datasets.base import DATASETS, DataCard
from seqlab.data.datasets.series import BuiltinSeries, Taylor, contiguous_split, contiguous_split_sizes
from seqlab.data.types import TimeSeries
from seqlab.errors import ConfigError

__all__ = [
    "ANOMALY_KINDS",
    "TAYLOR_INJECTION",
    "BuiltinAnomalySeries",
    "Injection",
    "build_taylor_anomalies",
    "inject_anomalies",
    "robust_scale",
    "segments",
]

# kind -> (min length, max length) in points, and the size range as a multiple of the scale
ANOMALY_KINDS: dict[str, tuple[tuple[int, int], tuple[float, float]]] = {
    "spike": ((1, 1), (6.0, 10.0)),  # one point moved up or down
    "level-shift": ((12, 48), (4.0, 6.0)),  # a constant offset over a stretch
    "noise-burst": ((8, 24), (3.0, 5.0)),  # added Gaussian noise of this standard deviation
    "flat-line": ((16, 36), (0.0, 0.0)),  # a stuck sensor: the first value held
}


@dataclass(frozen=True)
class Injection:
    """One injected anomaly: points ``[start, stop)``; ``size`` is the offset (spike, level-shift),
    the noise standard deviation (noise-burst) or the held value (flat-line)."""

    kind: str
    start: int
    stop: int
    size: float


def robust_scale(values: np.ndarray) -> float:
    """1.4826 · median absolute deviation of the first differences (NaN ignored).

    The typical size of a one-step change, robust to the anomalies themselves; magnitudes of
    injected anomalies are multiples of it, so they are comparable across series.
    """
    diffs = np.diff(np.asarray(values, dtype=np.float64))
    diffs = diffs[~np.isnan(diffs)]
    scale = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) if diffs.size else 0.0
    if not scale > 0:
        raise ConfigError("cannot scale anomalies: the series' first differences have zero spread")
    return scale


def _place(
    region: tuple[int, int], kinds: list[str], taken: list[tuple[int, int]], rng, margin: int
) -> list[tuple[str, int, int]]:
    """Non-overlapping ``(kind, start, stop)`` inside ``region``, ``margin`` points from its ends and
    from each other (so no anomaly crosses a split boundary or touches another)."""
    lo, hi = region
    out = []
    for kind in kinds:
        (shortest, longest), _ = ANOMALY_KINDS[kind]
        length = int(rng.integers(shortest, longest + 1))
        for _ in range(1000):
            start = int(rng.integers(lo + margin, max(lo + margin + 1, hi - margin - length + 1)))
            stop = start + length
            if stop <= hi - margin and all(stop + margin <= a or b + margin <= start for a, b in taken):
                break
        else:
            raise ConfigError(
                f"no room for another {kind!r} anomaly in points [{lo}, {hi}) with margin {margin}"
            )
        taken.append((start, stop))
        out.append((kind, start, stop))
    return out


def _apply(y: np.ndarray, kind: str, start: int, stop: int, size: float, rng) -> None:
    if kind == "noise-burst":
        y[start:stop] += rng.normal(0.0, size, stop - start)
    elif kind == "flat-line":
        y[start:stop] = size
    else:  # spike, level-shift
        y[start:stop] += size


def inject_anomalies(
    values: np.ndarray,
    regions: Sequence[tuple[int, int]],
    counts: Mapping[str, int],
    seed: int,
    scale: float | None = None,
    margin: int = 24,
) -> tuple[np.ndarray, np.ndarray, list[str], list[Injection]]:
    """Inject ``counts[kind]`` anomalies of each kind into each region of a 1-D series.

    Args:
        values: (N,) the clean series (not modified).
        regions: ``[start, stop)`` spans to place anomalies in (e.g. the validation and test
            splits); points outside every region are left untouched.
        counts: anomalies per region for each kind in :data:`ANOMALY_KINDS`.
        seed: seeds the one generator that draws order, lengths, places, signs and sizes.
        scale: the unit of magnitudes; default :func:`robust_scale` of ``values``.
        margin: the least gap between two anomalies and between an anomaly and a region's ends.

    Returns:
        ``(y, labels, kinds, injections)``: the series with anomalies (N,), 0/1 labels (N,),
        the kind of each point (``""`` if normal) and the list of :class:`Injection`.
    """
    unknown = sorted(set(counts) - set(ANOMALY_KINDS))
    if unknown:
        raise ConfigError(f"unknown anomaly kinds {unknown}; choose from {sorted(ANOMALY_KINDS)}")
    rng = np.random.default_rng(seed)
    y = np.array(values, dtype=np.float64).reshape(-1)
    scale = robust_scale(y) if scale is None else scale
    labels, kinds, made, taken = np.zeros(len(y), np.int64), [""] * len(y), [], []
    for region in regions:
        wanted = [kind for kind in ANOMALY_KINDS for _ in range(counts.get(kind, 0))]
        for kind, start, stop in _place(
            region, [wanted[i] for i in rng.permutation(len(wanted))], taken, rng, margin
        ):
            low, high = ANOMALY_KINDS[kind][1]
            size = float(y[start]) if kind == "flat-line" else float(rng.uniform(low, high)) * scale
            size *= float(rng.choice([-1.0, 1.0])) if kind in ("spike", "level-shift") else 1.0
            _apply(y, kind, start, stop, size, rng)
            labels[start:stop] = 1
            kinds[start:stop] = [kind] * (stop - start)
            made.append(Injection(kind, start, stop, size))
    return y, labels, kinds, sorted(made, key=lambda m: m.start)


def segments(labels: np.ndarray, kinds: Sequence[str] = ()) -> list[dict]:
    """Runs of consecutive anomalous points as ``{"start", "stop", "kind"}`` (kind "" if unknown)."""
    edges = np.diff(np.concatenate([[0], np.asarray(labels, dtype=np.int64), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [
        {"start": int(a), "stop": int(b), "kind": kinds[a] if len(kinds) else ""}
        for a, b in zip(starts, stops)
    ]


# The recipe of `taylor-anomalies`: anomalies only in the validation and test weeks of `taylor`.
TAYLOR_INJECTION = {
    "regions": ((2688, 3360), (3360, 4032)),
    "counts": {"spike": 3, "level-shift": 1, "noise-burst": 1, "flat-line": 1},
    "seed": 20000605,
    "margin": 24,
    "decimals": 1,
}


def build_taylor_anomalies() -> tuple[TimeSeries, list[str]]:
    """``taylor`` with the :data:`TAYLOR_INJECTION` anomalies (values rounded to 0.1 MW)."""
    clean, _ = Taylor().read()
    recipe = TAYLOR_INJECTION
    y, labels, kinds, _ = inject_anomalies(
        clean.values[:, 0], recipe["regions"], recipe["counts"], recipe["seed"], margin=recipe["margin"]
    )
    y = np.round(y, recipe["decimals"])
    return TimeSeries(y, list(clean.columns), clean.timestamps, clean.freq, labels), kinds


class BuiltinAnomalySeries(BuiltinSeries):
    """A labelled series from ``builtin/``; ``load`` checks each split's count of anomalous points.

    ``anomalous_points`` ``{split: points labelled 1}`` is what the card states; a file that
    disagrees (rebuilt with another recipe, or damaged) is a :class:`ConfigError` naming it.
    """

    script: ClassVar[str] = "anomalies"
    anomalous_points: ClassVar[dict[str, int]]

    def load(self) -> dict[str, TimeSeries]:
        """The card's contiguous splits, each with ``notes["anomalies"]``, its anomalous segments."""
        series, kinds = self.read()
        rebuild = f"rebuild it with scripts/data/prepare_{self.script}.py"
        if series.labels is None:
            raise ConfigError(f"{self.filename}: no 'label' column; {rebuild}")
        out, start = contiguous_split(series, dict(self.card.splits)), 0
        for name, part in out.items():
            found, expected = int(part.labels.sum()), self.anomalous_points[name]
            if found != expected:
                raise ConfigError(
                    f"{self.filename}: {found} anomalous points in the {name} split, but the "
                    f"{self.card.name!r} card says {expected}; {rebuild}"
                )
            part.notes["anomalies"] = segments(part.labels, kinds[start : start + len(part)])
            start += len(part)
        return out


def _points_note(points: dict[str, int]) -> str:
    total = sum(points.values())
    parts = ", ".join(f"{k} {v:,}" for k, v in points.items())
    return f"Anomalous points: {total:,} in all ({parts})."


_MITDB_POINTS = {"train": 0, "validation": 0, "test": 352}
MITDB_ATTRIBUTION = (  # the notice ODC-By 1.0 asks for (its section 4.3 example, filled in)
    "Contains information from the MIT-BIH Arrhythmia Database (https://physionet.org/content/mitdb/1.0.0/), "
    "which is made available under the ODC Attribution License (https://opendatacommons.org/licenses/by/1-0/)."
)


@DATASETS.register("mitdb")
class MITDB(BuiltinAnomalySeries):
    filename, columns, freq = "mitdb.csv.xz", ("ecg",), None
    anomalous_points = _MITDB_POINTS
    card = DataCard(
        name="mitdb",
        kind="anomaly",
        summary="7,500 points of a real ECG (mV, 360 Hz) from the MIT-BIH Arrhythmia Database, one anomaly.",
        source=(
            "sktime 1.2.0 wheel, sktime/datasets/data/mitdb/mitdb.csv (columns data,label; no loader); "
            "which MIT-BIH record it is, is unidentified"
        ),
        licence=(
            "ODC-By 1.0 (the MIT-BIH Arrhythmia Database on PhysioNet; attribution required): "
            f"{MITDB_ATTRIBUTION} sktime (BSD-3) ships the excerpt without naming its record"
        ),
        preparation="data -> ecg, label kept; read from the wheel by scripts/data/prepare_anomalies.py.",
        splits=contiguous_split_sizes(7500),
        unit="points",
        citation=(
            "Moody G. B., Mark R. G. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol "
            "20(3):45-50 (2001); Goldberger A. L. et al. PhysioBank, PhysioToolkit, and PhysioNet. "
            "Circulation 101(23):e215-e220 (2000)."
        ),
        notes=(
            "Splits: contiguous time slices: train floor(0.70·N), validation floor(0.15·N), test the rest.",
            _points_note(_MITDB_POINTS),
            "The one anomaly (points 6,936-7,287: a premature beat, 198 samples after the previous one "
            "against about 295 elsewhere) lies in the test split: "
            "train and validation are normal-only: pick a threshold from validation scores of normal data.",
            "No timestamps: sampled at 360 Hz like every MIT-BIH record (26 beats, about 73 per minute).",
            "The MIT-BIH record is unidentified: sktime ships the file in a folder named mitdb with no "
            "note and no record name; it was matched to MIT-BIH by its waveform (mV in 0.005 mV steps, "
            "beats about 295 samples apart at 360 Hz), not by a document; which record is unknown.",
        ),
    )


_TAYLOR_POINTS = {"train": 0, "validation": 72, "test": 53}  # printed by prepare_anomalies.py


@DATASETS.register("taylor-anomalies")
class TaylorAnomalies(BuiltinAnomalySeries):
    filename, columns, freq = "taylor_anomalies.csv.xz", ("demand",), "30min"
    anomalous_points = _TAYLOR_POINTS
    card = DataCard(
        name="taylor-anomalies",
        kind="anomaly",
        summary="taylor half-hourly demand with injected, labelled anomalies in validation and test weeks.",
        source="the taylor dataset (pmdarima 2.1.1, R forecast::taylor) with anomalies injected by seqlab",
        licence=f"as taylor (the injected anomalies are seqlab's): {Taylor.card.licence}",
        preparation=(
            "seqlab.data.datasets.anomaly.build_taylor_anomalies(): inject_anomalies with TAYLOR_INJECTION "
            "(seed 20000605), values rounded to 0.1 MW; written by scripts/data/prepare_anomalies.py."
        ),
        splits=dict(Taylor.card.splits),
        unit="points",
        notes=(
            "Splits: as taylor (whole weeks): train weeks 1-8, validation 9-10, test 11-12.",
            _points_note(_TAYLOR_POINTS),
            "Train is anomaly-free (real data may still hold unlabelled oddities). Validation and test each "
            "hold 3 spikes (±6-10 s), 1 level shift (12-48 points, ±4-6 s), 1 noise burst (8-24 points, "
            "sd 3-5 s) and 1 flat-line (16-36 points held at the first value), s = 1.4826·MAD of the "
            "half-hourly differences (534 MW); anomalies are at least 24 points apart and from split ends.",
            "The file's 'anomaly' column names each point's kind; notes['anomalies'] lists the segments.",
        ),
    )
