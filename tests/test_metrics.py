"""Metric functions against their reference libraries (scikit-learn, sacrebleu) and hand-worked examples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from seqlab.errors import ConfigError
from seqlab.metrics import anomaly, forecasting, tagging, text
from seqlab.metrics import classification as cls

# ---------------------------------------------------------------- classification

Y_TRUE = [0, 1, 2, 2, 1, 0, 3, 3, 1, 2, 0, 1]
Y_PRED = [0, 2, 2, 1, 1, 0, 0, 1, 1, 2, 1, 1]  # class 3 is never predicted
C = 4


def test_accuracy_hand_and_sklearn():
    assert cls.accuracy([0, 1, 2, 2], [0, 2, 2, 2]) == 0.75
    assert cls.accuracy(Y_TRUE, Y_PRED) == pytest.approx(skm.accuracy_score(Y_TRUE, Y_PRED))
    assert cls.accuracy(torch.tensor(Y_TRUE), np.array(Y_PRED)) == pytest.approx(7 / 12)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_matches_sklearn(average):
    ours = cls.precision_recall_f1(Y_TRUE, Y_PRED, C, average=average)
    p, r, f, _ = skm.precision_recall_fscore_support(
        Y_TRUE, Y_PRED, labels=list(range(C)), average=average, zero_division=0
    )
    assert ours == pytest.approx({"precision": p, "recall": r, "f1": f}, abs=1e-12)


def test_precision_recall_f1_none_and_absent_class():
    # class 4 of 5 never occurs in either sequence: its P/R/F1 are 0 and it lowers the macro mean.
    ours = cls.precision_recall_f1(Y_TRUE, Y_PRED, 5, average="none")
    p, r, f, _ = skm.precision_recall_fscore_support(
        Y_TRUE, Y_PRED, labels=list(range(5)), average=None, zero_division=0
    )
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    assert ours["precision"][3] == 0.0 and ours["f1"][4] == 0.0
    macro = cls.precision_recall_f1(Y_TRUE, Y_PRED, 5)["f1"]
    assert macro == pytest.approx(
        skm.f1_score(Y_TRUE, Y_PRED, labels=list(range(5)), average="macro", zero_division=0)
    )


def test_docstring_example_macro_f1():
    out = cls.precision_recall_f1([0, 0, 1, 2], [0, 1, 1, 1], 3, average="none")
    assert out["precision"] == pytest.approx([1, 1 / 3, 0])
    assert out["f1"] == pytest.approx([2 / 3, 1 / 2, 0])
    assert cls.precision_recall_f1([0, 0, 1, 2], [0, 1, 1, 1], 3)["f1"] == pytest.approx(0.3888888889)


def test_confusion_matrix_matches_sklearn():
    ours = cls.confusion_matrix(Y_TRUE, Y_PRED, C)
    assert ours.dtype == np.int64 and ours.shape == (C, C)
    np.testing.assert_array_equal(ours, skm.confusion_matrix(Y_TRUE, Y_PRED, labels=list(range(C))))
    np.testing.assert_array_equal(cls.confusion_matrix([0, 1, 1], [0, 0, 1], 2), [[1, 0], [1, 1]])


def test_classification_report_is_json_and_consistent():
    names = ["a", "b", "c", "d"]
    rep = cls.classification_report(Y_TRUE, Y_PRED, names)
    assert json.loads(json.dumps(rep)) == rep
    assert rep["accuracy"] == pytest.approx(7 / 12)
    assert rep["macro_f1"] == pytest.approx(skm.f1_score(Y_TRUE, Y_PRED, average="macro", zero_division=0))
    assert rep["weighted_f1"] == pytest.approx(skm.f1_score(Y_TRUE, Y_PRED, average="weighted"))
    sk = skm.classification_report(Y_TRUE, Y_PRED, target_names=names, output_dict=True, zero_division=0)
    for name in names:
        for key, sk_key in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert rep["per_class"][name][key] == pytest.approx(sk[name][sk_key])
        assert rep["per_class"][name]["support"] == sk[name]["support"]
    assert rep["confusion_matrix"] == cls.confusion_matrix(Y_TRUE, Y_PRED, C).tolist()
    small = cls.classification_report([0, 1, 1], [0, 0, 1], ["neg", "pos"])
    assert small["per_class"]["neg"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    )


def test_token_accuracy_and_f1_ignore_padding():
    y_true = torch.tensor([[1, 2, -100], [0, 1, 1]])
    y_pred = torch.tensor([[1, 0, 5], [0, 1, 0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert cls.token_accuracy(y_true, y_pred, mask) == pytest.approx(3 / 5)
    assert cls.token_accuracy([[1, 2, -100]], [[1, 0, 5]], [[1, 1, 0]]) == 0.5
    ours = cls.token_precision_recall_f1(y_true, y_pred, mask, 3)
    t, p = [1, 2, 0, 1, 1], [1, 0, 0, 1, 0]
    assert ours["f1"] == pytest.approx(skm.f1_score(t, p, labels=[0, 1, 2], average="macro", zero_division=0))
    assert cls.token_precision_recall_f1([[0, 1, 1]], [[0, 1, 0]], [[1, 1, 1]], 2)["f1"] == pytest.approx(
        2 / 3
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cls.accuracy([0, 1, 2], [0, 1]), "same length"),
        (lambda: cls.precision_recall_f1([0, 1, 4], [0, 1, 1], 3), "label 4 is out of range"),
        (lambda: cls.confusion_matrix([0, -1], [0, 1], 2), "label -1 is out of range"),
        (lambda: cls.precision_recall_f1([0, 1], [0, 1], 2, average="binary"), "average must be one of"),
        (lambda: cls.accuracy([], []), "empty"),
        (lambda: cls.accuracy([0.5, 1], [0, 1]), "integer labels"),
        (lambda: cls.classification_report([0, 1], [0, 1], ["x", "x"]), "unique"),
        (lambda: cls.classification_report([0, 2], [0, 1], ["x", "y"]), "out of range"),
        (lambda: cls.token_accuracy([[1, 2]], [[1, 2]], [[1, 1, 0]]), "same shape"),
        (lambda: cls.token_accuracy([[1, 2]], [[1, 2]], [[0, 0]]), "no positions"),
        (lambda: cls.confusion_matrix([0], [0], 0), "positive integer"),
    ],
)
def test_classification_bad_input(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# ---------------------------------------------------------------- tagging (entity level, seqeval rules)


def test_bio_entities_lenient_conlleval_rule():
    assert tagging.bio_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 5),
    ]
    assert tagging.bio_entities(["I-ORG", "I-ORG", "I-PER", "O"]) == [("ORG", 0, 2), ("PER", 2, 3)]


def test_entity_f1_matches_seqeval_values():
    # seqeval 1.2.2 on these inputs: micro P 0.6, R 0.5, F1 0.5454...; LOC f1 0 (support 3), ORG/PER 1.
    yt = [
        ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"],
        ["I-ORG", "I-ORG", "O", "B-PER"],
        ["O", "B-LOC", "B-LOC"],
    ]
    yp = [
        ["B-PER", "I-PER", "O", "B-LOC", "O", "O"],
        ["B-ORG", "I-ORG", "O", "B-PER"],
        ["O", "B-LOC", "I-LOC"],
    ]
    out = tagging.entity_f1(yt, yp)
    assert (out["precision"], out["recall"]) == pytest.approx((0.6, 0.5))
    assert out["f1"] == pytest.approx(0.5454545454545454)
    assert out["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}
    assert out["per_type"]["ORG"]["f1"] == out["per_type"]["PER"]["f1"] == 1.0
    small = tagging.entity_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert small["f1"] == 0.5 and small["per_type"]["ORG"]["support"] == 0


def test_entity_f1_bad_input():
    with pytest.raises(ConfigError, match="not BIO"):
        tagging.entity_f1([["B-PER", "X"]], [["O", "O"]])
    with pytest.raises(ConfigError, match="same length"):
        tagging.entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(ConfigError, match="number of sentences"):
        tagging.entity_f1([["O"]], [])


# ---------------------------------------------------------------- text

HYPS = ["the cat sat on the mat", "a quick brown fox jumps over the dog", "hello world"]
REFS = ["the cat sat on a mat", "the quick brown fox jumped over the lazy dog", "hello there world"]


def test_bleu_and_chrf_equal_sacrebleu():
    import sacrebleu

    ours = text.bleu(HYPS, REFS)
    ref = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert ours["score"] == ref.score
    assert ours["precisions"] == ref.precisions and ours["brevity_penalty"] == ref.bp
    assert ours["signature"].startswith("nrefs:1|case:mixed")
    assert text.bleu(HYPS[:1], REFS[:1])["score"] == pytest.approx(53.7284965911771)
    assert text.chrf(HYPS, REFS)["score"] == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert (
        text.chrf(HYPS, REFS, word_order=2)["score"]
        == sacrebleu.corpus_chrf(HYPS, [REFS], word_order=2).score
    )
    # several references per hypothesis: ours takes them per hypothesis, sacrebleu as streams
    multi = [[r, r.upper()] for r in REFS]
    assert (
        text.bleu(HYPS, multi)["score"]
        == sacrebleu.corpus_bleu(HYPS, [REFS, [r.upper() for r in REFS]]).score
    )


def test_rouge_matches_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    ours = text.rouge(HYPS, REFS)
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = np.mean([scorer.score(r, h)[key].fmeasure for h, r in zip(HYPS, REFS)])
        assert ours[key] == pytest.approx(expected)
    hand = text.rouge(["the cats are running"], ["the cat runs fast"])
    assert hand == pytest.approx({"rouge1": 0.75, "rouge2": 1 / 3, "rougeL": 0.75})


def _brute_edit_distance(a, b):
    """Plain recursion over the three edit operations (exponential; tiny inputs only)."""
    if not a or not b:
        return len(a) + len(b)
    return min(
        _brute_edit_distance(a[1:], b) + 1,
        _brute_edit_distance(a, b[1:]) + 1,
        _brute_edit_distance(a[1:], b[1:]) + (a[0] != b[0]),
    )


def test_edit_distance_hand_and_brute_force():
    assert text.edit_distance("kitten", "sitting") == 3
    assert text.edit_distance("", "abc") == 3 and text.edit_distance("abc", "") == 3
    assert text.edit_distance("flaw", "lawn") == 2
    assert text.edit_distance(["K", "AE1", "T"], ["K", "AA1", "T", "S"]) == 2
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = "".join(rng.choice(list("abc"), rng.integers(0, 7)))
        b = "".join(rng.choice(list("abc"), rng.integers(0, 7)))
        assert text.edit_distance(a, b) == _brute_edit_distance(a, b), (a, b)


def test_error_rates_and_exact_match_hand():
    assert text.word_error_rate(["the cat sat on mat"], ["the cat sat on the mat"]) == pytest.approx(1 / 6)
    assert text.word_error_rate(["a cat sat", "hello"], ["the cat sat", "hi there"]) == pytest.approx(3 / 5)
    assert text.phoneme_error_rate(["K AE1 T S"], ["K AE1 T"]) == pytest.approx(1 / 3)
    assert text.phoneme_error_rate([["K", "AE1", "T", "S"]], [["K", "AE1", "T"]]) == pytest.approx(1 / 3)
    assert text.character_error_rate(["kitten"], ["sitting"]) == pytest.approx(3 / 7)
    assert text.exact_match(["K AE1 T", "D AO1 G"], ["K  AE1 T", "D AA1 G"]) == 0.5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: text.bleu(["a", "b"], ["a"]), "same length"),
        (lambda: text.bleu("a b", "a b"), "lists of strings"),
        (lambda: text.bleu(["a", "b"], [["a", "x"], ["b"]]), "same number of references"),
        (lambda: text.chrf([], []), "empty"),
        (lambda: text.word_error_rate(["a"], [""]), "references are empty"),
        (lambda: text.character_error_rate([["a"]], [["a"]]), "needs strings"),
        (lambda: text.exact_match(["a"], ["a", "b"]), "same length"),
    ],
)
def test_text_bad_input(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# ---------------------------------------------------------------- forecasting


def test_mae_rmse_smape_hand_and_sklearn():
    a, f = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]
    assert forecasting.mae(a, f) == 1.0
    assert forecasting.rmse(a, f) == pytest.approx(np.sqrt(5 / 3))
    assert forecasting.smape([1.0, 2.0, 0.0], [3.0, 2.0, 0.0]) == pytest.approx(100 / 3)
    rng = np.random.default_rng(1)
    A, F = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    assert forecasting.mae(A, F) == pytest.approx(skm.mean_absolute_error(A, F))
    assert forecasting.rmse(A, F) == pytest.approx(skm.root_mean_squared_error(A, F))
    assert forecasting.mae(torch.tensor(A), torch.tensor(F)) == pytest.approx(forecasting.mae(A, F))


def test_seasonal_naive_hand():
    np.testing.assert_array_equal(forecasting.seasonal_naive([1, 2, 3, 4, 5, 6], 6, 4), [3, 4, 5, 6, 3, 4])
    np.testing.assert_array_equal(forecasting.seasonal_naive([1, 2, 3], 2, 1), [3, 3])
    two = forecasting.seasonal_naive(np.array([[1, 10], [2, 20], [3, 30]]), 3, 2)
    np.testing.assert_array_equal(two, [[2, 20], [3, 30], [2, 20]])


def test_mase_by_hand_season_1_and_4():
    # season 1: Q = mean(|3-1|, |2-3|, |4-2|, |3-4|) = 6/4 = 1.5; MAE = (|4-5| + |4-4|)/2 = 0.5
    assert forecasting.mase([5, 4], [4, 4], [1, 3, 2, 4, 3], season=1) == pytest.approx(1 / 3)
    # season 4: train = [1, 5, 3, 2, 2, 6, 3, 4] → |2-1|, |6-5|, |3-3|, |4-2| → Q = 4/4 = 1.0
    train = [1, 5, 3, 2, 2, 6, 3, 4]
    test_a, test_f = [3, 7, 4, 3], [2, 6, 3, 4]  # = seasonal naive; |errors| = 1, 1, 1, 1
    np.testing.assert_array_equal(forecasting.seasonal_naive(train, 4, 4), test_f)
    assert forecasting.mase(test_a, test_f, train, season=4) == pytest.approx(1.0)
    assert forecasting.mase(test_a, [3, 7, 4, 5], train, season=4) == pytest.approx(0.5)
    # two channels: per-channel MASE then the mean (channel 2 = channel 1 scaled by 10 → same MASE)
    two = forecasting.mase(
        np.c_[[5, 4], [50, 40]], np.c_[[4, 4], [40, 40]], np.c_[[1, 3, 2, 4, 3], [10, 30, 20, 40, 30]]
    )
    assert two == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: forecasting.mae([1, 2], [1]), "same length"),
        (lambda: forecasting.rmse(np.zeros((3, 2)), np.zeros((3, 3))), "same shape"),
        (lambda: forecasting.mae([1, np.nan], [1, 2]), "NaN"),
        (lambda: forecasting.mase([1], [1], [2, 2, 2]), "undefined"),
        (lambda: forecasting.mase([1], [1], [1, 2], season=2), "more than season=2"),
        (lambda: forecasting.mase([1], [1], [1, 2, 3], season=0), "positive integer"),
        (lambda: forecasting.mase(np.zeros((1, 2)), np.zeros((1, 2)), [1, 2, 3]), "channels"),
        (lambda: forecasting.seasonal_naive([1, 2], 0, 1), "horizon"),
        (lambda: forecasting.mae(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), r"\(N,\) or \(N, C\)"),
    ],
)
def test_forecasting_bad_input(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# ---------------------------------------------------------------- anomaly


def test_binary_prf_matches_sklearn():
    labels, predicted = [0, 1, 1, 0, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0, 1, 1]
    ours = anomaly.precision_recall_f1_binary(labels, predicted)
    p, r, f, _ = skm.precision_recall_fscore_support(labels, predicted, average="binary", zero_division=0)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((p, r, f))
    assert (ours["tp"], ours["fp"], ours["fn"]) == (3, 2, 1)
    none = anomaly.precision_recall_f1_binary([0, 1], [0, 0])
    assert none["precision"] == none["f1"] == 0.0


def test_roc_auc_matches_sklearn_with_ties():
    assert anomaly.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert anomaly.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    rng = np.random.default_rng(2)
    for _ in range(20):
        labels = rng.integers(0, 2, 60)
        labels[:2] = [0, 1]
        scores = rng.integers(0, 8, 60) / 4.0  # many ties
        assert anomaly.roc_auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert anomaly.roc_auc(torch.tensor([0, 1]), torch.tensor([0.2, 0.1])) == 0.0


def test_best_f1_threshold_hand_and_brute_force():
    out = anomaly.best_f1_threshold([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7])
    assert out == pytest.approx({"threshold": 0.6, "f1": 0.8, "precision": 2 / 3, "recall": 1.0})
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        labels[0] = 1
        scores = rng.integers(0, 10, 40) / 10.0
        out = anomaly.best_f1_threshold(labels, scores)
        f1s = {t: skm.f1_score(labels, scores >= t, zero_division=0) for t in np.unique(scores)}
        best = max(f1s.values())
        assert out["f1"] == pytest.approx(best)
        assert out["threshold"] == max(t for t, f in f1s.items() if np.isclose(f, best))


def test_point_adjust_hand_example():
    labels = [0, 1, 1, 1, 0, 1, 1, 0]
    predicted = [1, 0, 1, 0, 0, 0, 0, 0]
    adjusted = anomaly.point_adjust(labels, predicted)
    np.testing.assert_array_equal(adjusted, [1, 1, 1, 1, 0, 0, 0, 0])
    out = anomaly.point_adjusted_precision_recall_f1(labels, predicted)
    assert out == pytest.approx(
        {"point_adjusted_precision": 3 / 4, "point_adjusted_recall": 3 / 5, "point_adjusted_f1": 2 / 3}
    )
    # unadjusted it is much worse: TP 1, FP 1, FN 4
    assert anomaly.precision_recall_f1_binary(labels, predicted)["f1"] == pytest.approx(2 / 7)
    # a segment touching the series end is handled
    np.testing.assert_array_equal(anomaly.point_adjust([0, 1, 1], [0, 0, 1]), [0, 1, 1])


def test_detection_report_keys_and_values():
    rep = anomaly.detection_report([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7], threshold=0.8)
    assert json.loads(json.dumps(rep)) == rep
    assert rep["precision"] == 1.0 and rep["recall"] == 0.5 and rep["f1"] == pytest.approx(2 / 3)
    assert rep["roc_auc"] == 0.75 and rep["point_adjusted_f1"] == 1.0
    assert anomaly.detection_report([0, 0], [0.1, 0.2], 0.5)["roc_auc"] is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: anomaly.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), "both classes"),
        (lambda: anomaly.roc_auc([0, 1], [0.1]), "same length"),
        (lambda: anomaly.roc_auc([0, 2], [0.1, 0.2]), "binary labels"),
        (lambda: anomaly.roc_auc([0, 1], [0.1, np.inf]), "NaN or infinity"),
        (lambda: anomaly.best_f1_threshold([0, 0], [0.1, 0.2]), "at least one anomalous"),
        (lambda: anomaly.point_adjust([0, 1, 1], [0, 1]), "same length"),
        (lambda: anomaly.precision_recall_f1_binary([], []), "empty"),
    ],
)
def test_anomaly_bad_input(call, match):
    with pytest.raises(ConfigError, match=match):
        call()
