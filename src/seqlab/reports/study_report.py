"""The report of a comparison study (``seqlab compare``; rewritten by ``seqlab report STUDY_DIR``).

It reads what the study left in its directory — ``study.json``, ``results.jsonl`` (the trained
runs' final metrics), ``measure/<model>.json`` and the runs themselves (for curves, samples,
attention maps and forecasts) — and writes ``report.html`` (self-contained), ``report.md`` and
``report.json`` next to them, the plots under ``report/``. Every number shown is a number of this
study; the summary is derived from them by the rules in :mod:`seqlab.reports.study_summary`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqlab.reports.document import Bullets, Code, Figure, Paragraph, Report, Section, Table, write_report
from seqlab.reports.study_plots import plot_attention, plot_forecasts, plot_lines, plot_loss_curves
from seqlab.reports.study_summary import budget_text, comparative_table, table_notes, which_to_use

log = logging.getLogger(__name__)

PLOTS = "report"


@dataclass
class StudyData:
    """Everything a study's report is made of."""

    directory: Path
    study: dict[str, Any]  # study.json
    records: list[dict[str, Any]]  # results.jsonl
    measures: dict[str, dict[str, Any]]  # model -> measure/<model>.json
    out: Path | None = None  # where the report goes (default: the study's directory)
    analysis: dict[str, Any] | None = None  # samples, attention, forecasts: computed once

    @property
    def plots(self) -> Path:
        return (self.out or self.directory) / PLOTS

    @property
    def models(self) -> list[str]:
        return self.study["preset"]["models"]

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return self.study["preset"]["tasks"]

    def record(self, task: str, model: str) -> dict[str, Any] | None:
        """The finished run of (task, model) with the best value over seeds, None if none finished."""
        runs = [r for r in self.records if r["task"] == task and r["model"] == model and r["status"] == "ok"]
        runs = [r for r in runs if isinstance(r.get("value"), int | float)]
        if not runs:
            return None
        spec = next(t for t in self.tasks if t["task"] == task)
        pick = max if spec["higher_is_better"] else min
        return pick(runs, key=lambda r: r["value"])

    def speed(self, model: str) -> dict[str, Any]:
        return self.measures.get(model, {}).get("speed", {})

    def memory(self, model: str) -> dict[str, Any]:
        return self.measures.get(model, {}).get("memory", {})


