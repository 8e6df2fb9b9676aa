"""The registered text datasets load offline and match their data cards."""

from __future__ import annotations

import re

import pytest

from seqlab.data.datasets import DATASETS, base, load_dataset
from seqlab.data.datasets import text as text_datasets
from seqlab.data.types import LabelledTexts, Text, TextPairs
from seqlab.errors import ConfigError

NAMES = ["shakespeare", "movie-reviews", "cmudict", "translation-en-es"]


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict]:
    return {name: load_dataset(name) for name in NAMES}


def test_registered_with_complete_cards():
    for name in NAMES:
        card = DATASETS.get(name).card
        assert card.name == name
        assert list(card.splits) == ["train", "validation", "test"]
        for field in ("summary", "source", "licence", "preparation", "unit"):
            assert getattr(card, field), (name, field)
        assert card.to_markdown().startswith(f"# {name}\n")


def test_sizes_match_the_cards(loaded):
    kinds = {"text": Text, "labelled-text": LabelledTexts, "pairs": TextPairs}
    for name, splits in loaded.items():
        card = DATASETS.get(name).card
        assert list(splits) == list(card.splits)
        for split, container in splits.items():
            assert isinstance(container, kinds[card.kind])
            assert len(container) == card.splits[split], (name, split)


def test_shakespeare_size_and_held_out_plays(loaded):
    splits = loaded["shakespeare"]
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 4_346_617, "validation": 220_194, "test": 218_318}
    assert sum(sizes.values()) >= 1_000_000
    assert splits["train"].stats()["distinct_characters"] == 76
    # whole plays held out: Twelfth Night opens validation and is nowhere in train
    assert splits["validation"].text.startswith("DUKE ORSINO:\nIf music be the food of love, play on;\n")
    assert "If music be the food of love" not in splits["train"].text
    assert splits["test"].text.startswith("KING RICHARD II:\nOld John of Gaunt, time-honour'd Lancaster,\n")
    assert splits["train"].text.startswith("THESEUS:\nNow, fair Hippolyta, our nuptial hour\n")


def test_shakespeare_format(loaded):
    text = loaded["shakespeare"]["validation"].text
    assert text.endswith("\n") and not text.endswith("\n\n")
    for speech in text.rstrip("\n").split("\n\n"):
        speaker, *lines = speech.split("\n")
        assert speaker.endswith(":") and speaker == speaker.upper(), speaker
        assert lines and all(line.strip() == line and line for line in lines), speech
    assert not set("*_[]#<>") & set(text)  # no Markdown left


