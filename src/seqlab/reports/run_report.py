"""The report of one training run: ``seqlab report RUN_DIR``.

Reads what ``seqlab train --out RUN_DIR`` wrote (``config.yaml``, ``metrics.jsonl``,
``final_metrics.json``) and writes, by default into ``RUN_DIR/report/``:

    report.html                 self-contained page (figures embedded)
    report.md                   the same in Markdown (figures linked)
    report.json                 every table, raw and as displayed, plus the data behind them
    training_curves.png         loss against step and against training time
    accuracy_by_length.png      when the final metrics have accuracy per test length

A folder of its own keeps the report apart from the run's files (``--overwrite`` of the run
leaves it alone; ``rm -r RUN_DIR/report`` removes it all). A run still in progress (no
``final_metrics.json`` yet) is reported from its newest evaluation, and the report says so.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from seqlab.errors import RunDirError, SeqlabError
from seqlab.reports.document import Bullets, Code, Figure, Paragraph, Report, Section, Table, write_report
from seqlab.reports.environment import environment
from seqlab.reports.plots import (
    MetricsLog,
    length_curves,
    plot_length_accuracy,
    plot_training_curves,
    read_metrics_log,
)

log = logging.getLogger(__name__)

REPORT_DIR = "report"
CURVES_PNG = "training_curves.png"
LENGTH_PNG = "accuracy_by_length.png"


def write_run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the run's report and write it (see the module docstring for the files).

    Args:
        run_dir: a ``seqlab train --out`` directory.
        out_dir: where the report and its plots go; default ``RUN_DIR/report``.

    Returns:
        ``{"html", "md", "json"}`` paths, plus ``"figures"``: none, one or two PNG paths.
    """
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / REPORT_DIR
    report = build_run_report(run_dir, out)
    paths: dict[str, Any] = write_report(report, out)
    figures = [out / b.path for s in report.sections for b in s.blocks if isinstance(b, Figure)]
    return paths | {"figures": figures}


def build_run_report(run_dir: str | Path, report_dir: str | Path | None = None) -> Report:
    """The :class:`Report` of one run; its plots are written into ``report_dir`` (default
    ``RUN_DIR/report``), which the figure paths are relative to.

    Raises:
        RunDirError: ``run_dir`` has no ``config.yaml`` or an unreadable metrics file.
    """
    from seqlab.config import load_file

    # 1. read the run
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise RunDirError(f"{run} is not a run directory (no config.yaml)")
    report_dir = Path(report_dir) if report_dir is not None else run / REPORT_DIR
    config_text = (run / "config.yaml").read_text(encoding="utf-8")
    config = load_file(run / "config.yaml")
    metrics = read_metrics_log(run / "metrics.jsonl")
    final, finished = _final_metrics(run, metrics)
    task = str((config.get("task") or {}).get("name", "?"))
    # 2. plots, then the sections that show them
    figures = _figures(run, config, metrics, final, report_dir)
    env = environment()
    sections = [
        Section("Summary", _summary(run, config, metrics, final, finished)),
        Section("Final metrics", [_metrics_table(final, finished)]),
        Section("Training curves", figures or [Paragraph("No training steps were logged yet.")]),
        Section("Configuration", [Code(config_text, title="config.yaml", language="yaml")]),
        Section(
            "Environment",
            [
                Paragraph("Where this report was generated (not necessarily where the run trained)."),
                Table("Environment", ["item", "value"], [[k, v] for k, v in env.items()]),
            ],
        ),
    ]
    data = {
        "run_dir": str(run),
        "finished": finished,
        "config": config,
        "final_metrics": final,
        "curves": _curve_data(metrics),
        "events": metrics.events,
        "environment": env,
    }
    return Report(
        f"Run report: {run.name}", sections, subtitle=f"task `{task}` · {_model_text(config)}", data=data
    )


def _final_metrics(run: Path, metrics: MetricsLog) -> tuple[dict[str, Any], bool]:
    """(final metrics, True) from ``final_metrics.json``; else the newest evaluation, False."""
    path = run / "final_metrics.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8")), True
        except json.JSONDecodeError as err:
            raise RunDirError(f"{path} is not valid JSON: {err}") from None
    return (dict(metrics.evals[-1]) if metrics.evals else {}), False


def _model_text(config: dict[str, Any]) -> str:
    """``"sequence model (lstm × 2, d_model 128)"`` from the config's model section."""
    model = config.get("model") or {}
    arch = model.get("arch", "sequence")
    layers = model.get("layer_types") or []
    parts = []
    if layers:
        kinds = list(dict.fromkeys(layers))
        parts.append(", ".join(f"{k} × {layers.count(k)}" for k in kinds))
    if "d_model" in model:
        parts.append(f"d_model {model['d_model']}")
    return f"{arch} model" + (f" ({', '.join(parts)})" if parts else "")


