"""N-gram language models over token ids: the baseline every LM's bits per character is read against.

Shape legend: N tokens · V vocabulary · M scored n-grams · n model order.

A model of order n predicts token w_t from the n − 1 tokens before it, h = w_{t−n+1..t−1}.
Counts come from the **training split's** ids only; every token of the vocabulary gets a
non-zero probability, so the cross-entropy of any held-out text is finite.

**Order 1 — add-k (Lidstone; k = 1 is Laplace)**, with c(w) the training count of w and
N = Σ_w c(w)::

    P₁(w) = (c(w) + k) / (N + k·V)

**Order n ≥ 2 — interpolated Kneser–Ney** (Kneser & Ney 1995; the recursion of Chen & Goodman
1998, eq. 13 with one discount per order)::

    P_j(w | h) = max(c_j(h w) − D_j, 0) / c_j(h)  +  D_j · N₁₊(h •) / c_j(h) · P_{j−1}(w | h′)
    P_j(w | h) = P_{j−1}(w | h′)                       when c_j(h) = Σ_w c_j(h w) = 0

where h′ is h without its first token, N₁₊(h •) = #{w : c_j(h w) > 0} (the distinct tokens seen
after h) and the counts c_j are

- the raw training counts at the highest order j = n;
- the **continuation counts** N₁₊(• g) = #{v : c(v g) > 0} (in how many distinct contexts the
  j-gram g appears) at every lower order j < n, unigram included — "Francisco" is frequent but
  follows only "San", so it is an unlikely continuation of a new context.

The bottom of the recursion is P₁ above with c = c₁ (add-k over continuation counts), so an
unseen token keeps probability ≥ k / (N + k·V) · Π_j λ_j > 0. The discounts are Ney, Essen &
Kneser's (1994) estimate D_j = n₁ / (n₁ + 2·n₂) from the number n_r of j-grams with count r
(0.5 when there is no singleton, n₁ = 0, so that unseen continuations keep mass); 0 < D_j ≤ 1.
Each P_j(· | h) sums to 1 over the vocabulary: Σ_w max(c − D, 0) = c(h) − D·N₁₊(h •), plus
D·N₁₊(h •)·Σ_w P_{j−1} / c(h). At the start of a sequence a position with fewer than n − 1 earlier
tokens is scored by the highest order its history allows.

Worked example (the test asserts it): training ids ``a b a b a c`` with V = 4 (a b c d), k = 1.
Bigram counts c(ab) = 2, c(ba) = 2, c(ac) = 1: n₁ = 1, n₂ = 2, D = 1/5. Continuation counts
a: 1 (after b), b: 1, c: 1, d: 0 (sum 3), so P₁ = (2, 2, 2, 1) / 7. Context a: c(a) = 3,
N₁₊(a •) = 2::

    P(b | a) = (2 − 0.2)/3 + 0.2·2/3 · 2/7 = 0.6 + 0.8/21 ≈ 0.63810
    P(d | a) = 0.2·2/3 · 1/7 = 0.4/21 ≈ 0.01905

**Bits per character**, as :class:`~seqlab.tasks.charlm.CharLMTask` reports ``val_bpc``: the
first token of the evaluated ids is context only; tokens 1..N−1 are scored and
``bpc = Σ nats / ln 2 / (end of token N−1 − end of token 0)`` in characters of the original
text (:func:`seqlab.tasks.charlm.token_ends` gives the ends), so a char model and a subword model
compare fairly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from seqlab.errors import ConfigError

__all__ = ["NGramLM", "bits_per_character", "ngram_bpc"]

NO_SINGLETON_DISCOUNT = 0.5  # D_j when no j-gram occurs exactly once (n₁ = 0)


def _codes(grams: np.ndarray, V: int) -> np.ndarray:
    """Integer codes Σ_i g_i · V^(j−1−i) of j-grams (M, j) -> (M,) int64 (order-preserving)."""
    code = np.zeros(len(grams), dtype=np.int64)
    for i in range(grams.shape[1]):  # j ≤ n columns, each a vectorised pass over M rows
        code = code * V + grams[:, i]
    return code


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query (keys sorted, unique), 0 where the query is absent."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=values.dtype)
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[pos] == queries, values[pos], 0)


def _discount(counts: np.ndarray) -> float:
    """Ney et al.'s D = n₁ / (n₁ + 2·n₂) from counts of distinct j-grams (0.5 without singletons)."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 > 0 else NO_SINGLETON_DISCOUNT


