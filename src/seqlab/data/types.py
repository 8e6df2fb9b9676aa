"""The containers every data source returns: bundled datasets and users' files alike.

Shape legend: N examples (or time points) · C channels of a time series.

A dataset is a dict ``{split name: container}`` with the split names ``train``, ``validation``
and (where the source has one) ``test``. Four kinds of container cover seqlab's tasks:

========================  ==========================================  ============================
container                 holds                                        tasks
========================  ==========================================  ============================
:class:`Text`             one running text                             language modelling
:class:`LabelledTexts`    N texts with one class label each            classification (sentiment)
:class:`TextPairs`        N (source, target) strings                   seq2seq (G2P, translation)
:class:`TimeSeries`       (N, C) values, optional timestamps/labels    forecasting, anomalies
========================  ==========================================  ============================

Splits of itemised data are deterministic: :func:`split_indices` shuffles with a seeded
generator of its own (never the global RNG), so the same seed gives the same split on every
machine and every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from seqlab.errors import ConfigError

__all__ = ["LabelledTexts", "Text", "TextPairs", "TimeSeries", "split_indices"]


@dataclass
class Text:
    """One running text (an LM split)."""

    text: str

    def __len__(self) -> int:
        return len(self.text)

    def stats(self) -> dict:
        return {"characters": len(self.text), "distinct_characters": len(set(self.text))}


@dataclass
class LabelledTexts:
    """N texts with integer labels in ``[0, len(label_names))``."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ConfigError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        bad = [y for y in self.labels if not 0 <= y < len(self.label_names)]
        if bad:
            raise ConfigError(f"label {bad[0]} is not in [0, {len(self.label_names)}) ({self.label_names})")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> LabelledTexts:
        texts, labels = [self.texts[i] for i in indices], [self.labels[i] for i in indices]
        return LabelledTexts(texts, labels, self.label_names)

    def counts(self) -> dict[str, int]:
        """Examples per label name (label balance)."""
        c = Counter(self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(self.label_names)}

    def stats(self) -> dict:
        return {"examples": len(self), "labels": self.counts()}


@dataclass
class TextPairs:
    """N aligned (source, target) strings: a parallel corpus or a transduction task."""

    sources: list[str]
    targets: list[str]

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ConfigError(f"{len(self.sources)} sources but {len(self.targets)} targets")

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices: Sequence[int]) -> TextPairs:
        return TextPairs([self.sources[i] for i in indices], [self.targets[i] for i in indices])

    def stats(self) -> dict:
        n = max(len(self), 1)
        return {
            "pairs": len(self),
            "mean_source_chars": round(sum(map(len, self.sources)) / n, 1),
            "mean_target_chars": round(sum(map(len, self.targets)) / n, 1),
        }


@dataclass
class TimeSeries:
    """A regularly sampled series: ``values`` (N, C) float64, one column per channel.

    ``timestamps`` (N,) strings (ISO dates or times) when the source has them; ``freq`` a
    pandas-style frequency name (``YS``, ``MS``, ``W``, ``30min``...) or None; ``labels`` (N,)
    int 0/1 for anomaly series (1 = anomalous point), else None. Missing values are NaN until
    a loader's missing-value policy fills them.
    """

    values: np.ndarray
    columns: list[str]
    timestamps: list[str] | None = None
    freq: str | None = None
    labels: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        N, C = self.values.shape
        if len(self.columns) != C:
            raise ConfigError(f"{C} value columns but {len(self.columns)} column names")
        if self.timestamps is not None and len(self.timestamps) != N:
            raise ConfigError(f"{N} values but {len(self.timestamps)} timestamps")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (N,):
                raise ConfigError(f"labels: expected shape ({N},), got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.values)

    def slice(self, start: int, stop: int) -> TimeSeries:
        """Points [start, stop) — time-series splits are contiguous, never shuffled."""
        return TimeSeries(
            self.values[start:stop],
            list(self.columns),
            None if self.timestamps is None else self.timestamps[start:stop],
            self.freq,
            None if self.labels is None else self.labels[start:stop],
            dict(self.notes),
        )

    def stats(self) -> dict:
        missing = int(np.isnan(self.values).sum())
        out = {"points": len(self), "channels": len(self.columns), "missing": missing}
        if self.labels is not None:
            out["anomalous_points"] = int(self.labels.sum())
        return out


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into parts of the given fractions.

    The last part takes the remainder, so the parts always cover every index exactly once.
    Deterministic: the same (n, fractions, seed) gives the same parts everywhere.

    Example::

        >>> [p.tolist() for p in split_indices(5, [0.6, 0.4], seed=0)]
        [[2, 4, 3], [0, 1]]
    """
    if n < len(fractions):
        raise ConfigError(f"cannot split {n} examples into {len(fractions)} non-empty parts")
    if any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ConfigError(f"split fractions must be positive and sum to at most 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(n)
    total = sum(fractions)
    bounds = [round(n * sum(fractions[: i + 1]) / total) for i in range(len(fractions))]
    bounds = [0, *[max(b, i + 1) for i, b in enumerate(bounds[:-1])], n]
    return [order[bounds[i] : bounds[i + 1]] for i in range(len(fractions))]
