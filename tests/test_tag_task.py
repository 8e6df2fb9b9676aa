"""The ``tag`` task: batches and masking, file readers, metrics, the baseline, the dataset, a run."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from seqlab.data.datasets import load_dataset
from seqlab.data.datasets.tagging import WebPunctuation
from seqlab.data.tagged import TaggedSentences, read_columns, read_conllu, read_tagged
from seqlab.errors import ConfigError
from seqlab.evaluation.tag_baselines import MostFrequentTag, most_frequent_tag_scores
from seqlab.models import ModelConfig, SequenceModel
from seqlab.tasks.base import IGNORE, build_task
from seqlab.tasks.tag import TagTask, is_bio, make_batch, score_tags
from seqlab.training.evaluation import Predictor

TRAIN = "the\tDET\ndog\tNOUN\nbarks\tVERB\n\nthe\tDET\ndog\tNOUN\n\nthe\tDET\n"
VALID = "the\tDET\ndog\tNOUN\nbarks\tVERB\n\nthe\tDET\ncat\tNOUN\n"

CONLLU = """# sent_id = 1
# text = The cat can't.
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t0\troot\t_\t_
3-4\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
3\tca\tcan\tAUX\tMD\t_\t2\taux\t_\t_
4\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
4.1\tx\t_\tX\t_\t_\t_\t_\t_\t_

1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def _tiny_task(tmp_path, **options) -> TagTask:
    files = {
        "file": _write(tmp_path / "train.tsv", TRAIN),
        "validation_file": _write(tmp_path / "valid.tsv", VALID),
        "test_file": _write(tmp_path / "test.tsv", VALID),
    }
    return TagTask({**files, "min_frequency": 1, **options})


# -- batches, masking, loss ------------------------------------------------------------------------


def test_the_docstring_example_batch(tmp_path):
    task = _tiny_task(tmp_path)
    assert task.tag_names == ["DET", "NOUN", "VERB"] and task.io.output_dim == 3
    assert [task.tokenizer.token_to_id(w) for w in ("[PAD]", "[UNK]", "the", "dog", "barks")] == [
        0,
        1,
        7,
        8,
        9,
    ]
    batch = task._batch("validation", torch.tensor([0, 1]))
    assert batch.inputs.tolist() == [[7, 8, 9], [7, 1, 0]]  # cat: unseen in training -> [UNK]
    assert batch.targets.tolist() == [[0, 1, 2], [0, 1, IGNORE]]
    assert batch.target_mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.mask.tolist() == batch.target_mask.tolist() and batch.lengths.tolist() == [3, 2]


def test_loss_is_the_mean_over_real_words_and_ignores_padding():
    logits = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))  # (B, T, C)
    batch = make_batch(
        [torch.tensor([5, 6, 7]), torch.tensor([5])], [torch.tensor([0, 3, 1]), torch.tensor([2])]
    )
    loss = TagTask.loss(None, logits, batch)
    by_hand = (
        -(logits[0].log_softmax(-1)[[0, 1, 2], [0, 3, 1]].sum() + logits[1, 0].log_softmax(-1)[2]) / 4
    )  # 4 real words
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    junk = logits.clone()
    junk[1, 1:] = 1e3  # whatever the model outputs at padded steps
    assert TagTask.loss(None, junk, batch).item() == pytest.approx(loss.item(), rel=1e-6)


def test_a_real_model_gives_the_same_loss_padded_or_alone(tmp_path):
    task = _tiny_task(tmp_path)
    torch.manual_seed(0)
    for layer in ("lstm", "attention"):
        model = SequenceModel(ModelConfig(d_model=16, layer_types=[layer]), task.io).eval()
        predict = Predictor(model)
        both = task._batch("validation", torch.tensor([0, 1]))
        alone = task._batch("validation", torch.tensor([1]))  # no padding
        out_both, out_alone = predict(both), predict(alone)
        assert torch.allclose(out_both[1, :2], out_alone[0], atol=1e-5)
        loss_both = task.loss(out_both[1:], both.rows(torch.tensor([1])))
        assert loss_both.item() == pytest.approx(task.loss(out_alone, alone).item(), rel=1e-5)


