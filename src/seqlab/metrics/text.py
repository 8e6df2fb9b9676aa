"""Text-generation metrics: BLEU and chrF (sacrebleu), ROUGE (rouge-score), edit-distance rates.

Conventions:
    * ``hypotheses[i]`` is scored against ``references[i]``, which is one string or a list of
      alternative reference strings (BLEU / chrF / ROUGE accept several; the rates use one).
    * BLEU and chrF are corpus-level scores in [0, 100], computed by sacrebleu with its defaults
      (13a tokenisation, exponential smoothing); their ``signature`` is returned so results can be
      reported reproducibly. ROUGE F-measures are in [0, 1] as rouge-score returns them.
    * Error rates are corpus-level ratios Σ edits / Σ reference length (not a mean of per-sentence
      rates), so long references weigh more — the usual ASR / G2P convention.

``sacrebleu`` is a dependency of seqlab; ``rouge-score`` is optional and imported only by :func:`rouge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqlab.errors import ConfigError

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _check_pair(hyps: Any, refs: Any) -> None:
    """Same non-zero length for hypotheses and references."""
    if isinstance(hyps, str) or isinstance(refs, str):
        raise ConfigError("hypotheses and references must be lists of strings, got a single string")
    if len(hyps) != len(refs):
        raise ConfigError(
            f"hypotheses and references must have the same length, got {len(hyps)} and {len(refs)}"
        )
    if len(hyps) == 0:
        raise ConfigError("hypotheses and references are empty; a metric needs at least one example")


def _references_per_hypothesis(hypotheses: Sequence[str], references: Sequence[Any]) -> list[list[str]]:
    """``out[i]`` = the list of (≥ 1) reference strings of hypothesis ``i``; everything checked to be str."""
    _check_pair(hypotheses, references)
    per_hyp = [[r] if isinstance(r, str) else list(r) for r in references]
    for i, refs in enumerate(per_hyp):
        if not refs or not all(isinstance(r, str) for r in refs) or not isinstance(hypotheses[i], str):
            raise ConfigError(f"example {i}: expected a hypothesis string and ≥ 1 reference strings")
    return per_hyp


def _reference_streams(hypotheses: Sequence[str], references: Sequence[Any]) -> list[list[str]]:
    """sacrebleu's layout: ``streams[k][i]`` = k-th reference of hypothesis i (same count for all)."""
    per_hyp = _references_per_hypothesis(hypotheses, references)
    counts = sorted({len(r) for r in per_hyp})
    if len(counts) != 1:
        raise ConfigError(f"every hypothesis needs the same number of references, got counts {counts}")
    return [list(stream) for stream in zip(*per_hyp)]


def bleu(
    hypotheses: Sequence[str], references: Sequence[Any], *, tokenize: str = "13a", lowercase: bool = False
) -> dict:
    """Corpus BLEU (Papineni et al. 2002) via ``sacrebleu.corpus_bleu``.

    BLEU = BP · exp(Σ_{n=1..4} ¼ log p_n),   BP = min(1, exp(1 − r/c)),
    p_n = clipped n-gram matches / hypothesis n-grams over the corpus, c = hypothesis length,
    r = reference length (closest per sentence).

    Example: hypothesis "the cat sat on the mat" vs reference "the cat sat on a mat":
    p = 5/6, 3/5, 2/4, 1/3, BP = 1, BLEU = 100 · (5/6·3/5·2/4·1/3)^¼ = 53.73.

    Returns:
        ``{"score", "precisions" (4 floats, %), "brevity_penalty", "hyp_len", "ref_len", "signature"}``.
    """
    import sacrebleu

    streams = _reference_streams(hypotheses, references)
    metric = sacrebleu.metrics.BLEU(tokenize=tokenize, lowercase=lowercase)
    out = metric.corpus_score(list(hypotheses), streams)
    return {
        "score": float(out.score),
        "precisions": [float(p) for p in out.precisions],
        "brevity_penalty": float(out.bp),
        "hyp_len": int(out.sys_len),
        "ref_len": int(out.ref_len),
        "signature": str(metric.get_signature()),
    }


def chrf(hypotheses: Sequence[str], references: Sequence[Any], *, word_order: int = 0) -> dict:
    """Corpus chrF (Popović 2015) via ``sacrebleu.corpus_chrf``; ``word_order=2`` gives chrF++.

    chrF_β = (1 + β²) · chrP · chrR / (β² · chrP + chrR),  β = 2, with chrP / chrR the character
    n-gram (n = 1..6) precision / recall averaged over n, whitespace removed.

    Example: "the cat sat on the mat" vs "the cat sat on a mat" → chrF2 = 72.08.

    Returns:
        ``{"score", "signature"}``.
    """
    import sacrebleu

    streams = _reference_streams(hypotheses, references)
    metric = sacrebleu.metrics.CHRF(word_order=word_order)
    out = metric.corpus_score(list(hypotheses), streams)
    return {"score": float(out.score), "signature": str(metric.get_signature())}


