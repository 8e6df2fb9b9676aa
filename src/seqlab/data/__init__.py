"""Data: containers, tokenizers, preprocessing, users' files, token files, word vectors.

Registered real datasets live in :mod:`seqlab.data.datasets` (imported on demand: it reads
the bundled files only when a dataset is loaded).
"""

from seqlab.data.corpus import builtin_corpus_path, read_text
from seqlab.data.files import read_parallel, read_table, read_text_corpus, split_items, split_text
from seqlab.data.preprocess import PreprocessConfig, Preprocessor
from seqlab.data.series_files import fill_missing, read_series_csv, split_series
from seqlab.data.tokenfile import TokenFile, write_token_file
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
from seqlab.data.types import LabelledTexts, Text, TextPairs, TimeSeries, split_indices

__all__ = [
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "CharTokenizer",
    "LabelledTexts",
    "PreprocessConfig",
    "Preprocessor",
    "SubwordTokenizer",
    "Text",
    "TextPairs",
    "TimeSeries",
    "TokenFile",
    "Tokenizer",
    "WordTokenizer",
    "builtin_corpus_path",
    "fill_missing",
    "load_tokenizer",
    "read_parallel",
    "read_series_csv",
    "read_table",
    "read_text",
    "read_text_corpus",
    "split_indices",
    "split_items",
    "split_series",
    "split_text",
    "train_tokenizer",
    "write_token_file",
]
