"""N-gram LM baselines: hand-worked numbers, a plain-loop Kneser–Ney reference, and charlm's bpc."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from seqlab.errors import ConfigError
from seqlab.evaluation.lm_baselines import NGramLM, bits_per_character, ngram_bpc

A, B, C, D = 0, 1, 2, 3
CORPUS = [A, B, A, B, A, C]  # the module docstring's worked example, V = 4 (d never occurs)


def test_unigram_add_k_by_hand():
    # counts a 3, b 2, c 1, d 0; N = 6, V = 4
    # k = 1:   (c + 1) / (6 + 4)   = 4/10, 3/10, 2/10, 1/10
    # k = 0.5: (c + .5) / (6 + 2)  = 3.5/8, 2.5/8, 1.5/8, 0.5/8
    assert NGramLM(1, 4).fit(CORPUS).probs([]) == pytest.approx([0.4, 0.3, 0.2, 0.1], abs=1e-12)
    assert NGramLM(1, 4, k=0.5).fit(CORPUS).probs([C]) == pytest.approx(
        [3.5 / 8, 2.5 / 8, 1.5 / 8, 0.5 / 8], abs=1e-12
    )


def test_kneser_ney_bigram_by_hand():
    # bigrams ab 2, ba 2, ac 1 -> n1 = 1, n2 = 2, D = 1 / (1 + 2·2) = 0.2
    # continuation counts N1+(• w): a 1 (after b), b 1 (after a), c 1 (after a), d 0; sum 3
    #   P1 = (1+1, 1+1, 1+1, 0+1) / (3 + 4) = (2, 2, 2, 1) / 7
    # context a: c(a) = 3, N1+(a •) = 2 -> weight of P1 = 0.2 · 2 / 3 = 0.4/3
    #   P(a|a) = 0.4/3 · 2/7 = 0.8/21          P(b|a) = (2 − .2)/3 + 0.8/21 = 0.6 + 0.8/21
    #   P(c|a) = (1 − .2)/3 + 0.8/21           P(d|a) = 0.4/3 · 1/7 = 0.4/21
    # context b: c(b) = 2, N1+(b •) = 1 -> weight 0.2 · 1 / 2 = 0.1
    #   P(a|b) = 1.8/2 + 0.1·2/7 = 0.9 + 0.2/7   P(b|b) = P(c|b) = 0.2/7   P(d|b) = 0.1/7
    # contexts c, d never precede anything: P(w|c) = P(w|d) = P1
    lm = NGramLM(2, 4).fit(CORPUS)
    assert lm.discounts == {2: pytest.approx(0.2)}
    assert lm.probs([A]) == pytest.approx([0.8 / 21, 0.6 + 0.8 / 21, 0.8 / 3 + 0.8 / 21, 0.4 / 21], abs=1e-12)
    assert lm.probs([B]) == pytest.approx([0.9 + 0.2 / 7, 0.2 / 7, 0.2 / 7, 0.1 / 7], abs=1e-12)
    for h in (C, D):
        assert lm.probs([h]) == pytest.approx([2 / 7, 2 / 7, 2 / 7, 1 / 7], abs=1e-12)
    # held-out "a b a c": token 0 is context; scored P(b|a) P(a|b) P(c|a)
    expected = -np.log([0.6 + 0.8 / 21, 0.9 + 0.2 / 7, 0.8 / 3 + 0.8 / 21])
    assert lm.token_nats([A, B, A, C]) == pytest.approx(expected, abs=1e-12)
    assert lm.cross_entropy([A, B, A, C]) == pytest.approx(expected.mean(), abs=1e-12)
    assert lm.perplexity([A, B, A, C]) == pytest.approx(math.exp(expected.mean()), abs=1e-12)
    # the unigram scores the same tokens b, a, c: 0.3, 0.4, 0.2
    uni = NGramLM(1, 4).fit(CORPUS)
    assert uni.token_nats([A, B, A, C]) == pytest.approx(-np.log([0.3, 0.4, 0.2]), abs=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_is_a_distribution_with_no_zero(order):
    V = 7  # ids 5 and 6 never occur in training
    ids = torch.randint(0, 5, (400,), generator=torch.Generator().manual_seed(order))
    lm = NGramLM(order, V).fit(ids)
    for context in itertools.product(range(V), repeat=order - 1):  # seen and unseen histories
        p = lm.probs(list(context))
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p > 0).all()
    assert lm.probs([])[5:].min() > 0  # sequence start (no history) too


def _reference_kn(train: list[int], order: int, V: int, k: float = 1.0):
    """Interpolated Kneser–Ney written as plain loops over dicts (the module docstring's equations)."""
    raw = Counter(tuple(train[i : i + order]) for i in range(len(train) - order + 1))
    counts = {order: raw}
    for j in range(order - 1, 0, -1):  # continuation counts from the distinct (j+1)-grams
        counts[j] = Counter(g[1:] for g in counts[j + 1])
    discount = {}
    for j in range(2, order + 1):
        n1 = sum(1 for c in counts[j].values() if c == 1)
        n2 = sum(1 for c in counts[j].values() if c == 2)
        discount[j] = n1 / (n1 + 2 * n2) if n1 else 0.5

    def prob(history: tuple[int, ...], w: int) -> float:
        j = len(history) + 1
        if j == 1:
            total = sum(counts[1].values())
            return (counts[1].get((w,), 0) + k) / (total + k * V)
        lower = prob(history[1:], w)
        c_h = sum(c for g, c in counts[j].items() if g[:-1] == history)
        if c_h == 0:
            return lower
        n_h = sum(1 for g in counts[j] if g[:-1] == history)
        Dj = discount[j]
        return max(counts[j].get((*history, w), 0) - Dj, 0) / c_h + Dj * n_h / c_h * lower

    return prob


@pytest.mark.parametrize("order", [2, 3])
def test_matches_a_plain_loop_reference(order):
    g = torch.Generator().manual_seed(10 + order)
    V = 6
    train = torch.randint(0, V - 1, (300,), generator=g).tolist()
    held = torch.randint(0, V, (40,), generator=g).tolist()  # contains the unseen id 5
    prob = _reference_kn(train, order, V)
    expected = [-math.log(prob(tuple(held[max(0, t - order + 1) : t]), held[t])) for t in range(1, len(held))]
    assert NGramLM(order, V).fit(train).token_nats(held) == pytest.approx(expected, abs=1e-12)


def test_bigram_beats_unigram_on_a_markov_chain_and_reaches_its_entropy_rate():
    # chain on 4 states: after s comes s+1 (mod 4) with p 0.9, else any other state (p 1/30 each)
    V, g = 4, torch.Generator().manual_seed(0)
    P = torch.full((V, V), 0.1 / 3)
    P[torch.arange(V), (torch.arange(V) + 1) % V] = 0.9

    def sample(n: int) -> torch.Tensor:
        x, s = torch.empty(n, dtype=torch.long), 0
        draws = torch.rand(n, generator=g)
        cum = P.cumsum(1)
        for t in range(n):
            s = min(int(torch.searchsorted(cum[s], draws[t])), V - 1)
            x[t] = s
        return x

    train, held = sample(20000), sample(5000)
    # the stationary distribution is uniform: the unigram cannot beat ln 4 = 1.386 nats
    rate = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1 / 3))  # entropy rate 0.435 nats / token
    uni = NGramLM(1, V).fit(train).cross_entropy(held)
    bi = NGramLM(2, V).fit(train).cross_entropy(held)
    assert uni == pytest.approx(math.log(4), abs=0.01)
    assert bi == pytest.approx(rate, abs=0.02)
    assert bi < uni - 0.9


