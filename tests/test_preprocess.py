"""Text preprocessing: each step on hand-worked examples, the pipeline, its config and errors."""

from __future__ import annotations

import doctest
import json
import pickle

import pytest

from seqlab.data import preprocess
from seqlab.data.preprocess import (
    EMOJI_PATTERN,
    Lemmatiser,
    PreprocessConfig,
    Preprocessor,
    Stemmer,
    StopWords,
    StopWordsConfig,
    clean_punctuation,
    collapse_whitespace,
    expand_contractions,
    is_negator,
    normalise_unicode,
    replace_placeholders,
    word_tokenise,
)
from seqlab.errors import ConfigError


def pre(**fields) -> Preprocessor:
    return Preprocessor.from_dict(fields)


def words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------------------
# 1. Unicode normalisation


def test_nfkc_folds_ligatures_and_full_width_forms():
    assert normalise_unicode("ﬁne ﬂow") == "fine flow"
    assert normalise_unicode("１２３ ＡＢＣ") == "123 ABC"
    assert normalise_unicode("wait…") == "wait..."
    assert normalise_unicode("e\u0301") == "é"  # composed, as in NFC
    assert normalise_unicode("ﬁne", "NFC") == "ﬁne"  # NFC keeps compatibility characters
    assert normalise_unicode("é", "NFD") == "e\u0301"


def test_default_preprocessor_is_nfkc_and_whitespace():
    assert Preprocessor()("  ﬁne\u3000ＡＢＣ１２３ \n") == "fine ABC123"  # U+3000 ideographic space
    assert pre(normalise=None, whitespace=False)("  ﬁne ") == "  ﬁne "


# ---------------------------------------------------------------------------------------------
# 2. placeholders


@pytest.mark.parametrize(
    ("text", "kinds", "expected"),
    [
        ("see https://example.com/a?b=1, then", ["url"], "see <url>, then"),
        ("go to www.test.org.", ["url"], "go to <url>."),
        ("mail bob.smith+x@mail.co.uk!", ["email"], "mail <email>!"),
        ("3.14 or 1,000,000 on the 2nd day", ["number"], "<num> or <num> on the <num> day"),
        ("mp3 and covid19 stay, -5 does not", ["number"], "mp3 and covid19 stay, -<num> does not"),
        ("nice 👍🏽 and 👩\u200d💻 in 🇫🇷", ["emoji"], "nice <emoji> and <emoji> in <emoji>"),
        ("love ❤️ 1️⃣ ⭐ ⌚", ["emoji"], "love <emoji> <emoji> <emoji> <emoji>"),
        ("© ™ → ⌘ ■ are symbols, not emoji", ["emoji"], "© ™ → ⌘ ■ are symbols, not emoji"),
        ("great😀😀", ["emoji"], "great<emoji><emoji>"),
    ],
)
def test_placeholders(text, kinds, expected):
    assert replace_placeholders(text, kinds) == expected


def test_placeholder_order_is_fixed_so_url_digits_are_not_numbers():
    text = "see http://x.org/page2024 or me@host99.com, 7 times"
    expected = "see <url> or <email>, <num> times"
    assert replace_placeholders(text, ["number", "email", "url"]) == expected
    assert replace_placeholders(text, ["url", "email", "number"]) == expected


def test_emoji_pattern_matches_whole_sequences():
    assert [m.group() for m in EMOJI_PATTERN.finditer("a👩\u200d💻b🇫🇷👍🏽")] == ["👩\u200d💻", "🇫🇷", "👍🏽"]


def test_placeholders_survive_lowercasing_punctuation_and_tokenising():
    p = pre(placeholders=["url", "number"], lower=True, punctuation="strip", tokenise=True)
    assert p("Read HTTPS://X.ORG, 3 times!") == "read <url> <num> times"