def test_long_sentences_are_cut_into_pieces_and_rejoined(tmp_path):
    task = _tiny_task(tmp_path, max_len=2)
    assert [w.tolist() for w, _ in task.pieces["validation"]] == [[7, 8], [9], [7, 1]]
    assert task.train_length == 2
    table = {7: 0, 8: 1, 9: 2, 1: 1}  # the -> DET, dog -> NOUN, barks -> VERB, [UNK] -> NOUN
    predict = lambda b: torch.nn.functional.one_hot(  # noqa: E731
        b.inputs.apply_(lambda i: table.get(i, 0)), 3
    ).float()
    tags, _ = task.predict_tags(predict, "validation", batch_size=2)
    assert tags == [["DET", "NOUN", "VERB"], ["DET", "NOUN"]]
    assert task.evaluate(predict, 2)["val_acc"] == 1.0


def test_token_budget_batches(tmp_path):
    task = _tiny_task(tmp_path)
    batch = task.train_batch_tokens(6, torch.Generator().manual_seed(0))
    assert batch.inputs.numel() <= 6 and batch.target_mask.any()
    with pytest.raises(ConfigError, match="smaller than one training sequence"):
        task.train_batch_tokens(2, torch.Generator())


# -- metrics ---------------------------------------------------------------------------------------


def test_score_tags_worked_example():
    m = score_tags([["DET", "NOUN"], ["VERB"]], [["DET", "VERB"], ["VERB"]], ["DET", "NOUN", "VERB"], "v")
    assert m == pytest.approx({"v_acc": 2 / 3, "v_f1": (1 + 0 + 2 / 3) / 3, "v_seq_acc": 0.5})


def test_score_tags_agrees_with_scikit_learn():
    g = torch.Generator().manual_seed(3)
    names = ["A", "B", "C", "D", "E"]  # E never occurs: it must not drag the macro average down
    lengths = torch.randint(1, 8, (40,), generator=g).tolist()
    gold = [[names[i] for i in torch.randint(0, 4, (n,), generator=g)] for n in lengths]
    pred = [[names[i] for i in torch.randint(0, 4, (n,), generator=g)] for n in lengths]
    flat_g, flat_p = [t for s in gold for t in s], [t for s in pred for t in s]
    m = score_tags(gold, pred, names, "x")
    assert m["x_acc"] == pytest.approx(accuracy_score(flat_g, flat_p))
    assert m["x_f1"] == pytest.approx(f1_score(flat_g, flat_p, average="macro", zero_division=0))


def test_bio_tags_get_entity_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    assert is_bio(["O", "B-PER", "I-PER"]) and not is_bio(["O", "COMMA"]) and not is_bio(["O"])
    m = score_tags(gold, pred, ["B-LOC", "B-PER", "I-PER", "O"], "t")
    assert m["t_entity_f1"] == m["t_entity_precision"] == m["t_entity_recall"] == 0.5
    assert "t_entity_f1" not in score_tags([["O", "COMMA"]], [["O", "O"]], ["COMMA", "O"], "t")


# -- the baseline ----------------------------------------------------------------------------------


def test_most_frequent_tag_worked_example():
    base = MostFrequentTag.fit(
        [["the", "dog", "runs"], ["the", "runs", "end"]], [["DET", "NOUN", "VERB"], ["DET", "NOUN", "NOUN"]]
    )
    assert base.table == {"the": "DET", "dog": "NOUN", "runs": "NOUN", "end": "NOUN"}  # runs: tie -> NOUN
    assert base.default == "NOUN"  # 3 of 6
    assert base.predict([["the", "cat", "runs"]]) == [["DET", "NOUN", "NOUN"]]


