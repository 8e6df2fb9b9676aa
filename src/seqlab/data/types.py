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
machine and every run. :func:`cut_points` sizes every split (shuffled or contiguous): each part
gets at least one item, however small its fraction. :func:`split_items` (itemised data, seeded
shuffle, de-duplicated) and :func:`split_text` (running text, by position) build on them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from seqlab.errors import ConfigError

__all__ = [
    "SPLIT_NAMES",
    "Fractions",
    "LabelledTexts",
    "Text",
    "TextPairs",
    "TimeSeries",
    "cut_points",
    "split_indices",
    "split_items",
    "split_names",
    "split_text",
]

log = logging.getLogger(__name__)
SPLIT_NAMES = ("train", "validation", "test")  # the split names, in this order, everywhere in seqlab
Fractions = Sequence[float] | Mapping[str, float]  # [train, validation, test] or {name: fraction}


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

    def dedupe_keys(self) -> list[str]:
        """What makes two examples the same input (for :func:`split_items`): the text."""
        return list(self.texts)

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

    def dedupe_keys(self) -> list[str]:
        """What makes two examples the same input (for :func:`split_items`): the source."""
        return list(self.sources)

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


def split_names(fractions: Fractions) -> tuple[list[str], list[float]]:
    """Names and fractions: a mapping's own, else :data:`SPLIT_NAMES` for 1-3 fractions.

    Example::

        >>> split_names([0.8, 0.2])
        (['train', 'validation'], [0.8, 0.2])
    """
    if isinstance(fractions, Mapping):
        return list(fractions), [float(f) for f in fractions.values()]
    if not 1 <= len(fractions) <= len(SPLIT_NAMES):
        raise ConfigError(
            f"split fractions: expected 1 to 3 values (train, validation, test), got {list(fractions)}"
        )
    return list(SPLIT_NAMES[: len(fractions)]), [float(f) for f in fractions]


def cut_points(n: int, fractions: Sequence[float]) -> list[int]:
    """Boundaries ``[0, ..., n]`` of ``len(fractions)`` non-empty parts of ``n`` items.

    The fractions are scaled to sum to one; each boundary is ``round(n · cumulative fraction)``,
    moved just enough that every part keeps at least one item (so a tiny fraction still gets one
    item, taken from the parts before it). The last part takes the remainder.

    Example::

        >>> cut_points(10, [0.8, 0.1, 0.1])
        [0, 8, 9, 10]
        >>> cut_points(3, [0.98, 0.01, 0.01])
        [0, 1, 2, 3]
    """
    if n < len(fractions):
        raise ConfigError(f"cannot split {n} items into {len(fractions)} non-empty parts")
    if any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ConfigError(f"split fractions must be positive and sum to at most 1, got {list(fractions)}")
    total, bounds = sum(fractions), [0]
    for i in range(len(fractions) - 1):
        cut = round(n * sum(fractions[: i + 1]) / total)
        bounds.append(min(max(cut, bounds[-1] + 1), n - (len(fractions) - 1 - i)))
    return [*bounds, n]


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into non-empty parts sized by :func:`cut_points`.

    The parts cover every index exactly once. Deterministic: the same (n, fractions, seed) gives
    the same parts everywhere.

    Example::

        >>> [p.tolist() for p in split_indices(5, [0.6, 0.4], seed=0)]
        [[2, 4, 3], [0, 1]]
        >>> [len(p) for p in split_indices(10, [0.9, 0.09, 0.01], seed=0)]
        [8, 1, 1]
    """
    bounds = cut_points(n, fractions)
    order = np.random.default_rng(seed).permutation(n)
    return [order[a:b] for a, b in pairwise(bounds)]


def split_items(
    data: Any,
    fractions: Fractions = (0.8, 0.1, 0.1),
    seed: int = 0,
    *,
    dedupe: bool = True,
) -> dict:
    """Shuffle the examples with ``seed`` and cut them into disjoint, non-empty splits.

    With ``dedupe`` (the default) an example whose key was seen before is dropped first, so the
    same input never sits in train and test at once: the key is ``data.dedupe_keys()`` — the
    text of :class:`LabelledTexts`, the source of :class:`TextPairs`, the words of a tagged
    sentence (any container with ``dedupe_keys``, ``subset`` and ``len``) — case-folded and with runs of
    whitespace collapsed (so "Great film!" and "great  film!", which lower-casing tokenizers
    see alike, count as one), and the first occurrence (in
    file order) is kept, whatever the label or target of the later ones. How many were dropped
    is logged as a warning (logger ``seqlab.data.types``); ``dedupe=False`` keeps every example.

    Example::

        >>> pairs = TextPairs(list("abcdefghija"), list("ABCDEFGHIJA"))
        >>> {k: len(v) for k, v in split_items(pairs, [0.8, 0.2], seed=1).items()}  # the 2nd 'a' dropped
        {'train': 8, 'validation': 2}
    """
    names, values = split_names(fractions)
    keep = list(range(len(data)))
    if dedupe:
        first: dict[str, int] = {}
        for i, key in enumerate(data.dedupe_keys()):
            first.setdefault(" ".join(key.casefold().split()), i)
        keep = list(first.values())  # increasing: dicts keep insertion order
        if len(keep) < len(data):
            log.warning("split_items: dropped %d examples repeating an earlier input", len(data) - len(keep))
    parts = split_indices(len(keep), values, seed)
    return {name: data.subset([keep[i] for i in part.tolist()]) for name, part in zip(names, parts)}


def split_text(
    text: Text | str, fractions: Fractions = (0.9, 0.1), *, at_lines: bool = True
) -> dict[str, Text]:
    """Cut a running text by position: the first part is train, then validation (then test).

    With ``at_lines`` each cut moves forward to the start of the next line, so no line is split
    between two parts. Deterministic: no seed, no shuffling (LM text keeps its order).

    Example::

        >>> {k: v.text for k, v in split_text("a\\nb\\nc\\nd\\n", [0.5, 0.5]).items()}
        {'train': 'a\\nb\\n', 'validation': 'c\\nd\\n'}
    """
    text = text.text if isinstance(text, Text) else text
    names, values = split_names(fractions)
    bounds = cut_points(len(text), values)
    if at_lines:
        inner = [text.find("\n", b - 1) + 1 or len(text) for b in bounds[1:-1]]
        bounds = [0, *inner, len(text)]
        if any(a >= b for a, b in pairwise(bounds)):
            raise ConfigError(f"the text has too few lines to split into {names} at line boundaries")
    return {name: Text(text[a:b]) for name, (a, b) in zip(names, pairwise(bounds))}
