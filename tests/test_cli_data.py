"""``seqlab data list`` / ``seqlab data show``: output from the cards and the loaded splits."""

from __future__ import annotations

import argparse
import json

import pytest

from seqlab.cli.data import add_data_parser
from seqlab.data.datasets import DATASETS
from seqlab.errors import SeqlabError, UnknownNameError


def run(argv: list[str], capsys) -> str:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="seqlab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_parser(sub, common)
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_list_shows_every_dataset_with_its_sizes(capsys):
    out = run(["data", "list"], capsys)
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "KIND"]
    for name in ["shakespeare", "movie-reviews", "cmudict", "translation-en-es"]:
        card = DATASETS.get(name).card
        (row,) = [line for line in lines if line.startswith(name + " ")]
        assert card.kind in row and card.summary in row
        assert " / ".join(f"{v:,}" for v in card.splits.values()) + f" {card.unit}" in row
    assert "8,453 / 1,056 / 1,057 sentences" in out


def test_list_json(capsys):
    rows = json.loads(run(["data", "list", "--json"], capsys))
    by_name = {row["name"]: row for row in rows}
    assert by_name["cmudict"]["splits"] == {"train": 112_433, "validation": 6_247, "test": 6_246}
    assert by_name["shakespeare"]["unit"] == "characters"
    assert [row["name"] for row in rows] == DATASETS.names()


def test_show_prints_card_stats_and_examples(capsys):
    out = run(["data", "show", "movie-reviews", "--examples", "2"], capsys)
    assert out.startswith("# movie-reviews\n")
    assert "- **licence**:" in out and "## statistics" in out
    assert "- train: examples 8,453, labels (negative 4,260, positive 4,193)" in out
    assert "- test: examples 1,057, labels (negative 533, positive 524)" in out
    examples = out.split("## examples (train)\n")[1].strip().split("\n\n")
    assert len(examples) == 2 and all(e.startswith(("[negative] ", "[positive] ")) for e in examples)


def test_show_text_dataset(capsys):
    out = run(["data", "show", "shakespeare", "--examples", "0"], capsys)
    assert "- validation: characters 220,194, distinct_characters 62" in out
    assert "## examples" not in out


def test_show_json_stats_match_the_card(capsys):
    data = json.loads(run(["data", "show", "translation-en-es", "--json", "--examples", "1"], capsys))
    card = DATASETS.get("translation-en-es").card
    assert data["card"]["name"] == "translation-en-es" and data["card"]["notes"] == list(card.notes)
    assert {split: s["pairs"] for split, s in data["stats"].items()} == card.splits
    (example,) = data["examples"]
    assert "  ->  " in example


def test_unknown_name_lists_the_choices(capsys):
    with pytest.raises(UnknownNameError) as err:
        run(["data", "show", "imdb"], capsys)
    assert isinstance(err.value, SeqlabError)
    message = str(err.value)
    assert "'imdb'" in message and all(name in message for name in DATASETS.names())


def test_bad_arguments_are_usage_errors(capsys):
    for argv in (["data"], ["data", "show"], ["data", "show", "cmudict", "--examples", "-1"]):
        with pytest.raises(SystemExit) as err:
            run(argv, capsys)
        assert err.value.code == 2
    assert "expected a count >= 0" in capsys.readouterr().err