def test_baseline_scores_match_the_task(tmp_path):
    task = _tiny_task(tmp_path)
    splits = {"train": task.raw["train"], "validation": task.raw["validation"]}
    scores = most_frequent_tag_scores(splits)
    # DET 3, NOUN 2, VERB 1 in training: the unseen "cat" gets DET -> 4 of 5 words right
    assert scores["val_acc"] == 0.8 and scores["default_tag"] == "DET"
    in_task = task.baseline_scores("validation", "val")
    assert in_task == {f"val_baseline_{k[4:]}": v for k, v in scores.items() if k.startswith("val_")}


# -- file readers ----------------------------------------------------------------------------------


def test_conllu_reader_skips_ranges_and_empty_nodes(tmp_path):
    path = _write(tmp_path / "x.conllu", CONLLU)
    upos = read_conllu(path)
    assert upos.tokens == [["The", "cat", "ca", "n't"], ["Hi"]]
    assert upos.tags == [["DET", "NOUN", "AUX", "PART"], ["INTJ"]]
    assert read_conllu(path, "xpos").tags == [["DT", "NN", "MD", "RB"], ["UH"]]
    assert read_tagged(path).tags == upos.tags  # auto: .conllu
    assert read_tagged(path, "conllu", "xpos").tags[1] == ["UH"]


def test_columns_reader(tmp_path):
    data = read_columns(_write(tmp_path / "t.tsv", "\n\nA\tB-X\nb\tI-X\n\n\nc\tO\n"))
    assert data.tokens == [["A", "b"], ["c"]] and data.tags == [["B-X", "I-X"], ["O"]]
    assert data.stats() == {"sentences": 2, "tokens": 3, "tags": {"B-X": 1, "I-X": 1, "O": 1}}


