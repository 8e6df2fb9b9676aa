"""Data: tokenizers and the built-in corpus (real, offline, bundled with a data card)."""

from seqlab.data.corpus import builtin_corpus_path, read_text
from seqlab.data.tokenizers import CharTokenizer

__all__ = ["CharTokenizer", "builtin_corpus_path", "read_text"]