def test_movie_reviews_labels_as_on_the_card(loaded):
    splits = loaded["movie-reviews"]
    counts = {k: (v.counts()["negative"], v.counts()["positive"]) for k, v in splits.items()}
    assert counts == {"train": (4260, 4193), "validation": (532, 524), "test": (533, 524)}
    notes = " ".join(DATASETS.get("movie-reviews").card.notes)
    assert "5,325 negative / 5,241 positive" in notes
    for split, (neg, pos) in counts.items():
        assert f"{split} {neg:,} / {pos:,}" in notes
    assert splits["train"].label_names == ["negative", "positive"]
    texts = [set(v.texts) for v in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_fixed_examples_at_fixed_indices(loaded):
    reviews = loaded["movie-reviews"]
    assert (reviews["train"].texts[7], reviews["train"].labels[7]) == ("A warm, funny, engaging film.", 1)
    assert reviews["validation"].texts[7].startswith("Distances you by throwing out so many red herrings")
    assert reviews["validation"].labels[7] == 0
    assert reviews["test"].texts[7] == "Hilarious musical comedy though stymied by accents thick as mud."
    g2p = loaded["cmudict"]
    assert (g2p["train"].sources[7], g2p["train"].targets[7]) == ("marienbonn's", "M EH1 R IY0 N B AO2 N Z")
    assert (g2p["validation"].sources[7], g2p["validation"].targets[7]) == (
        "neuenschwander",
        "N UW1 AH0 N SH W AO0 N D ER0",
    )
    assert (g2p["test"].sources[7], g2p["test"].targets[7]) == ("mccown", "M AH0 K AW1 N")
    bible = loaded["translation-en-es"]
    assert bible["test"].sources[7] == (
        "And say to Archippus, Take heed to the ministry which thou hast received in the Lord, "
        "that thou fulfil it."
    )
    assert bible["test"].targets[7] == (
        "Y decid á Archîpo: Mira que cumplas el ministerio que has recibido del Señor."
    )
    assert bible["validation"].targets[7].startswith("Arraigados y sobreedificados en él, y confirmados")
    assert bible["train"].sources[7].startswith("And this word, Yet once more, signifieth the removing")


def test_splits_are_deterministic(loaded):
    for name in NAMES:
        for cached in (
            text_datasets._plays,
            text_datasets._reviews,
            text_datasets._verses,
            text_datasets._pronunciations,
        ):
            cached.cache_clear()  # parse the files again, not just reuse the cache
        again = load_dataset(name)
        for split, container in loaded[name].items():
            assert again[split] == container, (name, split)


def test_seed_changes_the_split_not_the_sizes(loaded):
    other = DATASETS.get("translation-en-es")(seed=1).load()
    assert {k: len(v) for k, v in other.items()} == {
        k: len(v) for k, v in loaded["translation-en-es"].items()
    }
    assert other["test"].sources != loaded["translation-en-es"]["test"].sources


def test_cmudict_words_and_phonemes(loaded):
    splits = loaded["cmudict"]
    words = [set(v.sources) for v in splits.values()]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])
    assert sum(map(len, words)) == 124_926
    train = splits["train"]
    assert all(re.fullmatch(r"[a-z']+", w) for w in train.sources)
    phonemes = {p for t in train.targets for p in t.split()}
    assert len(phonemes) == 69 and {"AH0", "AH1", "AH2", "NG", "ZH"} <= phonemes
    pairs = dict(zip(train.sources, train.targets)) | dict(
        zip(splits["test"].sources, splits["test"].targets)
    )
    pairs |= dict(zip(splits["validation"].sources, splits["validation"].targets))
    assert pairs["abandon"] == "AH0 B AE1 N D AH0 N"
    assert pairs["tomato"] == "T AH0 M EY1 T OW2"  # the first of its two pronunciations


def test_cmudict_without_stress(loaded):
    plain = DATASETS.get("cmudict")(stress=False).load()
    assert plain["test"].sources == loaded["cmudict"]["test"].sources
    assert plain["test"].targets[7] == "M AH K AW N"
    assert len({p for t in plain["train"].targets for p in t.split()}) == 39


def test_translation_pairs(loaded):
    splits = loaded["translation-en-es"]
    for side in ("sources", "targets"):  # no English and no Spanish text in two splits (or twice)
        texts = [t for v in splits.values() for t in getattr(v, side)]
        assert len(set(texts)) == len(texts) == 21_843, side
    assert "291 pairs whose English or Spanish text is already in a kept pair dropped" in (
        DATASETS.get("translation-en-es").card.preparation
    )
    for container in splits.values():
        assert all(0 < len(s.split()) <= 30 and t for s, t in zip(container.sources, container.targets))
        assert not any(set("<>\\\t") & set(s + t) for s, t in zip(container.sources, container.targets))


def test_missing_or_damaged_file_names_the_rebuild_script(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "BUILTIN_DIR", tmp_path)
    text_datasets._reviews.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"prepare_movie_reviews\.py"):
            load_dataset("movie-reviews")
        (tmp_path / "movie_reviews.tsv.xz").write_bytes(b"not xz")
        with pytest.raises(ConfigError, match="damaged"):
            load_dataset("movie-reviews")
        text_datasets._verses.cache_clear()
        with pytest.raises(ConfigError, match=r"'translation-en-es'.*scripts/data/prepare_translation\.py"):
            load_dataset("translation-en-es")
    finally:
        text_datasets._reviews.cache_clear()
        text_datasets._verses.cache_clear()


def test_examples_for_show(loaded):
    assert DATASETS.get("shakespeare")().examples()[0].startswith("THESEUS:\n")
    assert DATASETS.get("movie-reviews")().examples(2)[0].startswith("[")
    assert " -> " in DATASETS.get("cmudict")().examples(1)[0]