def test_bits_per_character_counts_the_characters_of_the_scored_tokens():
    # "subword" ids over a 4-token vocabulary, each token 2 characters: ends 2, 4, 6, 8
    ends = torch.tensor([2, 4, 6, 8])
    out = ngram_bpc(CORPUS, [A, B, A, C], ends, 4, orders=(1, 2))
    nats = -np.log([0.6 + 0.8 / 21, 0.9 + 0.2 / 7, 0.8 / 3 + 0.8 / 21]).sum()
    # tokens 1..3 are scored and cover characters 2..8: 6 characters
    assert out[2]["chars"] == 6 and out[2]["tokens"] == 3
    assert out[2]["bpc"] == pytest.approx(nats / math.log(2) / 6, abs=1e-12)
    assert out[2]["loss"] == pytest.approx(nats / 3, abs=1e-12)
    assert out[1]["bpc"] == pytest.approx(-np.log([0.3, 0.4, 0.2]).sum() / math.log(2) / 6, abs=1e-12)
    # one character per token: bpc = nats per token / ln 2
    chars = ngram_bpc(CORPUS, [A, B, A, C], torch.tensor([1, 2, 3, 4]), 4, orders=(2,))[2]
    assert chars["bpc"] == pytest.approx(chars["loss"] / math.log(2), abs=1e-12)
    assert bits_per_character(math.log(2) * 10, 5) == pytest.approx(2.0)


def test_charlm_reports_the_baselines_on_its_own_windows(tmp_path):
    """A model whose logits are the bigram's log-probabilities gets val_bpc == val_bpc_bigram."""
    from seqlab.tasks.charlm import CharLMTask

    rng = np.random.default_rng(0)
    words = ["the ", "king ", "and ", "queen ", "of ", "denmark ", "to ", "be ", "\n"]
    text = "".join(rng.choice(words, size=3000))
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    task = CharLMTask({"text": str(path), "seq_len": 32, "eval_windows": 20, "ngram_baseline": True})
    V = task.tokenizer.vocab_size
    bigram = NGramLM(2, V).fit(task.train_data)
    table = torch.tensor(np.log(np.stack([bigram.probs([h]) for h in range(V)])), dtype=torch.float32)

    metrics = task.evaluate(lambda batch: table[batch.inputs], batch_size=8)  # (B, T, V) logits
    assert metrics["val_bpc"] == pytest.approx(metrics["val_bpc_bigram"], rel=1e-5)
    assert metrics["val_bpc_bigram"] < metrics["val_bpc_unigram"]
    # the same ids through ngram_bpc: the first 20 · 32 + 1 held-out characters
    direct = ngram_bpc(task.train_data, task.val_data[: 20 * 32 + 1], task.val_ends, V)
    assert metrics["val_bpc_unigram"] == pytest.approx(direct[1]["bpc"], abs=1e-12)
    assert "val_bpc_bigram" not in CharLMTask({"text": str(path), "seq_len": 32}).evaluate(
        lambda batch: table[batch.inputs], batch_size=8
    )


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="order"):
        NGramLM(0, 4)
    with pytest.raises(ConfigError, match="add-k"):
        NGramLM(1, 4, k=0)
    with pytest.raises(ConfigError, match=r"\[0, 4\)"):
        NGramLM(2, 4).fit([0, 1, 4])
    with pytest.raises(ConfigError, match="fit"):
        NGramLM(2, 4).probs([0])
    with pytest.raises(ConfigError, match="overflow"):
        NGramLM(5, 50_000)
