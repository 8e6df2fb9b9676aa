"""Memory-mapped token files: round trip, chunked streaming, uint32, atomic writes, windows, rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqlab.data import CharTokenizer
from seqlab.data.tokenfile import TokenFile, sidecar_path, token_dtype, write_token_file
from seqlab.errors import ConfigError

TEXT = "".join(f"To be, or not to be {i}: that is the question.\n" for i in range(40))  # 1,830 chars


class CountingTokenizer:
    """Wraps a tokenizer and records every text it encodes."""

    def __init__(self, inner) -> None:
        self.inner, self.texts = inner, []
        self.vocab_size = inner.vocab_size

    def encode(self, text: str) -> list[int]:
        self.texts.append(text)
        return self.inner.encode(text)

    def chunked_at_newlines(self) -> bool:
        return all(t.endswith("\n") for t in self.texts[:-1])


class WideTokenizer:
    """A word-level tokenizer with ids beyond 65,535 (so the file needs uint32)."""

    vocab_size = 70_000

    def encode(self, text: str) -> list[int]:
        return [69_990 + len(word) % 10 for word in text.split()]


class FailingTokenizer:
    """Fails on its second call: a write interrupted half-way."""

    def __init__(self, inner) -> None:
        self.inner, self.vocab_size, self.calls = inner, inner.vocab_size, 0

    def encode(self, text: str) -> list[int]:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("interrupted")
        return self.inner.encode(text)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path, CharTokenizer.from_text(TEXT)


def test_round_trip_equals_encode(corpus, tmp_path):
    path, tok = corpus
    meta = write_token_file(path, tok, tmp_path / "train.bin")
    assert meta["dtype"] == "uint16" and meta["count"] == len(TEXT) and meta["vocab_size"] == tok.vocab_size
    assert (tmp_path / "train.bin").stat().st_size == 2 * len(TEXT)
    on_disk = json.loads(sidecar_path(tmp_path / "train.bin").read_text())
    assert on_disk == meta and on_disk["source"] == str(path)
    tokens = TokenFile(tmp_path / "train.bin")
    assert isinstance(tokens.data, np.memmap) and not tokens.data.flags.writeable
    assert len(tokens) == len(TEXT)
    assert tokens[:].dtype == torch.int64 and tokens[:].tolist() == tok.encode(TEXT)
    assert tokens[5:9].tolist() == tok.encode(TEXT[5:9]) and int(tokens[3]) == tok.encode(TEXT[3])[0]
    tokens.verify()


def test_chunks_stream_at_newlines_with_the_same_result(corpus, tmp_path):
    path, tok = corpus
    counting = CountingTokenizer(tok)
    write_token_file(path, counting, tmp_path / "a.bin", chunk_size=200)
    sizes = [len(t) for t in counting.texts]
    assert len(sizes) >= 7 and max(sizes) < 260 and counting.chunked_at_newlines()  # never the whole corpus
    assert TokenFile(tmp_path / "a.bin")[:].tolist() == tok.encode(TEXT)
    pieces = CountingTokenizer(tok)  # in-memory pieces (here: the lines) join as given
    meta = write_token_file(TEXT.splitlines(keepends=True), pieces, tmp_path / "b.bin", chunk_size=200)
    assert len(pieces.texts) >= 7 and pieces.chunked_at_newlines() and meta["source"] == "<text>"
    assert TokenFile(tmp_path / "b.bin")[:].tolist() == tok.encode(TEXT)
    assert meta["sha256"] == TokenFile(tmp_path / "a.bin").meta["sha256"]


def test_a_line_longer_than_a_chunk_stays_whole(tmp_path):
    text = "x" * 500 + "\nshort\n" + "y" * 300
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    tok = CountingTokenizer(CharTokenizer.from_text(text))
    write_token_file(path, tok, tmp_path / "long.bin", chunk_size=64)
    assert "x" * 500 + "\n" in tok.texts[0] and tok.chunked_at_newlines() and "".join(tok.texts) == text
    assert TokenFile(tmp_path / "long.bin")[:].tolist() == tok.inner.encode(text)


def test_uint32_when_the_vocabulary_is_larger_than_uint16(tmp_path):
    assert token_dtype(65_536) == "uint16" and token_dtype(65_537) == "uint32"
    meta = write_token_file(["one three fifteen\n", "a b\n"], WideTokenizer(), tmp_path / "w.bin")
    assert meta["dtype"] == "uint32" and meta["count"] == 5
    assert (tmp_path / "w.bin").stat().st_size == 4 * 5
    assert TokenFile(tmp_path / "w.bin")[:].tolist() == [69_993, 69_995, 69_997, 69_991, 69_991]


def test_interrupted_write_leaves_nothing_or_the_old_file(corpus, tmp_path):
    path, tok = corpus
    out = tmp_path / "t.bin"
    with pytest.raises(RuntimeError, match="interrupted"):
        write_token_file(path, FailingTokenizer(tok), out, chunk_size=200)
    assert list(tmp_path.iterdir()) == [path]  # no token file, no sidecar, no temp file
    good = write_token_file(path, tok, out)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_token_file(path, FailingTokenizer(tok), out, chunk_size=200)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "t.bin", "t.bin.json"]
    kept = TokenFile(out)
    assert kept.meta == good and kept[:].tolist() == tok.encode(TEXT)
    kept.verify()


def test_bad_inputs_are_clear_errors(tmp_path):
    tok = CharTokenizer.from_text("ab\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ab\nab\na\xffb\n")
    with pytest.raises(ConfigError, match=r"bad\.txt:3:2: not valid UTF-8"):
        write_token_file(bad, tok, tmp_path / "bad.bin", chunk_size=4)
    with pytest.raises(ConfigError, match="no tokens"):
        write_token_file([""], tok, tmp_path / "empty.bin")
    with pytest.raises(ConfigError, match=r"id 69991, outside \[0, vocab_size=3\)"):
        write_token_file(["a b\n"], WideTokenizer(), tmp_path / "x.bin", vocab_size=3)
    with pytest.raises(ConfigError, match="no such file"):
        write_token_file(tmp_path / "missing.txt", tok, tmp_path / "m.bin")
    assert not list(tmp_path.glob("*.bin*"))


def test_opening_checks_the_sidecar_and_the_size(corpus, tmp_path):
    path, tok = corpus
    out = tmp_path / "t.bin"
    write_token_file(path, tok, out)
    with open(out, "r+b") as f:
        f.truncate(100)
    with pytest.raises(ConfigError, match=r"100 bytes, but its sidecar says 1830 uint16 ids = 3660 bytes"):
        TokenFile(out)
    sidecar_path(out).unlink()
    with pytest.raises(ConfigError, match="missing sidecar"):
        TokenFile(out)
    sidecar_path(out).write_text('{"format": "seqlab-tokens", "dtype": "int8", "count": 1}')
    with pytest.raises(ConfigError, match="dtype: expected one of"):
        TokenFile(out)
    write_token_file(path, tok, out)
    with open(out, "r+b") as f:
        f.write(b"\x01\x00")  # same size, different content
    with pytest.raises(ConfigError, match="SHA-256 differs"):
        TokenFile(out).verify()


def test_random_windows_are_seeded_next_token_pairs(corpus, tmp_path):
    path, tok = corpus
    write_token_file(path, tok, tmp_path / "t.bin")
    tokens, ids = TokenFile(tmp_path / "t.bin"), torch.tensor(tok.encode(TEXT))
    x, y = tokens.random_windows(4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y):  # each window is a real stretch of the corpus
        starts = [s for s in range(len(ids) - 16) if torch.equal(ids[s : s + 16], row_x)]
        assert any(torch.equal(ids[s + 1 : s + 17], row_y) for s in starts)
    x2, _ = tokens.random_windows(4, 16, torch.Generator().manual_seed(0))
    x3, _ = tokens.random_windows(4, 16, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    with pytest.raises(ConfigError, match="too few"):
        tokens.random_windows(1, len(TEXT), torch.Generator())


def test_stream_rows_match_the_tbptt_layout(corpus, tmp_path):
    path, tok = corpus
    write_token_file(path, tok, tmp_path / "t.bin")
    tokens, ids = TokenFile(tmp_path / "t.bin"), torch.tensor(tok.encode(TEXT))
    B = 3
    L = tokens.stream_rows(B)
    assert (len(TEXT) - 1) // B == L
    inputs, targets = ids[:-1], ids[1:]
    rows_x = torch.cat([tokens.stream_batch(B, s, 10)[0] for s in range(0, L - 10 + 1, 10)], dim=1)
    rows_y = torch.cat([tokens.stream_batch(B, s, 10)[1] for s in range(0, L - 10 + 1, 10)], dim=1)
    width = rows_x.shape[1]
    for b in range(B):  # row b holds steps [b·L, (b+1)·L): consecutive windows continue each other
        assert torch.equal(rows_x[b], inputs[b * L : b * L + width])
        assert torch.equal(rows_y[b], targets[b * L : b * L + width])
    with pytest.raises(ConfigError, match="outside the rows"):
        tokens.stream_batch(B, L - 5, 10)
    with pytest.raises(ConfigError, match="too few"):
        tokens.stream_rows(len(TEXT))


def test_multibyte_characters_cut_by_blocks_decode_whole(tmp_path):
    text = "café — naïve\nüber\n" * 5 + "Ω"
    path = tmp_path / "u.txt"
    path.write_bytes(("\ufeff" + text).encode("utf-8"))  # with a byte-order mark, dropped
    tok = CharTokenizer.from_text(text)
    write_token_file(path, tok, tmp_path / "u.bin", chunk_size=3)  # blocks split characters
    assert TokenFile(tmp_path / "u.bin")[:].tolist() == tok.encode(text)
