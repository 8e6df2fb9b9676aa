"""The most-frequent-tag-per-word baseline every tagging result should be compared with.

The standard part-of-speech baseline (Charniak et al. 1993; Jurafsky & Martin, *Speech and
Language Processing*, ch. 8): tag each word with the tag it had most often in the training
split; a word never seen in training gets the most frequent tag overall::

    tag(w) = argmax_y count_train(w, y)        if w was seen in training
           = argmax_y count_train(y)           otherwise

Ties go to the tag that comes first in name order, so the baseline is deterministic. On
English POS tagging it scores about 92 % (words) — the floor a learnt tagger must clear; on
punctuation restoration it is weak, since the mark before a word depends on the sentence.

Worked example (training: ``the/DET dog/NOUN runs/VERB`` and ``the/DET runs/NOUN end/NOUN``)::

    the -> DET (2 of 2)    runs -> NOUN (tie 1:1, 'NOUN' < 'VERB')    unseen -> NOUN (3 of 6)
    predict ["the", "cat", "runs"] -> ["DET", "NOUN", "NOUN"]

:func:`most_frequent_tag_scores` scores it on each split with the ``tag`` task's own metrics,
so its numbers line up key by key with a model's (``val_acc``, ``val_f1``, ``test_acc`` ...).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seqlab.data.tagged import TaggedSentences
from seqlab.errors import ConfigError

__all__ = ["MostFrequentTag", "most_frequent_tag_scores"]


def _best(counts: Counter[str]) -> str:
    return min(counts, key=lambda tag: (-counts[tag], tag))


@dataclass(frozen=True)
class MostFrequentTag:
    """``table``: word -> its most frequent training tag; ``default``: the tag for unseen words."""

    table: Mapping[str, str]
    default: str

    @classmethod
    def fit(cls, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> MostFrequentTag:
        by_word: dict[str, Counter[str]] = {}
        overall: Counter[str] = Counter()
        for words, labels in zip(sentences, tags, strict=True):
            for word, tag in zip(words, labels, strict=True):
                by_word.setdefault(word, Counter())[tag] += 1
                overall[tag] += 1
        if not overall:
            raise ConfigError("most-frequent-tag baseline: the training split has no tagged words")
        return cls({word: _best(c) for word, c in by_word.items()}, _best(overall))

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        return [[self.table.get(word, self.default) for word in words] for words in sentences]


def most_frequent_tag_scores(
    splits: Mapping[str, TaggedSentences], lowercase: bool = False
) -> dict[str, Any]:
    """Fit on ``splits["train"]``; the ``tag`` task's metrics on validation (``val_*``) and test.

    Tags are the training split's tags (sorted); a tag unseen in training counts as wrong.
    """
    from seqlab.tasks.tag import score_tags  # the task's scorer (imported here: no import cycle)

    def words(part: TaggedSentences) -> list[list[str]]:
        return [[w.lower() for w in s] for s in part.tokens] if lowercase else part.tokens

    train = splits["train"]
    baseline = MostFrequentTag.fit(words(train), train.tags)
    names = sorted(train.tag_counts())
    out: dict[str, Any] = {"train_words": len(baseline.table), "default_tag": baseline.default}
    for split, prefix in (("validation", "val"), ("test", "test")):
        if split in splits:
            part = splits[split]
            out |= score_tags(part.tags, baseline.predict(words(part)), names, prefix)
    return out
