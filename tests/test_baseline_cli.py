"""``seqlab baseline lm|classify|forecast`` on small user files (and the built-in corpus)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from seqlab.cli.main import main
from seqlab.evaluation.lm_baselines import ngram_bpc


def _run(capsys, *argv: str) -> dict:
    assert main(["baseline", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _text_file(tmp_path, n: int = 2000):
    rng = np.random.default_rng(0)
    words = ["to ", "be ", "or ", "not ", "that ", "is ", "the ", "question\n"]
    path = tmp_path / "text.txt"
    path.write_text("".join(rng.choice(words, size=n)), encoding="utf-8")
    return path


# -- lm -------------------------------------------------------------------------------------------


def test_lm_on_a_user_text_matches_the_library_on_the_tasks_split(tmp_path, capsys):
    from seqlab.tasks.charlm import CharLMTask

    path = _text_file(tmp_path)
    out = _run(capsys, "lm", "--text", str(path), "--order", "1", "2", "3")
    assert out["kind"] == "lm" and set(out["baselines"]) == {"unigram", "bigram", "trigram"}
    task = CharLMTask({"text": str(path)})  # the same held-out tail (val_fraction 0.1)
    direct = ngram_bpc(task.train_data, task.val_data, task.val_ends, task.tokenizer.vocab_size, (1, 2, 3))
    for name, n in [("unigram", 1), ("bigram", 2), ("trigram", 3)]:
        row = out["baselines"][name]
        assert row["order"] == n and row["val_bpc"] == pytest.approx(direct[n]["bpc"], abs=1e-12)
        assert row["val_tokens"] == len(task.val_data) - 1 and "test_bpc" not in row
    bpc = [out["baselines"][n]["val_bpc"] for n in ("unigram", "bigram", "trigram")]
    assert bpc[0] > bpc[1] > bpc[2]  # words from a small vocabulary: more context helps
    assert out["baselines"]["unigram"]["val_ppl"] == pytest.approx(
        math.exp(out["baselines"]["unigram"]["val_loss"])
    )


def test_lm_windows_reproduce_what_charlm_reports(capsys):
    from seqlab.tasks.charlm import CharLMTask

    out = _run(capsys, "lm", "--windows", "8", "--seq-len", "64")  # the built-in corpus
    task = CharLMTask({"eval_windows": 8, "seq_len": 64, "ngram_baseline": True})
    reported = task.baseline_metrics(8 * 64 + 1)
    assert out["baselines"]["unigram"]["val_bpc"] == pytest.approx(reported["val_bpc_unigram"], abs=1e-12)
    assert out["baselines"]["bigram"]["val_bpc"] == pytest.approx(reported["val_bpc_bigram"], abs=1e-12)
    assert out["baselines"]["bigram"]["val_tokens"] == 8 * 64


def test_lm_table_and_errors(tmp_path, capsys):
    path = _text_file(tmp_path)
    assert main(["baseline", "lm", "--text", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("baseline lm: ") and lines[1].split() == ["metric", "unigram", "bigram"]
    assert any(line.split()[0] == "val_bpc" for line in lines)
    assert main(["baseline", "lm", "--text", str(path), "--split", "test"]) == 2
    assert "no test split" in capsys.readouterr().err
    assert main(["baseline", "lm", "--dataset", "co2"]) == 2
    err = capsys.readouterr().err
    assert "'co2'" in err and "choose from: shakespeare" in err
    with pytest.raises(SystemExit):  # argparse lists the kinds
        main(["baseline", "perplexity"])
    assert "choose from 'lm', 'classify', 'forecast'" in capsys.readouterr().err


def test_lm_shakespeare_char_has_validation_and_test(capsys):  # ~2 s
    out = _run(capsys, "lm", "--dataset", "shakespeare")
    bigram = out["baselines"]["bigram"]
    assert {"val_bpc", "test_bpc"} <= set(bigram)
    assert bigram["test_bpc"] < out["baselines"]["unigram"]["test_bpc"]


# -- classify -------------------------------------------------------------------------------------


def test_classify_on_a_user_table(tmp_path, capsys):
    from seqlab.tasks.classify import ClassifyTask

    rows = ["text,label"] + [f"a good film number {i},pos" for i in range(40)]
    rows += [f"a bad film number {i},neg" for i in range(80)]  # 2:1 negative
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = _run(capsys, "classify", "--table", str(path), "--split", "test")
    majority, logreg = out["baselines"]["majority"], out["baselines"]["logreg"]
    assert out["source"] == f"table {str(path)!r}"
    assert majority["label"] == "neg"
    test_labels = ClassifyTask({"table": str(path)}).raw["test"].labels  # the same seeded split
    assert majority["test_acc"] == pytest.approx(test_labels.count(0) / len(test_labels))  # neg = id 0
    assert logreg["test_acc"] == 1.0  # "good" / "bad" separate the classes
    assert not any(k.startswith("val_") for k in majority | logreg if k != "val_by_C")
    assert main(["baseline", "classify", "--dataset", "shakespeare"]) == 2
    assert "choose from: movie-reviews" in capsys.readouterr().err


@pytest.mark.slow
def test_classify_movie_reviews_matches_benchmarks(capsys):
    out = _run(capsys, "classify", "--dataset", "movie-reviews")
    assert round(out["baselines"]["majority"]["test_acc"], 4) == 0.5043
    assert round(out["baselines"]["logreg"]["test_acc"], 4) == 0.7947


# -- forecast -------------------------------------------------------------------------------------


def test_forecast_seasonal_naive_on_a_trend_by_hand(tmp_path, capsys):
    # y_t = t, 100 points -> train 70, validation 15, test 15; season 1 (no frequency).
    # Naive forecast from origin o: y_{o−1} for every step, errors 1, 2, 3 for H = 3 -> MAE 2;
    # MASE scale = in-sample naive MAE of the training split = 1 -> MASE 2.
    # Validation origins o = 70..82 (o + H ≤ 85): 13 windows.
    path = tmp_path / "trend.csv"
    path.write_text("value\n" + "\n".join(str(t) for t in range(100)) + "\n", encoding="utf-8")
    out = _run(capsys, "forecast", "--csv", str(path), "--horizon", "3", "--context", "5", "--no-arima")
    naive = out["baselines"]["seasonal-naive"]
    assert set(out["baselines"]) == {"seasonal-naive"}
    assert naive["season"] == 1 and naive["val_windows"] == 13 and naive["test_windows"] == 13
    assert naive["val_mae"] == pytest.approx(2.0) and naive["val_mase"] == pytest.approx(2.0)
    assert naive["test_rmse"] == pytest.approx(math.sqrt((1 + 4 + 9) / 3))


def test_forecast_arima_beats_naive_on_an_ar1_series(tmp_path, capsys):
    # AR(1) y_t = 0.8 y_{t−1} + e_t: ARIMA's forecasts decay to the mean, naive's stay flat
    rng = np.random.default_rng(0)
    y = np.zeros(200)
    for t in range(1, 200):
        y[t] = 0.8 * y[t - 1] + rng.normal()
    path = tmp_path / "ar1.csv"
    path.write_text("y\n" + "\n".join(f"{v:.6f}" for v in y) + "\n", encoding="utf-8")
    out = _run(capsys, "forecast", "--csv", str(path), "--horizon", "6", "--split", "validation")
    naive, arima = out["baselines"]["seasonal-naive"], out["baselines"]["arima"]
    assert arima["val_windows"] == naive["val_windows"] == 30 - 6 + 1
    assert arima["val_mase"] < naive["val_mase"]
    assert "test_mase" not in arima


@pytest.mark.slow
def test_forecast_co2_matches_benchmarks(capsys):
    out = _run(capsys, "forecast", "--dataset", "co2", "--context", "104", "--horizon", "13")
    naive, arima = out["baselines"]["seasonal-naive"], out["baselines"]["arima"]
    assert round(naive["test_mase"], 3) == 1.380 and round(arima["test_mase"], 3) == 0.834
    assert round(naive["val_mase"], 3) == 1.047 and round(arima["val_mase"], 3) == 0.642


def test_lm_on_a_token_directory_uses_its_tokenizer(tmp_path, capsys):
    from seqlab.data.tokendir import open_token_dir

    text, out_dir = _text_file(tmp_path), tmp_path / "tokens"
    assert main(["data", "prepare", "tokens", "--text", str(text), "--out", str(out_dir)]) == 0
    capsys.readouterr()
    out = _run(capsys, "lm", "--tokens", str(out_dir))
    tokenizer, train, held_out = open_token_dir(out_dir)
    ids, spans = tokenizer.encode_with_offsets(held_out)
    ends = np.maximum.accumulate([end for _, end in spans])
    direct = ngram_bpc(np.asarray(train.data), ids, ends, tokenizer.vocab_size)
    assert out["baselines"]["bigram"]["val_bpc"] == pytest.approx(direct[2]["bpc"], abs=1e-12)
    assert main(["baseline", "lm", "--tokens", str(out_dir), "--tokenizer", "bpe"]) == 2
    assert "brings its own tokenizer" in capsys.readouterr().err
