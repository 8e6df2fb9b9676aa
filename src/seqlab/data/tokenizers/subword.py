"""Subword tokenizers trained with Hugging Face ``tokenizers``: BPE, WordPiece and Unigram.

How each is put together, and what round-trips (``decode(encode(t)) == t``):

- **bpe** — byte-level BPE (GPT-2; Sennrich et al. 2016 on bytes): text is split with GPT-2's
  pre-tokenisation regex and every UTF-8 byte is a base symbol, so *any* text encodes without
  [UNK] and decodes back **exactly** — newlines, runs of spaces, tabs, emoji included.
  ``tokens`` shows the byte-level alphabet (``Ġ`` = space, ``Ċ`` = newline).
- **unigram** — the Unigram LM of SentencePiece (Kudo 2018): spaces become ``▁`` and start a
  piece, nothing is prepended. Exact for every text whose characters were all seen in training
  and which has no ``▁`` (U+2581) of its own; an unseen character becomes [UNK].
  Unigram prunes by likelihood and has no ``min_frequency``.
- **wordpiece** — BERT's WordPiece (continuations marked ``##``) after splitting on whitespace
  and punctuation, so whitespace is normalised: ``decode(encode(t)) == " ".join(words)`` where
  ``words = re.findall(r"\\w+|[^\\w\\s]+", t)``, when no word becomes [UNK] (a word with an
  unseen character does, whole).

Special tokens ([PAD] [UNK] ...) take ids 0.. in the order given. BPE and WordPiece encode
text that happens to spell one (``"[MASK]"``) as ordinary text, never as the special id;
Unigram keeps the special tokens among its pieces, so it reads such text as the special token
(``decode(..., skip_special_tokens=False)`` still gives the text back). ``lowercase`` adds a
lower-casing normaliser (then only lower-case text round-trips).

**Reproducibility** — training the same texts twice, in two processes, gives the same file:

- **bpe** is deterministic as Hugging Face trains it.
- **wordpiece**: HF assigns the ids of the continuation symbols ``##x`` in hash-map order (random
  per process; huggingface/tokenizers#1794), and merges of equal count are broken by id, so the
  learnt *set* of pieces changed run to run. Here the ``##x`` of every character seen inside a
  word is registered first, in code-point order (as trainer special tokens, removed again
  afterwards), so ids and merges no longer depend on the hash order. This reads the texts twice:
  an iterator of texts is held in memory as a list.
- **unigram**: HF gives the characters its model did not keep the scores ``min + k·1e-4`` in hash
  order, and sums EM expectations in hash order (scores differ in the 15th digit). Here those
  characters get the same scores in code-point order, every score is rounded to 6 decimals and
  pieces are ordered by (−score, piece), special tokens first. What is left: a piece whose
  pruning is decided by the last bits of a float sum could still differ — never seen on the
  built-in corpus or shakespeare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from seqlab.data.tokenizers.base import SPECIAL_TOKENS, UNK, Offsets, Tokenizer, check_fields
from seqlab.errors import ConfigError, RunDirError

__all__ = ["SUBWORD_KINDS", "SubwordTokenizer"]

SUBWORD_KINDS = ("bpe", "wordpiece", "unigram")
HF_MODEL = {"bpe": "BPE", "wordpiece": "WordPiece", "unigram": "Unigram"}  # "model.type" in HF JSON
BYTES = 256  # base symbols of byte-level BPE
PREFIX, SPACE = "##", "▁"  # WordPiece continuation prefix; Unigram's space symbol
PENALTY = 1e-4  # HF Unigram: characters the model did not keep score min + k·PENALTY
DECIMALS = 6  # Unigram scores are rounded to this many decimals (far above the float noise)
BYTE_DECODER = decoders.ByteLevel()  # byte-level symbols -> text, for ``words``


def _pipeline(kind: str, lowercase: bool) -> HFTokenizer:
    """An untrained HF tokenizer of ``kind`` with its normaliser, pre-tokeniser and decoder."""
    if kind == "bpe":
        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
    elif kind == "wordpiece":
        tok = HFTokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix=PREFIX))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece(prefix=PREFIX, cleanup=False)
    else:
        tok = HFTokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="never", split=True)
        tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="never", split=True)
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    return tok


def _trainer(kind: str, vocab_size: int, min_frequency: int, specials: list[str]) -> trainers.Trainer:
    if kind == "bpe":
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        return trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            initial_alphabet=alphabet,
            show_progress=False,
        )
    if kind == "wordpiece":
        return trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            continuing_subword_prefix=PREFIX,
            show_progress=False,
        )
    return trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        unk_token=UNK if UNK in specials else None,
        show_progress=False,
    )


def _check_options(kind: str, vocab_size: int, min_frequency: int, specials: list[str]) -> None:
    unknown = [t for t in specials if t not in SPECIAL_TOKENS]
    if unknown:
        raise ConfigError(f"special token {unknown[0]!r}: choose from {', '.join(SPECIAL_TOKENS)}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ConfigError(f"min_frequency: expected an integer >= 1, got {min_frequency!r}")
    if kind == "unigram" and min_frequency != 1:
        raise ConfigError(
            "min_frequency: unigram prunes by likelihood and has no min_frequency; leave it at 1"
        )
    if kind in ("wordpiece", "unigram") and UNK not in specials:
        raise ConfigError(f"{kind} needs [UNK] among its special tokens (for characters it never saw)")
    least = len(specials) + (BYTES if kind == "bpe" else 1)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < least:
        why = (
            f"{BYTES} byte symbols + {len(specials)} special tokens"
            if kind == "bpe"
            else "special tokens + 1"
        )
        raise ConfigError(f"vocab_size: {kind} needs at least {least} ({why}), got {vocab_size!r}")


def _continuations(hf: HFTokenizer, texts: Sequence[str]) -> list[str]:
    """``##x`` for every character ``x`` seen after the first of a word, in code-point order.

    Registered before training, they take ids that do not depend on hash order (see the module
    docstring); words are the pipeline's own (normaliser, then pre-tokeniser).
    """
    chars: set[str] = set()
    for text in texts:
        if hf.normalizer is not None:
            text = hf.normalizer.normalize_str(text)
        for word, _ in hf.pre_tokenizer.pre_tokenize_str(text):
            chars.update(word[1:])
    return [PREFIX + c for c in sorted(chars)]


def _drop_added(hf: HFTokenizer, tokens: list[str]) -> HFTokenizer:
    """``hf`` without ``tokens`` among its added (special) tokens; they stay in the model's vocab."""
    data = json.loads(hf.to_str())
    drop = set(tokens)
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in drop]
    return HFTokenizer.from_str(json.dumps(data))


