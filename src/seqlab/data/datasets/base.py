"""Named, registered datasets with a data card: real data that loads offline.

A dataset is a class registered in :data:`DATASETS` with a :class:`DataCard` (where the data
came from, its licence, how it was prepared, the split sizes it must have) and a ``load`` that
returns ``{split: container}`` (containers in :mod:`seqlab.data.types`)::

    @DATASETS.register("sunspots")
    class Sunspots(Dataset):
        card = DataCard(name="sunspots", kind="series", ...)

        def load(self) -> dict[str, TimeSeries]: ...

Prepared files live in ``seqlab/data/builtin/`` (compressed, public-domain or permissive),
each rebuilt by a script in ``scripts/data/`` named on its card. Nothing here downloads.
"""

from __future__ import annotations

import lzma
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from seqlab.errors import ConfigError
from seqlab.registry import Registry

__all__ = ["BUILTIN_DIR", "DATASETS", "DataCard", "Dataset", "load_dataset", "read_builtin"]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"

Kind = Literal["text", "labelled-text", "pairs", "tagged", "series", "anomaly"]


@dataclass(frozen=True)
class DataCard:
    """What a dataset is, where it came from, and what loading it must give.

    Attributes:
        name: the registered name (``seqlab data show NAME``).
        kind: ``text`` (LM), ``labelled-text`` (classification), ``pairs`` (seq2seq),
            ``series`` (forecasting) or ``anomaly`` (a series with 0/1 point labels).
        summary: one line for ``seqlab data list``.
        source: where the data comes from (package and version, file inside it).
        licence: the licence of the data itself (and of the package shipping it).
        preparation: how the shipped file was made from the source, and the script that did it.
        splits: the size of each split, in ``unit`` — the loader is tested against these.
        unit: what ``splits`` counts: characters, sentences, pairs, points.
        citation: the paper or page to cite, if any.
        notes: anything a user should know (label balance, quirks, caveats).
    """

    name: str
    kind: Kind
    summary: str
    source: str
    licence: str
    preparation: str
    splits: dict[str, int]
    unit: str
    citation: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_markdown(self) -> str:
        sizes = ", ".join(f"{k} {v:,}" for k, v in self.splits.items())
        lines = [
            f"# {self.name}",
            "",
            self.summary,
            "",
            f"- **kind**: {self.kind}",
            f"- **source**: {self.source}",
            f"- **licence**: {self.licence}",
            f"- **preparation**: {self.preparation}",
            f"- **splits** ({self.unit}): {sizes}",
        ]
        if self.citation:
            lines.append(f"- **citation**: {self.citation}")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


class Dataset(ABC):
    """A registered dataset: a card and a loader. Loading is offline and deterministic."""

    card: ClassVar[DataCard]

    @abstractmethod
    def load(self) -> dict[str, Any]:
        """``{split name: container}`` — the splits named on the card, in its order."""

    def examples(self, n: int = 3) -> list[str]:
        """A few printable examples from the training split, for ``seqlab data show``."""
        train = self.load()["train"]
        if hasattr(train, "text"):
            return [train.text[:400]]
        if hasattr(train, "label_names"):
            return [f"[{train.label_names[y]}] {t}" for t, y in zip(train.texts[:n], train.labels[:n])]
        if hasattr(train, "sources"):
            return [f"{s}  ->  {t}" for s, t in zip(train.sources[:n], train.targets[:n])]
        stamps = train.timestamps or [str(i) for i in range(len(train))]
        return [f"{stamps[i]}  {train.values[i].tolist()}" for i in range(min(n, len(train)))]


DATASETS: Registry[type[Dataset]] = Registry("dataset")


def load_dataset(name: str) -> dict[str, Any]:
    """``{split: container}`` of the registered dataset ``name`` (unknown names list the choices)."""
    return DATASETS.get(name)().load()


def read_builtin(filename: str, dataset: str, script: str | None = None) -> str:
    """UTF-8 text of a prepared file in ``seqlab/data/builtin`` (``.xz`` files decompressed).

    A missing or damaged file is a :class:`~seqlab.errors.ConfigError` naming the file and the
    script that rebuilds it (``script``, default ``scripts/data/prepare_<dataset>.py``).
    """
    path = BUILTIN_DIR / filename
    script = script or f"scripts/data/prepare_{dataset.replace('-', '_')}.py"
    try:
        raw = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"dataset {dataset!r}: missing file {path}; rebuild it with {script}") from None
    except (lzma.LZMAError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"dataset {dataset!r}: {path} is damaged ({err}); rebuild it with {script}"
        ) from None
