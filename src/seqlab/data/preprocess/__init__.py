"""Text preprocessing: optional, composable steps in a fixed, documented order.

Every step is off unless the :class:`PreprocessConfig` turns it on (Unicode NFKC and
whitespace cleanup are on by default). The steps always run in this order:

==  ============  ====================================  ==========================================
#   step          config field                          example (input -> output)
==  ============  ====================================  ==========================================
1   normalise     ``normalise: NFKC``                   ``"ﬁlm №１"`` -> ``"film No1"``
2   placeholders  ``placeholders: [url, email,          ``"see www.x.org 😀 10 times"`` ->
                  emoji, number]``                      ``"see <url> <emoji> <num> times"``
3   contractions  ``contractions: true``                ``"I'm sure it won't"`` ->
                                                        ``"I am sure it will not"``
4   lower         ``lower: true``                       ``"The ACTING"`` -> ``"the acting"``
5   punctuation   ``punctuation: strip`` (or            ``"Wow!!! well-known..."`` ->
                  ``collapse``, ``separate``)           ``"Wow well-known"`` (with step 6)
6   whitespace    ``whitespace: true``                  ``" two\\t words "`` -> ``"two words"``
7   tokenise      ``tokenise: true`` (implied by 8-9)   ``"isn't 3.5!"`` -> ``isn't | 3.5 | !``
8   stop words    ``stop_words: {language: english}``   ``this is not a bad movie`` ->
                                                        ``not bad movie`` (negators kept)
9   stem |        ``stem: english`` / ``porter``        ``running ponies`` -> ``run poni``
    lemmatise     ``lemmatise: en``                     ``mice running better`` ->
                                                        ``mouse run good``
10  join          (with tokenise)                       tokens joined by single spaces
==  ============  ====================================  ==========================================

Libraries do the linguistic work: stop-word lists from ``stop-words``, stemmers from
``snowballstemmer``, lemmas from ``simplemma`` (all offline). Contractions use a small
documented table (:func:`expand_contractions`); emoji are found by Unicode general category
and block (:data:`EMOJI_PATTERN`), as Python's :mod:`unicodedata` has no Emoji property.

Example:
    >>> pre = Preprocessor.from_dict({"lower": True, "punctuation": "strip",
    ...                               "stop_words": {"language": "english"}, "lemmatise": "en"})
    >>> pre("The mice weren't running!")
    "mouse weren't run"
    >>> pre(["No cats.", "Never again"])
    ['no cat', 'never']
"""

from __future__ import annotations

from seqlab.data.preprocess.config import PreprocessConfig, StopWordsConfig
from seqlab.data.preprocess.pipeline import Preprocessor
from seqlab.data.preprocess.text import (
    EMOJI_PATTERN,
    PLACEHOLDERS,
    clean_punctuation,
    collapse_whitespace,
    expand_contractions,
    normalise_unicode,
    replace_placeholders,
)
from seqlab.data.preprocess.words import (
    NEGATORS,
    Lemmatiser,
    Stemmer,
    StopWords,
    is_negator,
    word_tokenise,
)

__all__ = [
    "EMOJI_PATTERN",
    "NEGATORS",
    "PLACEHOLDERS",
    "Lemmatiser",
    "PreprocessConfig",
    "Preprocessor",
    "Stemmer",
    "StopWords",
    "StopWordsConfig",
    "clean_punctuation",
    "collapse_whitespace",
    "expand_contractions",
    "is_negator",
    "normalise_unicode",
    "replace_placeholders",
    "word_tokenise",
]