def load_study(directory: str | Path) -> StudyData:
    from seqlab.evaluation.study import read_study

    directory = Path(directory)
    study = read_study(directory)
    results = directory / "results.jsonl"
    records = (
        [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        if results.is_file()
        else []
    )
    measures = {}
    for model in study["preset"]["models"]:
        path = directory / "measure" / f"{model}.json"
        if path.is_file():
            measures[model] = json.loads(path.read_text())
    return StudyData(directory, study, records, measures)


def write_study_report(directory: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Build the report of the study in ``directory`` and write it there, or to ``out_dir``
    (report.html / .md / .json, plots under ``report/``)."""
    data = load_study(directory)
    data.out = Path(out_dir) if out_dir is not None else data.directory
    return write_report(build_study_report(data), data.out, stem="report")


def build_study_report(data: StudyData) -> Report:
    preset = data.study["preset"]
    table = comparative_table(data)
    sections = [
        Section("Which to use", [Bullets(which_to_use(data)), _caveat(data)]),
        Section("The comparative table", [table, Paragraph(table_notes(data))]),
        Section("Quality at a matched budget", _quality_blocks(data)),
        Section("Speed, memory and latency", _cost_blocks(data)),
        Section("Gradient flow", _gradient_blocks(data)),
        *_analysis_sections(data),
        Section("Setup", _setup_blocks(data)),
    ]
    budget = f"{preset['seconds']:g} s" if preset["budget"] == "time" else f"{preset['steps']} steps"
    subtitle = (
        f"preset {preset['name']}: {len(data.models)} models × {len(data.tasks)} tasks, "
        f"~{preset['target_params']:,} block parameters each, {budget} of training per run"
    )
    raw = {"study": data.study, "results": data.records, "measures": data.measures, "table": table.rows}
    return Report("seqlab comparison study", sections, subtitle, raw | {"analysis": _analysis_data(data)})


# -- quality ----------------------------------------------------------------------------------------


def _quality_blocks(data: StudyData) -> list[Any]:
    from seqlab.evaluation.plots import plot_by_length
    from seqlab.reports.plots import read_metrics_log

    blocks: list[Any] = []
    plots = data.plots
    for t in data.tasks:
        name = t["task"]
        rows, curves, by_length = [], {}, {}
        for model in data.models:
            r = data.record(name, model)
            if r is None:
                rows.append([model, None, None, None, "failed" if _failed(data, name, model) else "missing"])
                continue
            m = r["metrics"]
            rows.append([model, r["value"], m.get("step"), m.get("train_time_s"), r["run_dir"]])
            log_ = read_metrics_log(data.directory / r["run_dir"] / "metrics.jsonl")
            if log_.train:
                curves[model] = {
                    k: [float(x.get(k, float("nan"))) for x in log_.train] for k in ("step", "time_s", "loss")
                }
            if isinstance(m.get(f"{t['metric']}_by_length"), dict):
                by_length[model] = {int(n): float(a) for n, a in m[f"{t['metric']}_by_length"].items()}
        rows += _baseline_rows(data, name, t["metric"])
        better = "higher" if t["higher_is_better"] else "lower"
        blocks.append(Paragraph(f"**{t['title']}** — `{t['metric']}` ({t['unit']}, {better} is better)."))
        blocks.append(
            Table(
                f"{name}: {t['metric']}",
                ["model", f"{t['metric']} ({t['unit']})", "steps", "training time (s)", "run"],
                rows,
                [None, ".4f", ",d", ".1f", None],
            )
        )
        if curves:
            path = plot_loss_curves(curves, plots / f"loss_{name}.png", f"{name}: training loss")
            blocks.append(
                Figure(_rel(path, data), f"{name}: training loss against step and against training time")
            )
        if by_length:
            path = plots / f"accuracy_by_length_{name}.png"
            plot_by_length(by_length, path, f"{name}: accuracy by test length", window=5)
            blocks.append(
                Figure(_rel(path, data), f"{name}: accuracy against test length (trained on lengths ≤ 40)")
            )
    return blocks


BASELINES = {
    "naive": "seasonal naive (baseline)",
    "arima": "ARIMA (baseline)",
    "unigram": "unigram (baseline)",
    "bigram": "Kneser–Ney bigram (baseline)",
}


def _baseline_rows(data: StudyData, task: str, metric: str) -> list[list[Any]]:
    """Rows for the baselines a task reports next to the model (``<metric>_naive``, ...), from
    its first finished run (the same data for every model)."""
    r = next((x for x in data.records if x["task"] == task and x["status"] == "ok"), None)
    metrics = (r or {}).get("metrics") or {}
    return [
        [label, metrics[f"{metric}_{key}"], None, None, "(the task's own baseline)"]
        for key, label in BASELINES.items()
        if isinstance(metrics.get(f"{metric}_{key}"), int | float)
    ]


def _failed(data: StudyData, task: str, model: str) -> bool:
    return any(r["task"] == task and r["model"] == model and r["status"] == "failed" for r in data.records)


# -- costs --------------------------------------------------------------------------------------------


def _cost_blocks(data: StudyData) -> list[Any]:
    settings = data.study["preset"]["measure"]
    lengths, contexts = settings["lengths"], settings["contexts"]
    tps = {m: data.speed(m).get("tokens_per_s") for m in data.models}
    mem = {m: data.memory(m).get("peak_mb") for m in data.models}
    lat = {m: _ms(data.speed(m).get("decode_s_per_token")) for m in data.models}
    throughput = (
        "Training throughput: one forward + backward of a character LM with "
        f"{settings['batch_tokens']:,} tokens per step (B = tokens / T), so a model that computes "
        "all positions at once keeps its throughput as T grows and a recurrence, whose steps run "
        "one after another, loses it."
    )
    memory = (
        "Memory: the extra peak resident memory of one forward + backward at batch 1 "
        "(a process of its own per model)."
    )
    latency = "Generation: the median time of one decoding step (batch 1) after a prefill of L tokens."
    return [
        *_measured(
            data, "throughput", throughput, "training throughput", "tokens/s", "T", lengths, tps, ",.0f"
        ),
        *_measured(data, "memory", memory, "memory of a training step", "MB", "T", lengths, mem, ".2f"),
        *_measured(
            data, "latency", latency, "per-token decode latency", "ms/token", "L", contexts, lat, ".3f"
        ),
    ]


def _measured(
    data: StudyData,
    name: str,
    text: str,
    title: str,
    unit: str,
    axis: str,
    points: list[int],
    values: dict[str, dict[str, float] | None],
    fmt: str,
) -> list[Any]:
    """A paragraph, a table (a row per model, a column per T or L) and ``report/<name>.png``:
    the values against T or L, log-log for T (throughput, memory), log-x for L (latency)."""
    blocks: list[Any] = [Paragraph(text), _per_length_table(f"{title} ({unit})", axis, points, values, fmt)]
    series = {m: ([int(n) for n in v], list(v.values())) for m, v in values.items() if v}
    if series:
        xlabel = {"T": "sequence length T", "L": "context length L"}[axis]
        path = plot_lines(
            series, data.plots / f"{name}.png", title, xlabel, unit, logx=True, logy=axis == "T"
        )
        blocks.append(Figure(_rel(path, data), f"{title} against {axis}"))
    return blocks


def _ms(values: dict[str, float] | None) -> dict[str, float] | None:
    return None if values is None else {k: 1000 * v for k, v in values.items()}


def _per_length_table(caption: str, axis: str, lengths: list[int], values: dict[str, Any], fmt: str) -> Table:
    rows = [[m, *[(v or {}).get(str(n)) for n in lengths]] for m, v in values.items()]
    return Table(caption, ["model", *[f"{axis} = {n}" for n in lengths]], rows, [None, *[fmt] * len(lengths)])


# -- gradient flow --------------------------------------------------------------------------------------


def _gradient_blocks(data: StudyData) -> list[Any]:
    rows, series, length = [], {}, None
    for m in data.models:
        g = data.speed(m).get("gradient_flow")
        if not g:
            rows.append([m, None, None, None])
            continue
        length = g["length"]
        rows.append([m, g["g_first"], g["g_last"], g["ratio"]])
        series[m] = (list(range(1, len(g["curve"]) + 1)), [max(x, 1e-300) for x in g["curve"]])
    blocks: list[Any] = [
        Paragraph(
            f"A loss at the last step of the adding problem (T = {length}), at initialisation, in float64: "
            "the norm of its gradient at the first block's input at every step. ‖∂L/∂u_1‖ / ‖∂L/∂u_T‖ "
            "≪ 1 is the vanishing gradient (Bengio et al. 1994)."
        ),
        Table(
            "gradient flow at initialisation",
            ["model", "‖∂L/∂u_1‖", "‖∂L/∂u_T‖", "ratio"],
            rows,
            [None, ".3e", ".3e", ".3e"],
        ),
    ]
    if series:
        path = plot_lines(
            series,
            data.plots / "gradient_flow.png",
            "gradient norm over time",
            "step t",
            "‖∂L/∂u_t‖",
            logy=True,
        )
        blocks.append(Figure(_rel(path, data), "gradient norm at each step for a loss at the last step"))
    return blocks


# -- the trained models: samples, attention, forecasts ----------------------------------------------


def _analysis_data(data: StudyData) -> dict[str, Any]:
    """Samples, attention maps and forecasts from the finished runs (computed once per StudyData)."""
    if data.analysis is not None:
        return data.analysis
    from seqlab.evaluation.study_analysis import attention_maps, forecast_curves, lm_sample

    out: dict[str, Any] = {"samples": {}, "attention": None, "forecasts": {}, "errors": []}
    names = {t["task"] for t in data.tasks}
    for model in data.models:
        for task, kind, fn in (("charlm", "samples", lm_sample), ("forecast", "forecasts", forecast_curves)):
            r = data.record(task, model) if task in names else None
            if r is not None:
                try:
                    out[kind][model] = fn(data.directory / r["run_dir"])
                except Exception as err:  # a report shows what it can and says what failed
                    out["errors"].append(f"{kind} of {model}: {err}")
        r = data.record("charlm", model) if "charlm" in names else None
        if out["attention"] is None and r is not None and "attention" in _layer_types(data, r):
            maps = attention_maps(data.directory / r["run_dir"])
            out["attention"] = None if maps is None else maps | {"model": model}
    data.analysis = out
    return out


def _layer_types(data: StudyData, record: dict[str, Any]) -> list[str]:
    from seqlab.config import load_file

    config = load_file(data.directory / record["run_dir"] / "config.yaml")
    return list(config.get("model", {}).get("layer_types", []))


def _analysis_sections(data: StudyData) -> list[Section]:
    a = _analysis_data(data)
    plots, sections = data.plots, []
    if a["samples"]:
        blocks = [
            Paragraph("Sampled from each character LM (temperature 0.8, seed 0), after the same prompt.")
        ]
        blocks += [Code(s["text"], title=m) for m, s in a["samples"].items()]
        sections.append(Section("Samples", blocks))
    if a["attention"]:
        at = a["attention"]
        path = plot_attention(
            at["tokens"], at["blocks"], plots / "attention.png", f"{at['model']}: attention weights"
        )
        text = "".join(at["tokens"])
        sections.append(
            Section(
                "Attention",
                [
                    Paragraph(
                        f"The attention weights of `{at['model']}` (char-LM run) on the start of the "
                        "validation text: rows are queries, columns keys."
                    ),
                    Code(text, title="the text"),
                    Figure(_rel(path, data), f"{at['model']}: attention weights per block and head"),
                ],
            )
        )
    if a["forecasts"]:
        path = plot_forecasts(
            a["forecasts"], plots / "forecasts.png", "test split: forecasts against the actual series"
        )
        sections.append(
            Section(
                "Forecasts",
                [
                    Paragraph(
                        "Each model's forecasts on the test split from origins one horizon apart "
                        "(thin lines), against the series and the seasonal naive forecast."
                    ),
                    Figure(_rel(path, data), "forecast vs actual, a panel per model"),
                ],
            )
        )
    if a["errors"]:
        sections.append(Section("Analysis errors", [Bullets(a["errors"])]))
    return sections


# -- setup ------------------------------------------------------------------------------------------


def _setup_blocks(data: StudyData) -> list[Any]:
    from seqlab.config import load_file

    preset = data.study["preset"]
    widths = data.study["widths"]
    rows = [[m, w["d_model"], w["block_params"], " ".join(w["overrides"])] for m, w in widths.items()]
    blocks: list[Any] = [
        Paragraph(budget_text(preset)),
        Table(
            "model widths at the parameter budget",
            ["model", "d_model", "block parameters", "overrides"],
            rows,
            [None, "d", ",d", None],
        ),
        Code(json.dumps(preset, indent=2), title="the study (study.json)", language="json"),
    ]
    for model in data.models:
        r = next((x for x in data.records if x["model"] == model and x["status"] == "ok"), None)
        if r is not None:
            config = load_file(data.directory / r["run_dir"] / "config.yaml")
            text = json.dumps(config.get("model", {}), indent=1)
            blocks.append(
                Code(text, title=f"{model}: model config (as in {r['run_dir']}/config.yaml)", language="json")
            )
    blocks.append(
        Code(json.dumps(data.study.get("environment", {}), indent=2), title="environment", language="json")
    )
    failed = [r for r in data.records if r["status"] == "failed"]
    if failed:
        blocks.append(Bullets([f"{r['task']}/{r['model']}/seed-{r['seed']}: {r['error']}" for r in failed]))
    return blocks


def _caveat(data: StudyData) -> Paragraph:
    seeds = data.study["preset"]["seeds"]
    return Paragraph(
        f"{budget_text(data.study['preset'])} {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
        f"({', '.join(map(str, seeds))}); with one seed, differences of a few points are within "
        "run-to-run noise."
    )


def _rel(path: Path, data: StudyData) -> str:
    return str(path.relative_to(data.out or data.directory))
