"""Character-level preprocessing steps: each a pure ``str -> str`` function.

These run before tokenisation, in the order the :class:`~seqlab.data.preprocess.Preprocessor`
fixes: :func:`normalise_unicode` -> :func:`replace_placeholders` -> :func:`expand_contractions`
-> (lower-casing) -> :func:`clean_punctuation` -> :func:`collapse_whitespace`.

Example:
    >>> expand_contractions("I'm sure they won't mind, don't worry")
    'I am sure they will not mind, do not worry'
    >>> replace_placeholders("Mail me@example.com about the 2 films", ["email", "number"])
    'Mail <email> about the <num> films'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "EMOJI_PATTERN",
    "PLACEHOLDERS",
    "clean_punctuation",
    "collapse_whitespace",
    "expand_contractions",
    "normalise_unicode",
    "replace_placeholders",
]

# ---------------------------------------------------------------------------------------------
# Unicode normalisation


def normalise_unicode(text: str, form: str = "NFKC") -> str:
    """Unicode normal form ``form`` (NFC, NFKC, NFD or NFKD) of ``text``.

    NFKC folds compatibility characters onto their plain forms: the ligature ``"ﬁ"`` becomes
    ``"fi"``, full-width ``"１２３"`` becomes ``"123"``, ``"…"`` becomes ``"..."``.

    Example:
        >>> normalise_unicode("ﬁne ＡＢＣ １２３")
        'fine ABC 123'
    """
    return unicodedata.normalize(form, text)


# ---------------------------------------------------------------------------------------------
# placeholders: url, email, emoji, number

PLACEHOLDERS: dict[str, str] = {"url": "<url>", "email": "<email>", "emoji": "<emoji>", "number": "<num>"}
"""Placeholder kind -> the token that replaces it (applied in this order)."""

_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"]*[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A number: digits with optional decimal/thousands separators and exponent, or an ordinal
# ("2nd"); it must not continue a word ("mp3", "covid19" stay as they are).
_NUMBER = re.compile(r"(?<!\w)\d+(?:[.,]\d+)*(?:[eE][+-]?\d+)?(?:(?:st|nd|rd|th)(?!\w))?")


def _emoji_class() -> str:
    """A regex character class of emoji base characters, built from Unicode properties.

    Python's :mod:`unicodedata` has no Emoji property, so this approximates Unicode's
    Extended_Pictographic set: symbols (general category ``So``) in the pictographic blocks
    (Miscellaneous Symbols and Dingbats U+2600–U+27BF, U+1F000–U+1FAFF) plus the few
    pictographs of Miscellaneous Technical and Arrows (⌚ ⌛ ⏩… ⬛ ⭐ ⭕). Text symbols outside
    those blocks (© ® ™, arrows, box drawing) are not emoji here.
    """
    technical = [0x231A, 0x231B, 0x2328, 0x23CF, *range(0x23E9, 0x23F4), 0x23F8, 0x23F9, 0x23FA]
    arrows = [0x2B05, 0x2B06, 0x2B07, 0x2B1B, 0x2B1C, 0x2B50, 0x2B55]
    blocks = [*range(0x2600, 0x27C0), *range(0x1F000, 0x1FB00)]
    points = [*technical, *arrows, *(p for p in blocks if unicodedata.category(chr(p)) == "So")]
    ranges: list[list[int]] = []
    for p in points:
        if ranges and p == ranges[-1][1] + 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    return (
        "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"
    )


_EMOJI_BASE = _emoji_class()
# One emoji as a reader sees it: a flag (two regional indicators), a keycap (1️⃣), or a base
# with its variation selector, skin-tone modifier, tag characters and ZWJ-joined parts (👩‍💻).
_EMOJI_TAIL = "(?:\ufe0f|[\U0001f3fb-\U0001f3ff]|[\U000e0020-\U000e007f])*"
EMOJI_PATTERN = re.compile(
    r"[\U0001f1e6-\U0001f1ff]{2}"
    r"|[0-9#*]\ufe0f?\u20e3"
    rf"|{_EMOJI_BASE}{_EMOJI_TAIL}(?:\u200d{_EMOJI_BASE}{_EMOJI_TAIL})*"
)
"""Compiled pattern matching one emoji (flags, keycaps, ZWJ sequences and modifiers included)."""

_PLACEHOLDER_PATTERNS = {"url": _URL, "email": _EMAIL, "emoji": EMOJI_PATTERN, "number": _NUMBER}


def replace_placeholders(text: str, kinds: Iterable[str]) -> str:
    """Replace URLs, e-mail addresses, emoji and numbers by placeholder tokens.

    The kinds run in the order of :data:`PLACEHOLDERS` whatever order ``kinds`` gives, so the
    digits of a URL are never turned into ``<num>`` first. Placeholders are inserted as they
    are, without spaces: the word tokeniser knows them (``"great😀"`` -> ``"great<emoji>"``).

    Args:
        text: the text.
        kinds: a subset of ``url``, ``email``, ``emoji``, ``number``.

    Example:
        >>> replace_placeholders("see www.x.org 😀 at 10:30", ["url", "emoji", "number"])
        'see <url> <emoji> at <num>:<num>'
    """
    wanted = set(kinds)
    for kind, pattern in _PLACEHOLDER_PATTERNS.items():
        if kind in wanted:
            text = pattern.sub(PLACEHOLDERS[kind], text)
    return text


# ---------------------------------------------------------------------------------------------
# contractions

# Forms that no suffix rule gives. "can't" -> "cannot" (one word, as written in the stop-word
# and negation lists); "ain't" is ambiguous (am/is/are/has/have not): "is not" is a guess.
_IRREGULAR = {
    "won't": "will not",
    "can't": "cannot",
    "shan't": "shall not",
    "ain't": "is not",
    "let's": "let us",
    "y'all": "you all",
    "ma'am": "madam",
    "'tis": "it is",
    "'twas": "it was",
}
# "'d" is "would" or "had" and cannot be told apart without parsing: "would" is chosen.
_SUFFIXES = (("n't", "not"), ("'re", "are"), ("'m", "am"), ("'ve", "have"), ("'ll", "will"), ("'d", "would"))
# "'s" is also the possessive ("John's"), so it is expanded only after these words.
_IS_WORDS = frozenset(
    ["he", "she", "it", "that", "there", "here", "what", "where", "who", "how", "when", "why"]
)
_CONTRACTION = re.compile(r"(?<![\w'’])['’](?:tis|twas)\b|[^\W\d_]+(?:['’][^\W\d_]+)+", re.IGNORECASE)


def _expand_one(word: str) -> str:
    """Expansion of one apostrophe word, keeping its case; the word itself if none applies."""
    key = word.lower().replace("’", "'")
    if key in _IRREGULAR:
        out = _IRREGULAR[key]
    else:
        for suffix, full in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                out = word[: -len(suffix)] + " " + full
                break
        else:
            if not (key.endswith("'s") and key[:-2] in _IS_WORDS):
                return word
            out = word[:-2] + " is"
    letters = word.replace("'", "").replace("’", "")
    if len(letters) > 1 and letters.isupper():
        return out.upper()
    return out[0].upper() + out[1:] if letters[0].isupper() else out


def expand_contractions(text: str) -> str:
    """Expand English contractions: "don't" -> "do not", "I'm" -> "I am".

    A small documented table (no maintained, dependency-light package does this offline):
    the irregular forms (won't -> will not, can't -> cannot, shan't, ain't -> is not, let's,
    y'all, ma'am, 'tis, 'twas), the suffixes n't -> not, 're -> are, 'm -> am, 've -> have,
    'll -> will, 'd -> would (never "had": the two cannot be told apart without parsing), and
    's -> is after pronouns and wh-words only (possessives such as "John's" stay). Both the
    ASCII apostrophe and U+2019 are recognised. The case of the first letter is kept, and an
    all-capitals word expands in capitals ("DON'T" -> "DO NOT").

    Example:
        >>> expand_contractions("Can't stop; it's what we'd do. John's car isn't here")
        "Cannot stop; it is what we would do. John's car is not here"
    """
    return _CONTRACTION.sub(lambda m: _expand_one(m.group()), text)


# ---------------------------------------------------------------------------------------------
# punctuation and whitespace

_NOT_WORD = re.compile(r"[^\w\s]")
_INSIDE_WORD = "'’-"  # kept between two letters/digits: don't, well-known
_INSIDE_NUMBER = ".,"  # kept between two digits: 3.14, 1,000


def _is_kept(text: str, i: int) -> bool:
    """Whether the punctuation mark at ``text[i]`` is part of a word or a number."""
    ch, before, after = text[i], text[i - 1 : i], text[i + 1 : i + 2]
    if ch in _INSIDE_WORD:
        return before.isalnum() and after.isalnum()
    return ch in _INSIDE_NUMBER and before.isdigit() and after.isdigit()


def clean_punctuation(text: str, mode: str) -> str:
    """Clean punctuation (Unicode general category ``P*``); symbols such as ``$ + <`` are kept.

    Modes:
        ``keep``: unchanged.
        ``collapse``: a run of one repeated mark becomes one (``"!!!"`` -> ``"!"``), except a
            run of dots, which becomes an ellipsis ``"..."``.
        ``separate``: a space either side of each mark (or run of one mark), so it becomes a
            token of its own.
        ``strip``: each mark becomes a space.

    Apostrophes and hyphens between letters (``don't``, ``well-known``) and ``.``/``,``
    between digits (``3.14``, ``1,000``) belong to their word and are never touched.

    Example:
        >>> clean_punctuation("Wow!!! A well-known film... (2.5 hours)", "strip")
        'Wow    A well-known film     2.5 hours '
    """
    if mode == "keep":
        return text
    if mode not in ("collapse", "separate", "strip"):
        raise ValueError(f"punctuation mode must be keep, collapse, separate or strip, got {mode!r}")
    pieces: list[str] = []
    last = 0
    for m in re.finditer(r"([^\w\s])\1*", text):
        ch = m.group(1)
        if not unicodedata.category(ch).startswith("P") or (
            len(m.group()) == 1 and _is_kept(text, m.start())
        ):
            continue
        pieces.append(text[last : m.start()])
        last = m.end()
        if mode == "strip":
            pieces.append(" " * len(m.group()))
        else:
            run = "..." if ch == "." and len(m.group()) > 1 else ch
            pieces.append(run if mode == "collapse" else f" {m.group()} ")
    pieces.append(text[last:])
    return "".join(pieces)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def collapse_whitespace(text: str) -> str:
    """Control characters become spaces, runs of whitespace one space, ends are stripped.

    Example:
        >>> collapse_whitespace("  two\\t\\twords \\n")
        'two words'
    """
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
