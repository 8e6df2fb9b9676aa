"""Classification baselines every text-classification result should be compared with.

- **majority class**: always predict the most frequent training label. Its accuracy is the
  share of that label in the evaluated split (≈ 0.50 on the balanced ``movie-reviews``); its
  macro F1 is at most ``1 / C · 2p / (1 + p)`` — the floor any learnt model must clear.
- **bag of n-grams + logistic regression** (scikit-learn): TF-IDF weights of word 1- and
  2-grams (sublinear term frequency, ``1 + log tf``; punctuation marks kept as tokens, since
  "!" carries sentiment), then an L2-regularised logistic regression
  ``min_w ½‖w‖² + C Σ_i log(1 + exp(−y_i wᵀx_i))``. The inverse regularisation ``C`` is chosen on
  the **validation** split (best accuracy, ties to the smaller C); the test split is scored once,
  with that C. The vectoriser's vocabulary and IDF come from the training split only.

Both return the metric dict of :class:`~seqlab.tasks.classify.ClassifyTask` (``val_acc``,
``val_f1``, ``val_precision``, ``val_recall`` and ``test_*`` where the split exists), so a
model's ``final_metrics.json`` and a baseline line up key by key::

    >>> from seqlab.data.datasets import load_dataset
    >>> result = classification_baselines(load_dataset("movie-reviews"))  # doctest: +SKIP
    >>> round(result["majority"]["test_acc"], 3), result["logreg"]["C"]  # doctest: +SKIP
    (0.504, 8.0)
    >>> round(result["logreg"]["test_acc"], 3)  # doctest: +SKIP
    0.795

Published references for the original MR sentence-polarity data (10-fold cross-validation,
Kim 2014): NBSVM-bi 79.4 %, CNN-rand 76.1 %, CNN-static 81.0 %. ``movie-reviews`` here takes its
labels from crowd valence ratings (see its data card), so those numbers are context, not targets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seqlab.data.types import LabelledTexts
from seqlab.errors import ConfigError
from seqlab.tasks.classify import score_predictions

__all__ = [
    "DEFAULT_CS",
    "NgramLogreg",
    "classification_baselines",
    "fit_ngram_logreg",
    "majority_baseline",
    "ngram_logreg_baseline",
]

DEFAULT_CS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # the grid of C searched on validation
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"  # words (one letter too) and single punctuation marks
EVALUATED = (("validation", "val"), ("test", "test"))


def _check_splits(splits: Mapping[str, Any]) -> dict[str, LabelledTexts]:
    """The train / validation (/ test) LabelledTexts of ``splits``, or a ConfigError naming the problem."""
    parts = {k: splits[k] for k in ("train", "validation", "test") if k in splits}
    if not all(isinstance(parts.get(k), LabelledTexts) for k in ("train", "validation")):
        raise ConfigError(
            "baselines: expected LabelledTexts train and validation splits, got "
            + ", ".join(f"{k}: {type(v).__name__}" for k, v in splits.items())
        )
    return parts


def _score(parts: dict[str, LabelledTexts], predict) -> dict[str, float]:
    """Metrics of ``predict(texts) -> labels`` on the validation and test splits."""
    C = len(parts["train"].label_names)
    out: dict[str, float] = {}
    for split, prefix in EVALUATED:
        if split in parts:
            out |= score_predictions(parts[split].labels, list(predict(parts[split].texts)), C, prefix)
    return out


def majority_baseline(splits: Mapping[str, Any]) -> dict[str, Any]:
    """Predict the most frequent training label (ties: the smallest id) everywhere.

    Returns:
        ``{"label": name, "val_acc", "val_f1", ..., "test_acc", ...}``.
    """
    parts = _check_splits(splits)
    counts = Counter(parts["train"].labels)
    label = min(counts, key=lambda y: (-counts[y], y))
    return {"label": parts["train"].label_names[label]} | _score(parts, lambda texts: [label] * len(texts))


@dataclass
class NgramLogreg:
    """A fitted TF-IDF n-gram logistic regression (:func:`fit_ngram_logreg`)."""

    vectoriser: Any  # sklearn TfidfVectorizer, fitted on the training split
    model: Any  # sklearn LogisticRegression with the C chosen on validation
    C: float
    val_by_C: dict[float, float]  # validation accuracy of every C tried

    def predict(self, texts: Sequence[str]) -> list[int]:
        """Label ids of ``texts`` (e.g. generated samples, for a conditioned LM's control accuracy)."""
        texts = list(texts)
        return self.model.predict(self.vectoriser.transform(texts)).tolist() if texts else []


def fit_ngram_logreg(
    splits: Mapping[str, Any],
    *,
    ngram_range: tuple[int, int] = (1, 2),
    Cs: Sequence[float] = DEFAULT_CS,
    lowercase: bool = True,
    min_df: int = 1,
) -> NgramLogreg:
    """Fit the classifier of :func:`ngram_logreg_baseline` (same arguments) and return it."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    parts = _check_splits(splits)
    if not Cs:
        raise ConfigError("ngram_logreg_baseline: Cs is empty; give at least one C")
    # 1. features from the training split only
    vectoriser = TfidfVectorizer(
        ngram_range=ngram_range,
        lowercase=lowercase,
        min_df=min_df,
        sublinear_tf=True,
        token_pattern=TOKEN_PATTERN,
    )
    x_train = vectoriser.fit_transform(parts["train"].texts)
    x_val = vectoriser.transform(parts["validation"].texts)
    # 2. one model per C; keep the best on validation (first = smallest C among ties)
    best, by_c = None, {}
    for c in sorted(Cs):
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, parts["train"].labels)
        acc = float((model.predict(x_val) == parts["validation"].labels).mean())
        by_c[c] = acc
        if best is None or acc > by_c[best[0]]:
            best = (c, model)
    c, model = best
    return NgramLogreg(vectoriser, model, c, by_c)


def ngram_logreg_baseline(
    splits: Mapping[str, Any],
    *,
    ngram_range: tuple[int, int] = (1, 2),
    Cs: Sequence[float] = DEFAULT_CS,
    lowercase: bool = True,
    min_df: int = 1,
) -> dict[str, Any]:
    """TF-IDF word n-grams + logistic regression, ``C`` chosen on the validation split.

    Args:
        splits: ``{"train", "validation"[, "test"]}`` of :class:`LabelledTexts`.
        ngram_range: the smallest and largest n of the word n-grams (default uni- and bigrams).
        Cs: the inverse regularisation strengths tried.
        lowercase: lower-case before counting.
        min_df: drop n-grams in fewer training texts than this.

    Returns:
        ``{"C": chosen, "features": n-gram vocabulary size, "val_by_C": {C: val_acc},
        "val_acc", "val_f1", ..., "test_acc", ...}``.
    """
    fit = fit_ngram_logreg(splits, ngram_range=ngram_range, Cs=Cs, lowercase=lowercase, min_df=min_df)
    # 3. score the chosen model on validation and test
    metrics = _score(_check_splits(splits), fit.predict)
    return {"C": fit.C, "features": len(fit.vectoriser.vocabulary_), "val_by_C": fit.val_by_C} | metrics


def classification_baselines(splits: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"majority": ..., "logreg": ...}``: both baselines on the same splits.

    Example: ``classification_baselines(load_dataset("movie-reviews"))`` or, for the exact data
    a classify run trained on (preprocessing aside), ``classification_baselines(task.raw)``.
    """
    return {"majority": majority_baseline(splits), "logreg": ngram_logreg_baseline(splits)}
