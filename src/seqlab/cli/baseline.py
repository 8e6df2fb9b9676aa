"""``seqlab baseline lm|classify|forecast``: the baselines a trained model is compared against.

Each kind loads its data exactly as the task of the same name does (the task's own loader, so a
user's file is read, split and tokenised as in ``seqlab train``) and scores, on the validation
and / or test split:

- ``lm``: n-gram language models of the given orders fitted on the training ids — add-k
  unigram, interpolated Kneser–Ney above (:mod:`seqlab.evaluation.lm_baselines`): loss (nats
  per token), perplexity and bits per character as charlm's ``val_bpc``. The whole split is
  scored, or with ``--windows N`` its first N·seq_len + 1 tokens — the ids charlm evaluates
  with ``eval_windows=N``;
- ``classify``: majority class and TF-IDF word 1–2-gram logistic regression with C chosen on
  validation (:mod:`seqlab.evaluation.baselines`);
- ``forecast``: seasonal naive and ARIMA from the task's rolling origins
  (:mod:`seqlab.evaluation.forecast_baselines`), metrics in original units.

Output: a table (one row per metric, one column per baseline), or with ``--json`` one object
``{"kind", "source", "baselines": {name: {metric: value}}}`` whose metric keys carry the task's
``val_`` / ``test_`` prefixes, so they line up with a run's ``final_metrics.json``::

    $ seqlab baseline lm --dataset shakespeare --split test
    $ seqlab baseline classify --dataset movie-reviews --json
    $ seqlab baseline forecast --dataset co2 --context 104 --horizon 13
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from seqlab.errors import ConfigError

__all__ = ["add_parser", "classify_baselines", "forecast_baselines", "lm_baselines"]

SPLITS = (("validation", "val"), ("test", "test"))
DATASET_KINDS = {"lm": ("text",), "classify": ("labelled-text",), "forecast": ("series", "anomaly")}
ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``seqlab baseline {lm,classify,forecast}``."""
    p = sub.add_parser(
        "baseline",
        parents=[common],
        help="score the standard baselines (n-gram LM, majority / logistic regression, naive / ARIMA)",
        description="Score the baselines of a task's data: the numbers a trained model must beat.",
    )
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    shared = argparse.ArgumentParser(add_help=False, parents=[common])
    shared.add_argument("--split", choices=["validation", "test", "all"], default="all")
    shared.add_argument("--json", action="store_true", help="print one JSON object")

    q = kinds.add_parser("lm", parents=[shared], help="unigram / bigram (n-gram) bits per character")
    source = q.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="a text dataset (default: the built-in corpus)")
    source.add_argument("--text", help="a UTF-8 text file (its tail --val-fraction held out)")
    source.add_argument("--tokens", help="a token directory from `seqlab data prepare tokens`")
    q.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe", "wordpiece", "unigram"])
    q.add_argument("--vocab-size", type=int, default=None)
    q.add_argument("--min-frequency", type=int, default=1)
    q.add_argument("--val-fraction", type=float, default=0.1)
    q.add_argument("--order", type=int, nargs="+", default=[1, 2], help="n-gram orders (default 1 2)")
    q.add_argument("--k", type=float, default=1.0, help="add-k pseudo-count of the unigram (1 = Laplace)")
    q.add_argument("--seq-len", type=int, default=128, help="window length in tokens (with --windows)")
    q.add_argument("--windows", type=int, default=None, help="score charlm's first N windows only")
    q.set_defaults(func=cmd_baseline)

    q = kinds.add_parser("classify", parents=[shared], help="majority class and TF-IDF logistic regression")
    source = q.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="a labelled-text dataset (default: movie-reviews)")
    source.add_argument("--table", help="a CSV / TSV / JSON Lines file with text and label columns")
    q.add_argument("--text-column", default="text")
    q.add_argument("--label-column", default="label")
    q.add_argument("--fractions", type=float, nargs="+", default=[0.8, 0.1, 0.1], help="table split")
    q.add_argument("--seed", type=int, default=0, help="seed of the table's split")
    q.set_defaults(func=cmd_baseline)

    q = kinds.add_parser("forecast", parents=[shared], help="seasonal naive and ARIMA (statsmodels)")
    source = q.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="a series dataset (default: airpassengers)")
    source.add_argument("--csv", help="a CSV with timestamp / value columns")
    q.add_argument("--timestamp", default=None, help="timestamp column of --csv (default: none)")
    q.add_argument("--values", nargs="+", default=None, help="value columns of --csv (default: all)")
    q.add_argument("--freq", default=None, help="sampling frequency of --csv, e.g. MS (sets the season)")
    q.add_argument("--fractions", type=float, nargs="+", default=[0.7, 0.15, 0.15], help="csv split")
    q.add_argument("--horizon", type=int, default=12)
    q.add_argument("--context", type=int, default=24, help="the model's context L (first origin ≥ L)")
    q.add_argument("--season", type=int, default=None, help="season m (default: from the frequency)")
    q.add_argument("--eval-stride", type=int, default=1)
    q.add_argument("--no-arima", action="store_true", help="skip ARIMA (it fits a few models)")
    q.set_defaults(func=cmd_baseline)


