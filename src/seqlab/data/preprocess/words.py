"""Word-level preprocessing: regex tokenisation, stop words, stemming and lemmatisation.

The word lists and algorithms come from maintained packages, not from here: stop words from
``stop-words`` (33 languages), stemmers from ``snowballstemmer`` (the Snowball algorithms,
Porter's original among them), lemmas from ``simplemma`` (dictionaries shipped in its wheel).

Example:
    >>> word_tokenise("It isn't 3.5 stars... <num> 😀!")
    ['It', "isn't", '3.5', 'stars', '...', '<num>', '😀', '!']
    >>> StopWords("english").remove(["this", "is", "not", "a", "bad", "movie"])
    ['not', 'bad', 'movie']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache

import simplemma
import snowballstemmer
from stop_words import AVAILABLE_LANGUAGES, LANGUAGE_MAPPING, get_stop_words

from seqlab.data.preprocess.text import EMOJI_PATTERN, PLACEHOLDERS

__all__ = [
    "LEMMATISER_LANGUAGES",
    "NEGATORS",
    "STEMMERS",
    "STOP_WORD_LANGUAGES",
    "Lemmatiser",
    "Stemmer",
    "StopWords",
    "is_negator",
    "stop_word_language",
    "word_tokenise",
]

# ---------------------------------------------------------------------------------------------
# tokenisation

_PLACEHOLDER = "|".join(re.escape(p) for p in PLACEHOLDERS.values())
_TOKEN = re.compile(
    rf"{_PLACEHOLDER}"  # <url> <email> <emoji> <num>
    rf"|{EMOJI_PATTERN.pattern}"  # one emoji, ZWJ sequences and flags whole
    r"|\d+(?:[.,]\d+)+"  # 3.14, 1,000
    r"|\w+(?:['’\-]\w+)*"  # words, with inner apostrophes and hyphens: don't, well-known
    r"|([^\w\s])\1*"  # a punctuation mark or symbol, runs kept together: "...", "!!"
)
_IS_PLACEHOLDER = frozenset(PLACEHOLDERS.values())


def word_tokenise(text: str) -> list[str]:
    """Split ``text`` into words, numbers, placeholders, emoji and punctuation runs.

    Whitespace separates tokens and is dropped; a word keeps its inner apostrophes and
    hyphens (``"don't"``, ``"well-known"``), a number its decimal point, a placeholder
    (``<num>``) and an emoji sequence stay whole. Joining the tokens with single spaces and
    tokenising again gives the same tokens.
    """
    return [m.group() for m in _TOKEN.finditer(text)]


def _is_word(token: str) -> bool:
    """A token a stemmer or lemmatiser should see: has a letter and is not a placeholder."""
    return token not in _IS_PLACEHOLDER and any(c.isalpha() for c in token)


def _keep_negation(token: str, result: str, language: str) -> str:
    """``result`` (a stem or lemma of ``token``), unless that would lose a negation.

    simplemma lemmatises "weren't" to "be" and Snowball stems "noone" to "noon": a negator
    whose stem/lemma is no longer a negator is left as it is ("keine" -> "kein" is fine).
    """
    if is_negator(token, language) and not is_negator(result, language):
        return token
    return result


# ---------------------------------------------------------------------------------------------
# stop words, negation preserved

STOP_WORD_LANGUAGES: tuple[str, ...] = tuple(AVAILABLE_LANGUAGES)
"""Languages of the ``stop-words`` package (ISO 639-1 codes are accepted too)."""


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that turn a statement into its negation, kept by negation-preserving stop-word removal
# ("not good" must not become "good"). English also keeps every "...n't" form, with or without
# its apostrophe ("don't", "dont"). Other languages: a short list of their common negators;
# a language not listed here keeps only the user's `keep` words.
NEGATORS: dict[str, frozenset[str]] = {
    "english": _set(
        "not no never nor n't none nobody nothing neither nowhere without cannot noone "
        "aint arent cant couldnt darent didnt doesnt dont hadnt hasnt havent isnt maynt mightnt "
        "mustnt neednt oughtnt shant shouldnt wasnt werent wont wouldnt"
    ),
    "french": _set("ne n' pas jamais rien aucun aucune personne ni sans guère"),
    "german": _set("nicht kein keine keinen keinem keiner keines nie niemals nichts niemand weder ohne"),
    "spanish": _set("no nunca jamás ni nada nadie ninguno ninguna ningún tampoco sin"),
    "italian": _set("non no mai niente nulla nessuno nessuna né neanche nemmeno senza"),
    "portuguese": _set("não nao nunca jamais nem nada ninguém nenhum nenhuma sem"),
    "dutch": _set("niet geen nooit niets niemand nergens noch zonder"),
}


def stop_word_language(language: str) -> str:
    """The ``stop-words`` language name for a name or ISO code; ``ValueError`` listing choices."""
    name = LANGUAGE_MAPPING.get(language.lower(), language.lower())
    if name not in AVAILABLE_LANGUAGES:
        raise ValueError(
            f"unknown stop-word language {language!r}; choices: {', '.join(STOP_WORD_LANGUAGES)}"
        )
    return name


def is_negator(token: str, language: str = "english") -> bool:
    """Whether ``token`` (any case) negates, in ``language`` (a ``stop-words`` language name)."""
    word = token.lower().replace("’", "'")
    if language == "english" and word.endswith("n't"):
        return True
    return word in NEGATORS.get(language, frozenset())


class StopWords:
    """Stop-word removal with the ``stop-words`` lists, negators kept by default.

    Args:
        language: a ``stop-words`` language name or ISO code (``"english"``, ``"de"``).
        keep_negations: keep the language's negators (:data:`NEGATORS`) even where the list
            has them: the English list holds "not", "no", "never", "nor", "none", "cannot".
        extra: more words to remove.
        keep: words never removed (checked before anything else).

    Matching ignores case. Note that the English list is broad (1,333 words): it holds
    evaluative words such as "good", "great", "best", "better" — put those in ``keep`` for
    sentiment work.

    Example:
        >>> StopWords("en", keep=["good"]).remove("this is not a good movie".split())
        ['not', 'good', 'movie']
        >>> StopWords("en", keep_negations=False).remove("this is not a bad movie".split())
        ['bad', 'movie']
    """

    def __init__(
        self,
        language: str = "english",
        *,
        keep_negations: bool = True,
        extra: Iterable[str] = (),
        keep: Iterable[str] = (),
    ) -> None:
        self.language = stop_word_language(language)
        self.keep_negations = keep_negations
        self.words = frozenset(w.lower() for w in get_stop_words(self.language)) | {w.lower() for w in extra}
        self.keep = frozenset(w.lower() for w in keep)

    def is_stop_word(self, token: str) -> bool:
        """Whether ``token`` is removed."""
        word = token.lower()
        if word in self.keep or (self.keep_negations and is_negator(word, self.language)):
            return False
        return word in self.words

    def remove(self, tokens: Iterable[str]) -> list[str]:
        """``tokens`` without the stop words, order kept."""
        return [t for t in tokens if not self.is_stop_word(t)]


# ---------------------------------------------------------------------------------------------
# stemming and lemmatisation

STEMMERS: tuple[str, ...] = tuple(snowballstemmer.algorithms())
"""Snowball algorithms: ``porter`` (Porter 1980), ``english`` (Porter2) and other languages."""


@cache
def _lemmatiser_languages() -> frozenset[str]:
    try:  # simplemma exposes no public list; this is where simplemma 2.x keeps it
        from simplemma.strategies.dictionaries.dictionary_factory import SUPPORTED_LANGUAGES
    except ImportError:  # pragma: no cover - another layout: simplemma checks on first use
        return frozenset()
    return frozenset(SUPPORTED_LANGUAGES)


LEMMATISER_LANGUAGES: frozenset[str] = _lemmatiser_languages()
"""ISO 639 codes that ``simplemma`` has dictionaries for (``en``, ``de``, ``fr``, ...)."""


class Stemmer:
    """A Snowball stemmer applied to word tokens (placeholders, numbers, punctuation pass).

    Stems are computed on the lower-cased token, as the Snowball algorithms are defined on
    lower-case text, so stems come out lower-case. A negator whose stem would no longer be
    one ("noone" -> "noon", "nobody" -> "nobodi") is left whole.

    Example:
        >>> Stemmer("porter")(["caresses", "ponies", "running", "<num>"])
        ['caress', 'poni', 'run', '<num>']
    """

    def __init__(self, algorithm: str = "english") -> None:
        if algorithm not in STEMMERS:
            raise ValueError(f"unknown stemmer {algorithm!r}; choices: {', '.join(STEMMERS)}")
        self.algorithm = algorithm
        self._language = "english" if algorithm == "porter" else algorithm
        self._stemmer = snowballstemmer.stemmer(algorithm)
        # the Snowball stemmers are pure Python; word frequencies are Zipfian, so a memo of
        # the frequent words makes stemming a corpus several times faster
        self._stem = lru_cache(maxsize=1 << 16)(self._stem_uncached)

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        return [self._stem(t) if _is_word(t) else t for t in tokens]

    def _stem_uncached(self, token: str) -> str:
        return _keep_negation(token, self._stemmer.stemWord(token.lower()), self._language)


class Lemmatiser:
    """Dictionary lemmatisation by ``simplemma`` (no part-of-speech tagging).

    simplemma looks each word up in a dictionary shipped in its wheel, so it gives one lemma
    per form whatever the context: "mice" -> "mouse", "running" ->
    "run", "better" -> "good" (the adjective reading; the verb "to better" is not chosen).
    A negator whose lemma would no longer be one ("weren't" -> "be", "don't" -> "do") is left
    whole; "keine" -> "kein" and "n't" -> "not" are kept.

    Example:
        >>> Lemmatiser("en")(["mice", "were", "running", "<num>"])
        ['mouse', 'be', 'run', '<num>']
    """

    def __init__(self, language: str = "en") -> None:
        if LEMMATISER_LANGUAGES and language not in LEMMATISER_LANGUAGES:
            choices = ", ".join(sorted(LEMMATISER_LANGUAGES))
            raise ValueError(f"unknown lemmatiser language {language!r}; choices: {choices}")
        self.language = language
        self._negators = LANGUAGE_MAPPING.get(language, language)

    def __call__(self, tokens: Iterable[str]) -> list[str]:
        return [self._lemma(t) if _is_word(t) else t for t in tokens]

    def _lemma(self, token: str) -> str:
        return _keep_negation(token, simplemma.lemmatize(token, lang=self.language), self._negators)