# ---------------------------------------------------------------------------------------------
# 3. contractions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("don't", "do not"),
        ("I'm", "I am"),
        ("won't", "will not"),
        ("can't", "cannot"),
        ("Don't", "Do not"),
        ("DON'T", "DO NOT"),
        ("Can't", "Cannot"),
        ("isn’t", "is not"),  # typographic apostrophe U+2019
        ("you're they've we'll she'd", "you are they have we will she would"),
        ("it's what's there's", "it is what is there is"),
        ("let's go, y'all", "let us go, you all"),
        ("'Tis", "It is"),
        ("John's car and the dog's bone", "John's car and the dog's bone"),  # possessives stay
        ("o'clock, rock'n'roll", "o'clock, rock'n'roll"),
    ],
)
def test_contractions(text, expected):
    assert expand_contractions(text) == expected


# ---------------------------------------------------------------------------------------------
# 4-6. lower-casing, punctuation, whitespace


def test_lower_runs_after_contractions_and_placeholders():
    assert pre(contractions=True, lower=True)("I'M HERE") == "i am here"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("keep", "Wow!!! What?? Yes... (well-known, 3.14)"),
        ("collapse", "Wow! What? Yes... (well-known, 3.14)"),
        ("separate", "Wow !!! What ?? Yes ... ( well-known , 3.14 )"),
        ("strip", "Wow What Yes well-known 3.14"),
    ],
)
def test_punctuation_modes(mode, expected):
    p = pre(punctuation=mode)  # whitespace collapse is on by default
    assert p("Wow!!! What?? Yes... (well-known, 3.14)") == expected


def test_strip_keeps_inner_apostrophes_and_symbols():
    text = "don't 'quote' $5 a+b <num> 1,000"
    assert clean_punctuation(text, "strip") == "don't  quote  $5 a+b <num> 1,000"
    assert clean_punctuation("“curly” ¿qué? ¡sí!", "strip").split() == ["curly", "qué", "sí"]


def test_clean_punctuation_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="keep, collapse, separate or strip"):
        clean_punctuation("a", "remove")


def test_whitespace_collapse():
    assert collapse_whitespace(" a\t\tb \n c\x00d ") == "a b c d"


# ---------------------------------------------------------------------------------------------
# 7. tokenisation


def test_word_tokenise():
    tokens = word_tokenise("It isn't 3.5 stars... well-known <num> 👩\u200d💻!")
    assert tokens == ["It", "isn't", "3.5", "stars", "...", "well-known", "<num>", "👩\u200d💻", "!"]


def test_tokenise_then_join_is_stable():
    text = "Hello, world!! It's 3.14 <url> — ok?"
    tokens = word_tokenise(text)
    assert word_tokenise(" ".join(tokens)) == tokens
    assert pre(tokenise=True)(text) == " ".join(tokens)


# ---------------------------------------------------------------------------------------------
# 8. stop words, negation preserved


def test_negation_preserving_stop_words_keep_not_no_never():
    sw = StopWords("english")
    assert sw.remove(words("this is not a bad movie")) == ["not", "bad", "movie"]
    assert sw.remove(words("there is no plot and never any hope")) == ["no", "plot", "never", "hope"]
    for negator in words("not no never nor none nobody nothing neither nowhere without"):
        assert not sw.is_stop_word(negator), negator
    for contraction in ["don't", "isn't", "won't", "can't", "cannot", "n't", "dont", "Didn’t"]:
        assert not sw.is_stop_word(contraction), contraction


def test_not_good_stays_not_good():
    # The stop-words English list (1,333 words) holds "good" itself; keep it for sentiment.
    text = "this is not a good movie"
    assert StopWords("english").remove(text.split()) == ["not", "movie"]
    assert StopWords("english", keep=["good"]).remove(text.split()) == ["not", "good", "movie"]
    p = pre(stop_words={"keep": ["good"]})
    assert p(text) == "not good movie"


def test_negations_dropped_when_the_option_is_off():
    sw = StopWords("english", keep_negations=False)
    assert sw.remove(words("this is not a bad movie")) == ["bad", "movie"]
    assert sw.remove(words("no never")) == []