def _check_dataset(kind: str, name: str | None) -> None:
    """A ConfigError listing the datasets of ``kind`` when ``name`` is not one of them."""
    from seqlab.data.datasets import DATASETS

    if name is None:
        return
    choices = [n for n in DATASETS.names() if DATASETS.get(n).card.kind in DATASET_KINDS[kind]]
    if name not in choices:
        raise ConfigError(
            f"--dataset {name!r}: not a dataset for `baseline {kind}`; choose from: {', '.join(choices)}"
        )


def _splits(split: str) -> list[tuple[str, str]]:
    return [(s, p) for s, p in SPLITS if split in (s, "all")]


def lm_baselines(args: argparse.Namespace) -> tuple[str, dict[str, dict[str, Any]]]:
    """(source, {"unigram": {"val_bpc", "val_loss", "val_ppl", "val_tokens", "val_chars", ...}, ...})."""
    import torch

    from seqlab.data.datasets import load_dataset
    from seqlab.evaluation.lm_baselines import ngram_bpc
    from seqlab.tasks.charlm import CharLMTask, token_ends

    config = {  # a token directory brings its own tokenizer: the task rejects changed options
        "text": args.text,
        "dataset": args.dataset,
        "tokens": args.tokens,
        "seq_len": args.seq_len,
        "tokenizer": args.tokenizer,
        "vocab_size": args.vocab_size,
        "min_frequency": args.min_frequency,
        "val_fraction": args.val_fraction,
    }
    if args.windows is not None:
        config["eval_windows"] = args.windows
    task = CharLMTask(config)
    source = args.dataset or args.text or args.tokens or "built-in corpus"
    train = task.train_tokens.data if task.train_tokens is not None else task.train_data
    out: dict[str, dict[str, Any]] = {ORDER_NAMES.get(n, f"{n}-gram"): {"order": n} for n in args.order}
    for split, prefix in _splits(args.split):
        if split == "validation":
            ids, ends = task.val_data, task.val_ends
        else:
            test = load_dataset(args.dataset).get("test") if args.dataset else None
            if test is None:
                if args.split == "test":
                    raise ConfigError(f"--split test: {source} has no test split (only train and validation)")
                continue
            test_ids, spans = task.tokenizer.encode_with_offsets(test.text)
            ids, ends = torch.tensor(test_ids, dtype=torch.long), token_ends(spans)
        if args.windows is not None:  # charlm's evaluation: n non-overlapping windows of seq_len
            n = min(args.windows, (len(ids) - 1) // args.seq_len)
            ids = ids[: n * args.seq_len + 1]
        scores = ngram_bpc(train, ids, ends, task.tokenizer.vocab_size, args.order, args.k)
        for n, s in scores.items():
            out[ORDER_NAMES.get(n, f"{n}-gram")] |= {f"{prefix}_{k}": v for k, v in s.items()}
    tok = task.tokenizer
    return f"{source} ({tok.kind} tokenizer, V = {tok.vocab_size})", out


def classify_baselines(args: argparse.Namespace) -> tuple[str, dict[str, dict[str, Any]]]:
    """(source, {"majority": {...}, "logreg": {...}}) on the splits the classify task reads."""
    from seqlab.evaluation.baselines import majority_baseline, ngram_logreg_baseline
    from seqlab.tasks.classify import ClassifyTask

    config = {"dataset": args.dataset, "table": args.table, "split": args.fractions, "seed": args.seed}
    config |= {"text_column": args.text_column, "label_column": args.label_column}
    task = ClassifyTask(config)
    raw = task.raw
    if args.split == "test" and "test" not in raw:
        raise ConfigError(f"--split test: {task.config.source} has no test split")
    results = {"majority": majority_baseline(raw), "logreg": ngram_logreg_baseline(raw)}
    return task.config.source, results


def forecast_baselines(args: argparse.Namespace) -> tuple[str, dict[str, dict[str, Any]]]:
    """(source, {"seasonal-naive": {...}, "arima": {...}}) from the forecast task's rolling origins."""
    import numpy as np

    from seqlab.evaluation.forecast_baselines import arima_forecasts, seasonal_naive_forecasts
    from seqlab.tasks.forecast import ForecastTask, point_metrics

    config = {
        "dataset": args.dataset,
        "csv": args.csv,
        "timestamp": args.timestamp,
        "values": args.values,
        "freq": args.freq,
        "split": args.fractions,
        "horizon": args.horizon,
        "context": args.context,
        "season": args.season,
        "eval_stride": args.eval_stride,
    }
    task = ForecastTask(config)
    y_train, m, H = task.data.splits["train"].values, task.season, task.horizon
    chosen = _splits(args.split)
    origins = {split: task.origins(split) for split, _ in chosen}
    forecasts = {
        "seasonal-naive": {s: seasonal_naive_forecasts(task.data.values, o, H, m) for s, o in origins.items()}
    }
    if not args.no_arima:  # one fit on the training split, extended over all origins (sorted)
        every = np.concatenate(list(origins.values()))
        pieces = np.split(
            arima_forecasts(task.data, every, H, m), np.cumsum([len(o) for o in origins.values()])[:-1]
        )
        forecasts["arima"] = dict(zip(origins, pieces))
    out: dict[str, dict[str, Any]] = {name: {"season": m, "horizon": H} for name in forecasts}
    for name, by_split in forecasts.items():
        for split, prefix in chosen:
            truth = task.truth(origins[split])
            metrics = point_metrics(truth, by_split[split], y_train, m)
            out[name] |= {f"{prefix}_windows": len(origins[split])} | {
                f"{prefix}_{k}": v for k, v in metrics.items()
            }
    return args.csv or f"dataset {args.dataset or task.default_dataset!r}", out


RUNNERS = {"lm": lm_baselines, "classify": classify_baselines, "forecast": forecast_baselines}


def _keep(key: str, split: str) -> bool:
    """Keys of the chosen split, plus the settings without a split prefix (order, C, season...)."""
    prefixes = {"val", "test"}
    head = key.split("_", 1)[0]
    return head not in prefixes or split == "all" or head == dict(SPLITS)[split]


def cmd_baseline(args: argparse.Namespace) -> int:
    _check_dataset(args.kind, getattr(args, "dataset", None))
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # small problems: on a busy 2-core machine BLAS threads only spin (5 ARIMA fits: 15 s vs 0.2 s)
    with threadpool_limits(1):
        source, results = RUNNERS[args.kind](args)
    results = {name: {k: v for k, v in r.items() if _keep(k, args.split)} for name, r in results.items()}
    if args.json:
        print(json.dumps({"kind": args.kind, "source": source, "baselines": results}, default=str))
        return 0
    print(f"baseline {args.kind}: {source}")
    names = list(results)
    keys = list(
        dict.fromkeys(k for r in results.values() for k, v in r.items() if not isinstance(v, dict | list))
    )
    width = max(len(k) for k in keys)
    print(f"{'metric':{width}s}  " + "  ".join(f"{n:>14s}" for n in names))
    for key in keys:
        cells = [_cell(results[n].get(key)) for n in names]
        print(f"{key:{width}s}  " + "  ".join(f"{c:>14s}" for c in cells))
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)