def _canonical_unigram(hf: HFTokenizer, n_special: int) -> HFTokenizer:
    """Unigram pieces in a run-independent order and with run-independent scores.

    1. characters HF added with the scores ``m + k·PENALTY`` (``k`` in hash order) get the same
       scores, the highest to the lowest code point; 2. scores are rounded to :data:`DECIMALS`;
    3. pieces are ordered by (−score, piece) after the special tokens (ids unchanged for those).
    """
    data = json.loads(hf.to_str())
    specials, pieces = data["model"]["vocab"][:n_special], data["model"]["vocab"][n_special:]
    scores = {piece: score for piece, score in pieces}
    singles = [p for p in scores if len(p) == 1]
    if singles:  # 1. single characters at whole PENALTY steps above the lowest one
        low = min(scores[p] for p in singles)
        steps = {p: (scores[p] - low) / PENALTY for p in singles}
        chosen = sorted(p for p, k in steps.items() if abs(k - round(k)) < 1e-6 and k < len(singles))
        for piece, score in zip(chosen, sorted((scores[p] for p in chosen), reverse=True), strict=True):
            scores[piece] = score
    # 2. rounded, 3. ordered
    ranked = sorted(((p, round(s, DECIMALS)) for p, s in scores.items()), key=lambda ps: (-ps[1], ps[0]))
    data["model"]["vocab"] = specials + [list(ps) for ps in ranked]
    return HFTokenizer.from_str(json.dumps(data))


