"""Data: tokenizers and the built-in corpus (real, offline, bundled with a data card)."""

from seqlab.data.corpus import builtin_corpus_path, read_text
from seqlab.data.tokenizers import (
    SPECIAL_TOKENS,
    TOKENIZER_KINDS,
    CharTokenizer,
    SubwordTokenizer,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    train_tokenizer,
)

__all__ = [
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "CharTokenizer",
    "SubwordTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "builtin_corpus_path",
    "load_tokenizer",
    "read_text",
    "train_tokenizer",
]