def _headline_keys(task: str, final: dict[str, Any]) -> list[str]:
    """The task's primary metric and its other split, then the losses — those present."""
    from seqlab.tasks import TASKS

    try:
        primary = str(getattr(TASKS.get(task), "primary_metric", "val_loss"))
    except KeyError:  # a task this install does not know: still report the losses
        primary = "val_loss"
    name = primary.split("_", 1)[1] if primary.startswith(("val_", "test_")) else primary
    keys = [primary, f"val_{name}", f"test_{name}", "val_loss", "test_loss"]
    return [k for k in dict.fromkeys(keys) if _is_scalar(final.get(k))]


def _summary(
    run: Path, config: dict[str, Any], metrics: MetricsLog, final: dict[str, Any], finished: bool
) -> list[Any]:
    task = str((config.get("task") or {}).get("name", "?"))
    train = config.get("train") or {}
    last = metrics.train[-1] if metrics.train else {}
    start = next((e for e in metrics.events if e.get("event") == "start"), {})
    rows: list[list[Any]] = [
        ["task", task],
        ["model", _model_text(config)],
        ["parameters", final.get("params", start.get("params"))],
        ["steps", final.get("step", last.get("step"))],
        ["steps configured", train.get("steps")],
        ["training time (s)", final.get("train_time_s", last.get("time_s"))],
        ["throughput at the last logged step (tokens/s)", last.get("tokens_per_s")],
    ]
    rows += [[key, final[key]] for key in _headline_keys(task, final)]
    blocks: list[Any] = [
        Paragraph(
            f"Run `{run.name}` trained a {_model_text(config)} on task `{task}`"
            + (
                " (finished)."
                if finished
                else " — **not finished**: no final_metrics.json yet; "
                "the metrics below are its newest evaluation."
            )
        ),
        Table("Run summary", ["item", "value"], rows),
    ]
    notes = _notes(final, metrics)
    if notes:
        blocks.append(Bullets(notes))
    return blocks


def _notes(final: dict[str, Any], metrics: MetricsLog) -> list[str]:
    notes = []
    if final.get("stopped_early"):
        notes.append("Stopped early: the selection metric stopped improving (train.patience).")
    if final.get("out_of_time"):
        notes.append("Stopped by the time budget (train.time_budget).")
    if final.get("skipped_steps"):
        notes.append(f"{final['skipped_steps']} steps were skipped for non-finite loss or gradients.")
    for event in metrics.events:
        if event.get("event") == "resume":
            notes.append(f"Resumed at step {event.get('step')} from `{event.get('checkpoint', '?')}`.")
        elif event.get("event") == "nonfinite":
            notes.append(f"Step {event.get('step')}: {event.get('message', 'non-finite values')}")
    return notes


def _metrics_table(final: dict[str, Any], finished: bool) -> Table:
    rows = [[key, value] for key, value in final.items() if _is_scalar(value)]
    caption = "Final metrics" if finished else "Metrics of the newest evaluation"
    return Table(caption, ["metric", "value"], rows or [["(none)", None]])


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float)  # bools too: stopped_early, out_of_time


def _figures(
    run: Path, config: dict[str, Any], metrics: MetricsLog, final: dict[str, Any], out: Path
) -> list[Any]:
    task = str((config.get("task") or {}).get("name", "?"))
    blocks: list[Any] = []
    if plot_training_curves(metrics, out / CURVES_PNG, f"{task}: {run.name}") is not None:
        caption = "Loss against step and against training time: training loss (faint: as logged; "
        caption += "solid: moving average) and validation loss at each evaluation."
        blocks.append(Figure(CURVES_PNG, caption))
    curves = length_curves(final)
    if curves:
        chance = _chance(run)
        plot_length_accuracy(curves, out / LENGTH_PNG, f"{task}: {run.name}", chance)
        where = f"; chance {chance:.3g} dashed" if chance is not None else ""
        blocks.append(Figure(LENGTH_PNG, f"Accuracy by test length{where}."))
    return blocks


def _chance(run: Path) -> float | None:
    """The task's chance accuracy (rebuilding the task from the run's config: cheap for the
    length-generalisation tasks, the only ones with accuracy by length)."""
    from seqlab.config import load_file
    from seqlab.evaluation.suite import chance_level
    from seqlab.tasks import build_task
    from seqlab.training.config import ExperimentConfig

    try:
        config = ExperimentConfig.from_dict(load_file(run / "config.yaml"))
        chance = chance_level(build_task(config.task.name, config.task.options, seed=config.train.seed))
    except (SeqlabError, OSError) as err:  # e.g. a data file moved since: plot without chance
        log.warning("%s: no chance level for the length plot (%s)", run, err)
        return None
    return chance if chance is None or math.isfinite(chance) else None


def _curve_data(metrics: MetricsLog) -> dict[str, Any]:
    """The plotted numbers: training loss by step and time, validation loss by step."""
    return {
        "train": {
            key: [r.get(key) for r in metrics.train]
            for key in ("step", "time_s", "loss", "tokens_per_s", "lr")
        },
        "validation": {
            "step": [e["step"] for e in metrics.evals if "val_loss" in e],
            "val_loss": [e["val_loss"] for e in metrics.evals if "val_loss" in e],
        },
    }