class SubwordTokenizer(Tokenizer):
    """A trained Hugging Face tokenizer behind seqlab's :class:`Tokenizer` interface.

    Build one with :meth:`train` (or :func:`~seqlab.data.tokenizers.train_tokenizer`); the HF
    tokenizer's own JSON is saved inside seqlab's ``tokenizer.json``.

    Example::

        >>> tok = SubwordTokenizer.train("bpe", ["to be or not to be\\n"] * 50, vocab_size=300)
        >>> tok.decode(tok.encode("to  be\\n")) == "to  be\\n"
        True
    """

    def __init__(self, kind: str, hf: HFTokenizer, special_tokens: Sequence[str]) -> None:
        if kind not in SUBWORD_KINDS:
            raise ConfigError(f"subword kind {kind!r}: choose from {', '.join(SUBWORD_KINDS)}")
        self.kind = kind
        self.hf = hf
        self.hf.encode_special_tokens = True  # text spelling "[MASK]" is text, not the special id
        self._specials = list(special_tokens)
        self._tokens = [hf.id_to_token(i) for i in range(hf.get_vocab_size())]

    @classmethod
    def train(
        cls,
        kind: str,
        texts: Iterable[str],
        vocab_size: int,
        min_frequency: int = 1,
        special_tokens: Sequence[str] = SPECIAL_TOKENS,
        lowercase: bool = False,
    ) -> SubwordTokenizer:
        """Train a ``kind`` tokenizer on ``texts`` (an iterable of strings, e.g. lines).

        ``vocab_size`` is the target size, special tokens and (for BPE) the 256 bytes included;
        a small corpus may give fewer. ``min_frequency``: the fewest occurrences of a merge
        (BPE) or word (WordPiece) to be learnt. The same texts give the same tokenizer in every
        process (see "Reproducibility" in the module docstring for what that rests on).
        """
        if kind not in SUBWORD_KINDS:
            raise ConfigError(f"subword kind {kind!r}: choose from {', '.join(SUBWORD_KINDS)}")
        specials = list(special_tokens)
        _check_options(kind, vocab_size, min_frequency, specials)
        hf = _pipeline(kind, lowercase)
        extra: list[str] = []
        if kind == "wordpiece":  # see "Reproducibility" in the module docstring
            texts = texts if isinstance(texts, (list, tuple)) else list(texts)
            extra = [t for t in _continuations(hf, texts) if t not in specials]
        hf.train_from_iterator(iter(texts), _trainer(kind, vocab_size, min_frequency, specials + extra))
        if extra:
            hf = _drop_added(hf, extra)
        if kind == "unigram":
            hf = _canonical_unigram(hf, len(specials))
        return cls(kind, hf, specials)

    @property
    def tokens(self) -> list[str]:
        return self._tokens

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def _plain(self, token: str) -> str:
        if self.kind == "bpe":
            return BYTE_DECODER.decode([token])  # 'Ġthe' -> ' the'
        if self.kind == "wordpiece":
            return token[len(PREFIX) :] if token.startswith(PREFIX) and len(token) > len(PREFIX) else token
        return token.replace(SPACE, " ")

    @property
    def special_tokens(self) -> list[str]:
        return list(self._specials)

    def _encode(self, text: str) -> tuple[list[int], Offsets]:
        enc = self.hf.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def _decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=False)

    def to_json(self) -> dict[str, Any]:
        hf = json.loads(self.hf.to_str())
        return {"type": self.kind, "format": 2, "special_tokens": self._specials, "hf": hf}

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | Path) -> SubwordTokenizer:
        check_fields(data, path, special_tokens=list, hf=dict)
        kind, hf_json = data["type"], data["hf"]
        model = hf_json.get("model")
        found = model.get("type") if isinstance(model, dict) else None
        if found != HF_MODEL.get(kind):
            raise RunDirError(
                f"{path}: a {kind} tokenizer must hold a {HF_MODEL.get(kind)} model, got {found!r}"
            )
        try:
            hf = HFTokenizer.from_str(json.dumps(hf_json))
        except Exception as err:  # the HF parser raises plain Exception
            raise RunDirError(f"{path}: damaged {kind} tokenizer: {err}") from None
        return cls(kind, hf, data["special_tokens"])