@pytest.mark.parametrize(
    "name, text, reader, message",
    [
        ("a.tsv", "the\tDET\ndog NOUN\n", read_columns, "a.tsv, line 2: expected 'token<TAB>tag'"),
        ("b.tsv", "the\tDET\textra\n", read_columns, "b.tsv, line 1: expected 'token<TAB>tag'"),
        ("c.tsv", "\n\n", read_columns, "c.tsv: no sentences"),
        ("d.conllu", "# c\n1\tThe\tthe\tDET\n", read_conllu, "d.conllu, line 2: expected 10 tab-separated"),
        ("e.conllu", CONLLU.replace("\t2\tdet", "\tx\tdet"), read_conllu, "e.conllu, line 3: .*head"),
        ("f.conllu", CONLLU.replace("DET\tDT", "_\tDT"), read_conllu, "f.conllu, line 3: no upos tag"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path, name, text, reader, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=message):
        reader(path)


def test_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_columns(tmp_path / "missing.tsv")
    with pytest.raises(ConfigError, match="choose from upos, xpos"):
        read_conllu(_write(tmp_path / "x.conllu", CONLLU), "deprel")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mutually exclusive"):
        TagTask({"dataset": "web-punctuation", "file": "x.tsv"})
    with pytest.raises(ConfigError, match="give the training data as file"):
        TagTask({"validation_file": "x.tsv"})
    with pytest.raises(ConfigError, match="not a tagged dataset"):
        TagTask({"dataset": "nile"})
    with pytest.raises(ConfigError, match="fewer than 2 distinct tags"):
        TagTask({"file": _write(tmp_path / "one.tsv", "a\tX\n\nb\tX\n\nc\tX\n")})
    with pytest.raises(ConfigError, match="sentence 0: 2 tokens and 1 tags"):
        TaggedSentences([["a", "b"]], [["X"]])


def test_a_user_file_is_split_by_seed(tmp_path):
    text = "".join(f"w{i}\tT{i % 3}\nx\tO\n\n" for i in range(50))
    task = build_task("tag", {"file": _write(tmp_path / "d.tsv", text), "seed": 1, "lowercase": True})
    assert [len(task.raw[s]) for s in ("train", "validation", "test")] == [40, 5, 5]
    assert task.raw["train"].tokens[0][0].startswith("w") and task.tag_names == ["O", "T0", "T1", "T2"]
    first = {s: {words[0] for words in task.raw[s].tokens} for s in task.raw}  # each sentence's w<i>
    assert set.union(*first.values()) == {f"w{i}" for i in range(50)}  # every sentence, in one split
    assert sum(map(len, first.values())) == 50
    again = build_task("tag", {"file": str(tmp_path / "d.tsv"), "seed": 1, "lowercase": True})
    other = build_task("tag", {"file": str(tmp_path / "d.tsv"), "seed": 2, "lowercase": True})
    assert again.raw["test"].tokens == task.raw["test"].tokens  # the seed decides the split ...
    assert other.raw["test"].tokens != task.raw["test"].tokens  # ... and another seed cuts it otherwise


def test_a_sentence_repeated_in_a_user_file_lands_in_one_split_only(tmp_path):
    # 30 distinct sentences, each written twice (tags may differ): split_indices alone would put
    # copies of some sentence in train and test; the split must keep the first copy only
    text = "".join(f"w{i}\tT{k}\nx\tO\n\n" for k in (0, 1) for i in range(30))
    task = build_task("tag", {"file": _write(tmp_path / "d.tsv", text), "seed": 3})
    sentences = {s: [" ".join(words) for words in task.raw[s].tokens] for s in task.raw}
    assert sum(map(len, sentences.values())) == 30
    assert len(set().union(*sentences.values())) == 30  # no sentence in two splits
    assert all(tags[0] == "T0" for s in task.raw for tags in task.raw[s].tags)  # the first copy kept


# -- the built-in dataset and a run ----------------------------------------------------------------


def test_web_punctuation_loads_with_the_card_counts():
    splits = load_dataset("web-punctuation")
    card = WebPunctuation.card
    assert {k: len(v) for k, v in splits.items()} == card.splits
    assert [sum(len(s) for s in v.tokens) for v in splits.values()] == [641_023, 64_459, 47_656]
    assert sorted(splits["train"].tag_counts()) == ["COMMA", "O", "PERIOD", "QUESTION"]
    train = splits["train"]  # Genesis 1:3, "God said, “Let there be light,” and there was light."
    assert " ".join(train.tokens[2]) == "god said let there be light and there was light"
    assert train.tags[2] == ["O", "O", "COMMA", "O", "O", "O", "COMMA", "O", "O", "O"]
    assert all(tags[0] == "O" for tags in train.tags)
    seen = {tuple(s) for s in train.tokens}
    assert not any(tuple(s) in seen for s in splits["test"].tokens)


def test_train_an_lstm_on_the_builtin_data_through_the_cli(tmp_path):
    from seqlab.cli.main import main

    run = tmp_path / "run"
    sets = ["train.threads=1", "train.steps=20", "train.eval_every=20", "model.d_model=32"]
    args = ["train", "--task", "tag", "--model", "lstm", "--out", str(run), "--json"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    final = json.loads((run / "final_metrics.json").read_text())
    for key in ("val_acc", "val_f1", "test_acc", "test_f1", "test_baseline_acc", "test_baseline_f1"):
        assert 0.0 <= final[key] <= 1.0
    assert set(final["test_per_tag"]) == {"COMMA", "O", "PERIOD", "QUESTION"}
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2_377 and all(len(r["words"]) == len(r["gold"]) == len(r["predicted"]) for r in rows)
    wrong = sum(g != p for r in rows for g, p in zip(r["gold"], r["predicted"]))
    errors = json.loads((run / "errors.json").read_text())
    assert errors["errors"] == wrong == sum(c["count"] for c in errors["confusions"])
    assert final["test_acc"] == pytest.approx(1 - wrong / 47_656)
    assert "gold → predicted" in (run / "errors.md").read_text()
    assert json.loads((run / "tags.json").read_text())["tag_names"] == ["COMMA", "O", "PERIOD", "QUESTION"]