def test_stop_words_extra_keep_case_and_languages():
    sw = StopWords("en", extra=["movie"], keep=["this"])
    assert sw.remove(words("This is not a bad MOVIE")) == ["This", "not", "bad"]
    german = StopWords("german").remove(words("Das ist nicht gut und kein Film"))
    assert german == ["nicht", "gut", "kein", "Film"]
    assert StopWords("de", keep_negations=False).remove(words("Das ist nicht gut")) == ["gut"]
    assert is_negator("pas", "french") and not is_negator("pas", "english")


def test_contractions_then_stop_words_keep_the_negation():
    p = pre(contractions=True, lower=True, punctuation="strip", stop_words={})
    assert p("I don't like it, it's never good and there's no plot.") == "not never no plot"


# ---------------------------------------------------------------------------------------------
# 9. stemming and lemmatisation


def test_snowball_english_stems():
    assert Stemmer("english")(["running", "Running", "generously", "ties", "fairly"]) == [
        "run",
        "run",
        "generous",
        "tie",
        "fair",
    ]


def test_porter_textbook_examples():
    # Porter (1980), step 1 examples, and the full algorithm's usual results
    cases = {
        "caresses": "caress",
        "ponies": "poni",
        "ties": "ti",
        "cats": "cat",
        "agreed": "agre",
        "hopping": "hop",
        "falling": "fall",
        "happy": "happi",
        "relational": "relat",
        "conditional": "condit",
        "generously": "gener",
    }
    assert Stemmer("porter")(list(cases)) == list(cases.values())


def test_stemmer_leaves_placeholders_numbers_punctuation_and_negations():
    assert Stemmer("porter")(["<num>", "3.14", "!", "noone", "nobody", "not"]) == [
        "<num>",
        "3.14",
        "!",
        "noone",  # Porter would give "noon"
        "nobody",
        "not",
    ]


def test_simplemma_lemmas():
    # simplemma 2.x (no POS tagging): "better" -> "good" is the adjective reading it picks.
    assert Lemmatiser("en")(["mice", "running", "better", "geese", "was", "children", "went"]) == [
        "mouse",
        "run",
        "good",
        "goose",
        "be",
        "child",
        "go",
    ]
    assert Lemmatiser("de")(["Häuser", "keine"]) == ["Haus", "kein"]


def test_lemmatiser_keeps_negated_auxiliaries():
    # simplemma maps "weren't" -> "be" and "don't" -> "do", which would lose the negation
    assert Lemmatiser("en")(["weren't", "don't", "n't", "can't"]) == ["weren't", "don't", "not", "cannot"]


def test_stem_and_lemmatise_in_the_pipeline():
    assert pre(stem="english")("The runners were running") == "the runner were run"
    assert pre(lemmatise="en")("Mice were running better") == "mouse be run good"


# ---------------------------------------------------------------------------------------------
# the pipeline: order, lists, describe, round trip, idempotence


def test_full_pipeline_hand_worked():
    p = pre(
        placeholders=["url", "number"],
        contractions=True,
        lower=True,
        punctuation="strip",
        stop_words={"keep": ["good"]},
        stem="english",
    )
    text = "I DON'T think it's good: 2 hours, see https://x.org/review!"
    # DON'T -> DO NOT -> do not; it's -> it is; "2" -> <num>; the URL -> <url>; stop words drop
    # i, do, think, it, is, see (negator "not" and the kept "good" stay); hours -> hour
    assert p(text) == "not good <num> hour <url>"
    assert p.tokens(text) == ["not", "good", "<num>", "hour", "<url>"]


def test_call_on_a_list():
    p = pre(lower=True)
    assert p(["A B", "C"]) == ["a b", "c"]
    assert p(("X",)) == ["x"]
    with pytest.raises(TypeError, match="string or a sequence of strings"):
        p(["a", 3])


