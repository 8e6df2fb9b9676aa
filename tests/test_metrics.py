"""Metric functions against their reference libraries (scikit-learn, sacrebleu) and hand-worked examples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from seqlab.errors import ConfigError
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
