"""The :class:`Preprocessor`: the configured steps, in their fixed order, as one callable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

from seqlab.config import from_dict, to_dict
from seqlab.data.preprocess.config import PreprocessConfig
from seqlab.data.preprocess.text import (
    PLACEHOLDERS,
    clean_punctuation,
    collapse_whitespace,
    expand_contractions,
    normalise_unicode,
    replace_placeholders,
)
from seqlab.data.preprocess.words import Lemmatiser, Stemmer, StopWords, word_tokenise

__all__ = ["Preprocessor"]

_PUNCTUATION = {
    "collapse": "runs of one mark collapsed ('!!!' -> '!')",
    "separate": "punctuation separated by spaces",
    "strip": "punctuation removed (inner apostrophes, hyphens, decimal points kept)",
}


class Preprocessor:
    """Text preprocessing built from a :class:`PreprocessConfig`.

    Call it on a string (returns a string) or on a sequence of strings (returns a list).
    :meth:`tokens` gives the word tokens instead of the joined text.

    Args:
        config: the steps to run; None gives the defaults (NFKC and whitespace cleanup).

    Example:
        >>> pre = Preprocessor.from_dict({"contractions": True, "lower": True, "punctuation": "strip",
        ...                               "stop_words": {"language": "english"}, "stem": "english"})
        >>> pre("I don't think this film is bad, it's the ACTING I hated!")
        'not film bad act hate'
        >>> print(pre.describe())
        1. normalise: Unicode NFKC
        2. contractions: expand English contractions (don't -> do not)
        3. lower: lower-case
        4. punctuation: punctuation removed (inner apostrophes, hyphens, decimal points kept)
        5. whitespace: collapse runs of whitespace, strip the ends
        6. tokenise: regex word tokens
        7. stop words: english stop-words list, negators kept
        8. stem: Snowball 'english'
        9. join: tokens joined by single spaces
    """

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config if config is not None else PreprocessConfig()
        self._text_steps, self._word_steps = self._build()

    # -- construction and serialisation -------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessor:
        """Build from plain data (a YAML/JSON section); strict, see :class:`PreprocessConfig`."""
        return cls(from_dict(PreprocessConfig, data))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form of the config: ``Preprocessor.from_dict(p.to_dict())`` equals ``p``."""
        return to_dict(self.config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preprocessor) and other.config == self.config

    def __hash__(self) -> int:
        return hash(repr(self.config))

    def __repr__(self) -> str:
        return f"Preprocessor({self.config!r})"

    def __reduce__(self) -> tuple[type[Preprocessor], tuple[PreprocessConfig]]:
        # pickled by config only (for DataLoader workers): the helpers are rebuilt on load
        return Preprocessor, (self.config,)

    # -- running ------------------------------------------------------------------------------

    @overload
    def __call__(self, text: str) -> str: ...

    @overload
    def __call__(self, text: Sequence[str]) -> list[str]: ...

    def __call__(self, text: str | Sequence[str]) -> str | list[str]:
        """Preprocess one text, or each text of a sequence."""
        if isinstance(text, str):
            return self._one(text)
        if not all(isinstance(t, str) for t in text):
            raise TypeError("Preprocessor expects a string or a sequence of strings")
        return [self._one(t) for t in text]

    def tokens(self, text: str) -> list[str]:
        """The word tokens of ``text`` after every step (tokenised even if ``tokenise`` is off).

        Example:
            >>> Preprocessor(PreprocessConfig(placeholders=["number"])).tokens("2 cats, 1 dog")
            ['<num>', 'cats', ',', '<num>', 'dog']
        """
        tokens = word_tokenise(self._characters(text))
        for step in self._word_steps:
            tokens = step(tokens)
        return tokens

    def _characters(self, text: str) -> str:
        for step in self._text_steps:
            text = step(text)
        return text

    def _one(self, text: str) -> str:
        if not self.config.word_level:
            return self._characters(text)
        return " ".join(self.tokens(text))

    # -- the steps ----------------------------------------------------------------------------

    def _build(self) -> tuple[list[Callable[[str], str]], list[Callable[[list[str]], list[str]]]]:
        """The character-level and word-level step functions, in order."""
        c = self.config
        text: list[Callable[[str], str]] = []
        if c.normalise is not None:
            text.append(lambda s, form=c.normalise: normalise_unicode(s, form))
        if c.placeholders:
            text.append(lambda s, kinds=tuple(c.placeholders): replace_placeholders(s, kinds))
        if c.contractions:
            text.append(expand_contractions)
        if c.lower:
            text.append(str.lower)
        if c.punctuation != "keep":
            text.append(lambda s, mode=c.punctuation: clean_punctuation(s, mode))
        if c.whitespace:
            text.append(collapse_whitespace)
        words: list[Callable[[list[str]], list[str]]] = []
        if c.stop_words is not None:
            sw = c.stop_words
            words.append(
                StopWords(sw.language, keep_negations=sw.keep_negations, extra=sw.extra, keep=sw.keep).remove
            )
        if c.stem is not None:
            words.append(Stemmer(c.stem))
        if c.lemmatise is not None:
            words.append(Lemmatiser(c.lemmatise))
        return text, words

    def steps(self) -> list[tuple[str, str]]:
        """``(step, what it does)`` for each step that runs, in order."""
        c = self.config
        out: list[tuple[str, str]] = []
        if c.normalise is not None:
            out.append(("normalise", f"Unicode {c.normalise}"))
        if c.placeholders:
            kinds = [k for k in PLACEHOLDERS if k in c.placeholders]
            out.append(("placeholders", ", ".join(f"{k} -> {PLACEHOLDERS[k]}" for k in kinds)))
        if c.contractions:
            out.append(("contractions", "expand English contractions (don't -> do not)"))
        if c.lower:
            out.append(("lower", "lower-case"))
        if c.punctuation != "keep":
            out.append(("punctuation", _PUNCTUATION[c.punctuation]))
        if c.whitespace:
            out.append(("whitespace", "collapse runs of whitespace, strip the ends"))
        if c.word_level:
            out.append(("tokenise", "regex word tokens"))
        if c.stop_words is not None:
            sw = StopWords(c.stop_words.language)
            extras = [f"+{len(c.stop_words.extra)} extra"] if c.stop_words.extra else []
            extras += [f"keeping {', '.join(c.stop_words.keep)}"] if c.stop_words.keep else []
            extras.insert(0, "negators kept" if c.stop_words.keep_negations else "negators removed")
            out.append(("stop words", f"{sw.language} stop-words list, {'; '.join(extras)}"))
        if c.stem is not None:
            out.append(("stem", f"Snowball {c.stem!r}"))
        if c.lemmatise is not None:
            out.append(("lemmatise", f"simplemma {c.lemmatise!r}"))
        if c.word_level:
            out.append(("join", "tokens joined by single spaces"))
        return out

    def describe(self) -> str:
        """The steps that run, numbered, one a line ("identity (no steps)" if none)."""
        lines = [f"{i}. {name}: {what}" for i, (name, what) in enumerate(self.steps(), start=1)]
        return "\n".join(lines) or "identity (no steps)"