def test_describe_lists_steps_in_order():
    p = pre(lemmatise="en", lower=True, placeholders=["number", "url"], stop_words={})
    names = [name for name, _ in p.steps()]
    expected = ["normalise", "placeholders", "lower", "whitespace", "tokenise", "stop words", "lemmatise"]
    assert names == [*expected, "join"]
    text = p.describe()
    assert text.splitlines()[1] == "2. placeholders: url -> <url>, number -> <num>"
    assert "negators kept" in text
    assert pre(normalise=None, whitespace=False).describe() == "identity (no steps)"


def test_round_trip_through_json_and_pickle():
    data = {
        "normalise": "NFC",
        "placeholders": ["emoji", "url"],
        "contractions": True,
        "lower": True,
        "punctuation": "separate",
        "whitespace": True,
        "tokenise": False,
        "stop_words": {"language": "french", "keep_negations": False, "extra": ["x"], "keep": ["y"]},
        "stem": "french",
        "lemmatise": None,
    }
    p = Preprocessor.from_dict(data)
    assert p.to_dict() == data
    assert Preprocessor.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert Preprocessor.from_dict(Preprocessor().to_dict()) == Preprocessor()
    clone = pickle.loads(pickle.dumps(p))
    assert clone == p and clone("Bonjour") == p("Bonjour")


@pytest.mark.parametrize(
    "text",
    [
        "I DON'T think it's good!!! 2 hours… see www.x.org 😀",
        "  ﬁne\tＡＢＣ  “quoted” -- well-known, 3.14 ",
        "This is not a good movie, is it? No. Never!",
    ],
)
def test_idempotent_without_stemming(text):
    p = pre(
        placeholders=["url", "emoji", "number"],
        contractions=True,
        lower=True,
        punctuation="separate",
        stop_words={},
    )
    once = p(text)
    assert p(once) == once
    q = pre(punctuation="strip", contractions=True, lower=True)
    assert q(q(text)) == q(text)


# ---------------------------------------------------------------------------------------------
# config errors


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lowercase": True}, "unknown key 'lowercase'; allowed keys: normalise, placeholders"),
        ({"normalise": "nfkc"}, "normalise: expected one of 'NFC', 'NFKC', 'NFD', 'NFKD'"),
        ({"punctuation": "remove"}, "punctuation: expected one of 'keep', 'collapse', 'separate', 'strip'"),
        ({"placeholders": ["phone"]}, "placeholders[0]: expected one of 'url', 'email', 'emoji', 'number'"),
        ({"placeholders": ["url", "url"]}, "placeholders: each kind at most once"),
        ({"lower": "yes"}, "lower: expected bool, got str 'yes'"),
        ({"stem": "klingon"}, "stem: unknown stemmer 'klingon'; choices: arabic, "),
        ({"lemmatise": "xx"}, "lemmatise: unknown language 'xx'; choices: "),
        ({"stem": "english", "lemmatise": "en"}, "choose stem or lemmatise, not both"),
        ({"stop_words": {"language": "kl"}}, "stop_words.language: unknown stop-word language 'kl'"),
        ({"stop_words": {"lang": "en"}}, "unknown key 'stop_words.lang'; allowed keys: language, keep"),
        ({"stop_words": {"keep": "good"}}, "stop_words.keep: expected list, got str 'good'"),
    ],
)
def test_config_errors(data, message):
    with pytest.raises(ConfigError) as err:
        Preprocessor.from_dict(data)
    assert message in str(err.value)


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="normalise: expected one of NFC, NFKC, NFD, NFKD or null"):
        PreprocessConfig(normalise="nfkc")
    with pytest.raises(ConfigError, match="placeholders: unknown kind 'phone'"):
        PreprocessConfig(placeholders=["phone"])
    with pytest.raises(ConfigError, match="language: unknown stop-word language"):
        StopWordsConfig(language="xx")
    assert PreprocessConfig(stop_words=StopWordsConfig()).word_level
    assert not PreprocessConfig().word_level


@pytest.mark.parametrize("module", ["__init__", "config", "pipeline", "text", "words"])
def test_docstring_examples(module):
    mod = preprocess if module == "__init__" else getattr(preprocess, module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0 or module == "config"