class NGramLM:
    """Order-n language model over ids 0..V−1: add-k unigram, interpolated Kneser–Ney above.

    Args:
        order: n ≥ 1 (1 = unigram, 2 = bigram, ...).
        vocab_size: V; every id in ``fit`` / scoring must lie in [0, V).
        k: the add-k pseudo-count of the unigram level (1 = Laplace), > 0.

    Example::

        >>> lm = NGramLM(2, vocab_size=4).fit([0, 1, 0, 1, 0, 2])
        >>> round(float(lm.probs([0])[1]), 5)   # P(b | a) of the module's worked example
        0.6381
    """

    def __init__(self, order: int, vocab_size: int, k: float = 1.0) -> None:
        if order < 1:
            raise ConfigError(f"order: expected an n-gram order ≥ 1, got {order}")
        if vocab_size < 1:
            raise ConfigError(f"vocab_size: expected ≥ 1, got {vocab_size}")
        if not k > 0:
            raise ConfigError(f"k: the add-k pseudo-count must be > 0 (else unseen tokens get 0), got {k}")
        if order * math.log2(vocab_size) >= 62:
            raise ConfigError(
                f"order {order} with V = {vocab_size}: n-gram codes overflow int64; lower the order"
            )
        self.order, self.V, self.k = order, vocab_size, float(k)
        self.unigram: np.ndarray | None = None  # (V,) P₁
        # per order j ≥ 2: sorted j-gram codes, their counts c_j, sorted context codes, c_j(h), N₁₊(h •)
        self.levels: dict[int, tuple[np.ndarray, ...]] = {}
        self.discounts: dict[int, float] = {}

    def fit(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> NGramLM:
        """Count the training ids (N,) and set the per-order tables; returns ``self``."""
        x = _as_ids(ids, self.V)
        n, V = self.order, self.V
        # 1. raw counts of the highest order; continuation counts N₁₊(• g) below it
        grams = np.unique(_codes(_windows(x, n), V), return_counts=True) if len(x) >= n else _empty()
        for j in range(n, 0, -1):
            codes, counts = grams
            if j == 1:
                c1 = np.bincount(codes, weights=counts, minlength=V)  # (V,)
                self.unigram = (c1 + self.k) / (c1.sum() + self.k * V)
                break
            # 2. context totals c_j(h) and follower types N₁₊(h •) of order j
            ctx, inverse = np.unique(codes // V, return_inverse=True)
            total = np.bincount(inverse, weights=counts)
            types = np.bincount(inverse).astype(np.float64)
            self.discounts[j] = _discount(counts)
            self.levels[j] = (codes, counts.astype(np.float64), ctx, total, types)
            # 3. the (j−1)-gram suffixes of the distinct j-grams: continuation counts of order j−1
            grams = np.unique(codes % V ** (j - 1), return_counts=True)
        return self

    def _prob(self, grams: np.ndarray) -> np.ndarray:
        """P(last column | the columns before it) for n-grams (M, n); −1 marks "before the start"."""
        if self.unigram is None:
            raise ConfigError("NGramLM: call fit(train_ids) before scoring")
        V = self.V
        p = self.unigram[grams[:, -1]]  # (M,) P₁
        for j in range(2, self.order + 1):
            codes, counts, ctx, total, types = self.levels[j]
            D = self.discounts[j]
            cols = grams[:, -j:]
            ok = (cols >= 0).all(axis=1)  # (M,) rows with j − 1 tokens of history
            code = _codes(cols[ok], V)
            c_hw = _lookup(codes, counts, code)
            c_h = _lookup(ctx, total, code // V)
            n_h = _lookup(ctx, types, code // V)
            seen = c_h > 0
            safe = np.where(seen, c_h, 1.0)
            interp = np.maximum(c_hw - D, 0) / safe + D * n_h / safe * p[ok]
            p[ok] = np.where(seen, interp, p[ok])
        return p

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """The distribution (V,) of the next token after ``context`` (its last n − 1 ids count)."""
        h = list(context)[-(self.order - 1) :] if self.order > 1 else []
        h = [-1] * (self.order - 1 - len(h)) + h
        grams = np.concatenate(
            [np.tile(np.array(h, dtype=np.int64), (self.V, 1)), np.arange(self.V)[:, None]], 1
        )
        return self._prob(grams)  # (V,)

    def token_nats(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
        """−ln P(w_t | history) for t = 1..N−1 (N − 1,): token 0 is context only."""
        x = _as_ids(ids, self.V)
        padded = np.concatenate([np.full(self.order - 1, -1, dtype=np.int64), x])
        grams = np.lib.stride_tricks.sliding_window_view(padded, self.order)[1:]  # (N − 1, n)
        return -np.log(self._prob(grams))

    def cross_entropy(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> float:
        """Mean nats per scored token (tokens 1..N−1); perplexity = exp(cross_entropy)."""
        nats = self.token_nats(ids)
        if len(nats) == 0:
            raise ConfigError("cross_entropy: need at least 2 ids (token 0 is context only)")
        return float(nats.mean())

    def perplexity(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> float:
        return math.exp(self.cross_entropy(ids))


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


def _as_ids(ids: Any, V: int) -> np.ndarray:
    x = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    x = x.astype(np.int64, copy=False).reshape(-1)
    if len(x) and (x.min() < 0 or x.max() >= V):
        raise ConfigError(f"token ids must lie in [0, {V}), got {int(x.min())}..{int(x.max())}")
    return x


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """All n-grams (N − n + 1, n) of ids (N,), as a strided view (no copy)."""
    return np.lib.stride_tricks.sliding_window_view(x, n)


def bits_per_character(total_nats: float, chars: int) -> float:
    """Σ nats / ln 2 / characters (at least one character, as in charlm)."""
    return total_nats / math.log(2) / max(int(chars), 1)


def ngram_bpc(
    train_ids: Any,
    eval_ids: Any,
    ends: torch.Tensor,
    vocab_size: int,
    orders: Sequence[int] = (1, 2),
    k: float = 1.0,
) -> dict[int, dict[str, float]]:
    """Fit one :class:`NGramLM` per order on ``train_ids`` and score ``eval_ids`` (N,).

    ``ends`` (≥ N,) are the character ends of ``eval_ids`` (charlm's ``token_ends``); tokens 1..N−1 are
    scored and cover characters ``ends[N−1] − ends[0]``, as in charlm's ``val_bpc``.

    Returns:
        ``{order: {"loss": nats per token, "ppl", "bpc", "tokens": N − 1, "chars"}}``.
    """
    N = len(eval_ids)
    chars = max(int(ends[N - 1] - ends[0]), 1)
    out = {}
    for n in orders:
        nats = NGramLM(n, vocab_size, k).fit(train_ids).token_nats(eval_ids)
        loss = float(nats.mean())
        bpc = bits_per_character(float(nats.sum()), chars)
        out[n] = {"loss": loss, "ppl": math.exp(loss), "bpc": bpc, "tokens": N - 1, "chars": chars}
    return out
