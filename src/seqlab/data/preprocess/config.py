"""Typed, strict configuration of the preprocessing pipeline.

``PreprocessConfig`` has one field per step; unknown keys and bad values raise
:class:`~seqlab.errors.ConfigError` naming the key and the choices (through
:func:`seqlab.config.from_dict`, which also gives the ``to_dict``/``from_dict`` round trip).

Example (YAML)::

    preprocess:
      normalise: NFKC
      placeholders: [url, number]
      contractions: true
      lower: true
      punctuation: strip
      stop_words: {language: english, keep: [good]}
      stem: english
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from seqlab.data.preprocess.text import PLACEHOLDERS
from seqlab.data.preprocess.words import LEMMATISER_LANGUAGES, STEMMERS, stop_word_language
from seqlab.errors import ConfigError

__all__ = ["PreprocessConfig", "StopWordsConfig"]

NormalForm = Literal["NFC", "NFKC", "NFD", "NFKD"]
PlaceholderKind = Literal["url", "email", "emoji", "number"]
PunctuationMode = Literal["keep", "collapse", "separate", "strip"]


@dataclass
class StopWordsConfig:
    """Stop-word removal (the ``stop-words`` package lists).

    Attributes:
        language: a ``stop-words`` language name or ISO code: ``english``, ``en``, ``german``...
        keep_negations: keep negators ("not", "no", "never", "n't" ...) even though the list
            has them, so "not good" does not become "good".
        extra: more words to remove.
        keep: words never removed (e.g. ``[good, great]``: the English list holds them).
    """

    language: str = "english"
    keep_negations: bool = True
    extra: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            stop_word_language(self.language)
        except ValueError as err:
            raise ConfigError(f"language: {err}") from None


@dataclass
class PreprocessConfig:
    """Which preprocessing steps run; each is off unless set (NFKC and whitespace are on).

    The order is fixed: normalise -> placeholders -> contractions -> lower -> punctuation ->
    whitespace -> tokenise -> stop words -> stem | lemmatise -> join.

    Attributes:
        normalise: Unicode normal form (``NFKC`` folds "ﬁ" to "fi", full-width to ASCII), or
            None to leave the text as it is.
        placeholders: kinds replaced by a token: ``url`` -> ``<url>``, ``email`` ->
            ``<email>``, ``emoji`` -> ``<emoji>``, ``number`` -> ``<num>``.
        contractions: expand English contractions ("don't" -> "do not").
        lower: lower-case.
        punctuation: ``keep``, ``collapse`` ("!!!" -> "!"), ``separate`` (a space either side)
            or ``strip`` (removed).
        whitespace: collapse runs of whitespace (and control characters) to one space, strip
            the ends.
        tokenise: split into word tokens and join them with single spaces. Implied by the
            word-level steps below (see :attr:`word_level`).
        stop_words: stop-word removal, or None.
        stem: a Snowball algorithm (``porter``, ``english``, ``german``...), or None.
        lemmatise: a ``simplemma`` language code (``en``, ``de``...), or None. Not with ``stem``.
    """

    normalise: NormalForm | None = "NFKC"
    placeholders: list[PlaceholderKind] = field(default_factory=list)
    contractions: bool = False
    lower: bool = False
    punctuation: PunctuationMode = "keep"
    whitespace: bool = True
    tokenise: bool = False
    stop_words: StopWordsConfig | None = None
    stem: str | None = None
    lemmatise: str | None = None

    def __post_init__(self) -> None:
        # 1. choices (from_dict checks the Literal types already; direct construction does not)
        if self.normalise is not None and self.normalise not in get_args(NormalForm):
            choices = ", ".join(get_args(NormalForm))
            raise ConfigError(f"normalise: expected one of {choices} or null, got {self.normalise!r}")
        if self.punctuation not in get_args(PunctuationMode):
            choices = ", ".join(get_args(PunctuationMode))
            raise ConfigError(f"punctuation: expected one of {choices}, got {self.punctuation!r}")
        kinds = list(PLACEHOLDERS)
        for kind in self.placeholders:
            if kind not in kinds:
                raise ConfigError(f"placeholders: unknown kind {kind!r}; choices: {', '.join(kinds)}")
        if len(set(self.placeholders)) != len(self.placeholders):
            raise ConfigError(f"placeholders: each kind at most once, got {self.placeholders}")
        # 2. names the libraries know
        if self.stem is not None and self.stem not in STEMMERS:
            raise ConfigError(f"stem: unknown stemmer {self.stem!r}; choices: {', '.join(STEMMERS)}")
        languages = sorted(LEMMATISER_LANGUAGES)
        if self.lemmatise is not None and languages and self.lemmatise not in languages:
            raise ConfigError(
                f"lemmatise: unknown language {self.lemmatise!r}; choices: {', '.join(languages)}"
            )
        if self.stem is not None and self.lemmatise is not None:
            raise ConfigError("stem: choose stem or lemmatise, not both (lemmatise expects whole words)")

    @property
    def word_level(self) -> bool:
        """Whether the text is tokenised (asked for, or needed by stop words/stem/lemmatise)."""
        return (
            self.tokenise
            or self.stop_words is not None
            or self.stem is not None
            or self.lemmatise is not None
        )