def rouge(hypotheses: Sequence[str], references: Sequence[Any]) -> dict:
    """Mean ROUGE-1 / ROUGE-2 / ROUGE-L F-measure (Lin 2004) via ``rouge-score`` with Porter stemming.

    ROUGE-N: P = matched n-grams / hypothesis n-grams, R = matched / reference n-grams,
    F = 2PR/(P+R); ROUGE-L uses the longest common subsequence instead of n-gram matches.
    Per example the best score over its references is taken, then the mean over examples.

    Example: "the cats are running" vs "the cat runs fast" (stems: the cat ar run / the cat run fast)
    → rouge1 = 0.75, rouge2 = 1/3, rougeL = 0.75.

    Returns:
        ``{"rouge1", "rouge2", "rougeL"}`` in [0, 1].
    """
    try:
        from rouge_score import rouge_scorer
    except ImportError as e:
        raise ConfigError(
            "rouge needs the optional package rouge-score: pip install rouge-score==0.1.2"
        ) from e
    per_hyp = _references_per_hypothesis(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, refs in zip(hypotheses, per_hyp):
        scores = scorer.score_multi(refs, hyp) if len(refs) > 1 else scorer.score(refs[0], hyp)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    return {key: totals[key] / len(hypotheses) for key in ROUGE_TYPES}


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning ``a`` into ``b``.

    D[i][j] = min(D[i−1][j] + 1, D[i][j−1] + 1, D[i−1][j−1] + [a_i ≠ b_j]),  D[i][0] = i, D[0][j] = j.
    Computed with two rows: O(|a|·|b|) time, O(|b|) memory. Works on strings (characters) and on
    any sequences of hashable tokens (words, phonemes, ids).

    Example: ``edit_distance("kitten", "sitting")`` = 3 (k→s, e→i, +g).
    """
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def _tokens(x: Any, unit: str) -> list:
    """Split one hypothesis / reference into units: words or phonemes (whitespace) or characters."""
    if isinstance(x, str):
        return list(x) if unit == "char" else x.split()
    if unit == "char":
        raise ConfigError("character_error_rate needs strings, got a token sequence")
    return list(x)


def _error_rate(hypotheses: Sequence[Any], references: Sequence[Any], unit: str) -> float:
    """Σ_i edit_distance(hyp_i, ref_i) / Σ_i |ref_i| over the given units."""
    _check_pair(hypotheses, references)
    edits = total = 0
    for h, r in zip(hypotheses, references):
        ref = _tokens(r, unit)
        edits += edit_distance(_tokens(h, unit), ref)
        total += len(ref)
    if total == 0:
        raise ConfigError("all references are empty; an error rate divides by the reference length")
    return edits / total


def word_error_rate(hypotheses: Sequence[Any], references: Sequence[Any]) -> float:
    """Word error rate: WER = Σ_i edit_distance(words(h_i), words(r_i)) / Σ_i |words(r_i)|.

    Strings are split on whitespace; token lists are used as they are. WER can exceed 1 when the
    hypotheses insert many words. Note: G2P papers call "WER" the fraction of words whose whole
    pronunciation is wrong — that is ``1 − exact_match(hyps, refs)``, not this function.

    Example: hyp "the cat sat on mat", ref "the cat sat on the mat" → 1 deletion / 6 words = 1/6;
    hyp "a cat sat" vs ref "the cat sat" plus hyp "hello" vs ref "hi there" → (1 + 2) / (3 + 2) = 0.6.
    """
    return _error_rate(hypotheses, references, "word")


def phoneme_error_rate(hypotheses: Sequence[Any], references: Sequence[Any]) -> float:
    """Phoneme error rate (G2P): PER = Σ_i edit_distance(h_i, r_i) / Σ_i |r_i| over phonemes.

    Pronunciations are space-separated phoneme strings (``"K AE1 T"``) or lists of phonemes.

    Example: hyp "K AE1 T S", ref "K AE1 T" → 1 insertion / 3 phonemes = 1/3.
    """
    return _error_rate(hypotheses, references, "phoneme")


def character_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Character error rate: CER = Σ_i edit_distance(chars(h_i), chars(r_i)) / Σ_i |r_i| (spaces count).

    Example: hyp "kitten", ref "sitting" → 3 / 7.
    """
    return _error_rate(hypotheses, references, "char")


def exact_match(hypotheses: Sequence[Any], references: Sequence[Any]) -> float:
    """Fraction of hypotheses equal to their reference: EM = (1/N) Σ_i [tokens(h_i) = tokens(r_i)].

    Strings are compared as whitespace-split token lists, so spacing differences do not count
    ("K  AE1 T" matches "K AE1 T"); case and punctuation do. For G2P, 1 − EM is the word error rate
    reported in the literature.

    Example: hyps ["K AE1 T", "D AO1 G"], refs ["K AE1 T", "D AA1 G"] → 0.5.
    """
    _check_pair(hypotheses, references)
    hits = sum(_tokens(h, "word") == _tokens(r, "word") for h, r in zip(hypotheses, references))
    return hits / len(hypotheses)
