"""The comparison study behind ``seqlab compare``: which sequence architecture, and why — measured.

A study trains every selected model preset on every task of a preset at a **matched parameter
budget** (the non-embedding parameters, Kaplan et al. 2020: the widths are searched so every
model's blocks hold about ``target_params``) and a **matched budget** of training: the same
seconds of training each (``budget="time"``, ``train.time_budget``) or the same steps and so the
same tokens (``budget="steps"``; deterministic, so a resumed study equals an uninterrupted one).
Besides the trained runs, every model is measured on its own (:mod:`seqlab.evaluation.measure`):
training throughput and memory against sequence length, per-token decode latency against context
length, gradient flow over time, parameters and state size.

The study's directory::

    study.json                    what was asked (preset, models, tasks, widths, budget, environment)
    measure/<model>.json          the measurements of one model (skipped when present and unchanged)
    runs/<task>/<model>/seed-<s>/ one ``seqlab train`` run each (via :mod:`seqlab.evaluation.suite`)
    results.jsonl, table.md       the suite's records and table
    report.html|md|json, report/  the report (:mod:`seqlab.reports.study_report`)

Presets (``quick`` is the README's main job: ≤ 10 minutes on 2 cores):

=========  ================================================  ==========  =============  =====
preset     tasks                                             params      budget / run   seeds
=========  ================================================  ==========  =============  =====
quick      parity, charlm, classify, forecast                 ~50 k       12 s           1
standard   + copy, mqar                                       ~200 k      60 s           1
full       + selective-copy, even-pairs                       ~800 k      300 s          3
=========  ================================================  ==========  =============  =====
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from seqlab.errors import ConfigError
from seqlab.evaluation.measure import MeasureSettings
from seqlab.fileio import atomic_write_text, read_json_object

log = logging.getLogger(__name__)

STUDY_FILE = "study.json"
DEFAULT_MODELS = ("rnn", "lstm", "gru", "transformer", "slstm", "mlstm", "xlstm", "lstm-transformer")


@dataclass(frozen=True)
class StudyTask:
    """A task of the study: the run's task, the metric the table shows and what it stands for.

    ``data_kind`` says which ``--data`` file replaces its built-in data ("text", "table", "series").
    """

    task: str
    metric: str
    title: str
    unit: str
    higher_is_better: bool
    overrides: tuple[str, ...] = ()
    data_kind: str = ""


LENGTH_TEST = ("task.max_len=40", "task.test_min_len=41", "task.test_max_len=256", "task.test_per_length=4")
QUICK_TASKS = (
    StudyTask("parity", "test_acc", "parity, test lengths 41–256", "accuracy", True, LENGTH_TEST),
    StudyTask(
        "charlm", "val_bpc", "char-LM (Shakespeare)", "bits/char", False, ("task.eval_windows=128",), "text"
    ),
    StudyTask("classify", "test_acc", "sentiment (movie reviews)", "accuracy", True, (), "table"),
    StudyTask(
        "forecast", "test_mase", "forecast (CO₂), MASE", "MASE", False, ("task.dataset=co2",), "series"
    ),
)
MORE_TASKS = (
    StudyTask("copy", "test_acc", "delayed copy, longer than trained", "accuracy", True, ()),
    StudyTask("mqar", "test_acc", "MQAR recall (T 64, 4 pairs)", "accuracy", True, ("task.vocab_size=512",)),
)
FULL_TASKS = (
    StudyTask("selective-copy", "test_acc", "selective copy", "accuracy", True, LENGTH_TEST),
    StudyTask("even-pairs", "test_acc", "even pairs, test 41–256", "accuracy", True, LENGTH_TEST),
)


@dataclass
class StudyPreset:
    """What a study runs: tasks × models × seeds at ``target_params`` with a matched budget."""

    name: str
    tasks: list[StudyTask]
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    target_params: int = 50_000
    budget: str = "time"  # "time": train.time_budget seconds each; "steps": train.steps each
    seconds: float = 12.0
    steps: int = 300
    seeds: list[int] = field(default_factory=lambda: [0])
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    overrides: list[str] = field(default_factory=list)

    def budget_overrides(self) -> list[str]:
        """The train settings every run gets: the budget, no evaluation before the end, checkpoints."""
        if self.budget not in ("time", "steps"):
            raise ConfigError(f"budget: expected 'time' or 'steps', got {self.budget!r}")
        common = ["train.eval_every=0", "train.keep_best=false", "train.tensorboard=false"]
        if self.budget == "time":  # steps far beyond what the seconds allow: time decides
            return [
                f"train.time_budget={self.seconds:g}",
                "train.steps=1000000",
                "train.checkpoint_every=200",
                *common,
            ]
        return [f"train.steps={self.steps}", f"train.checkpoint_every={max(1, self.steps // 4)}", *common]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tasks"] = [asdict(t) for t in self.tasks]
        return out


def _quick() -> StudyPreset:
    return StudyPreset("quick", list(QUICK_TASKS))


def _standard() -> StudyPreset:
    measure = MeasureSettings(lengths=(64, 256, 1024, 4096), contexts=(128, 1024, 4096), repeats=5)
    return StudyPreset(
        "standard", [*QUICK_TASKS, *MORE_TASKS], target_params=200_000, seconds=60.0, measure=measure
    )


def _full() -> StudyPreset:
    measure = MeasureSettings(lengths=(64, 256, 1024, 4096), contexts=(128, 1024, 8192), repeats=7)
    tasks = [*QUICK_TASKS, *MORE_TASKS, *FULL_TASKS]
    return StudyPreset("full", tasks, target_params=800_000, seconds=300.0, seeds=[0, 1, 2], measure=measure)


PRESETS: dict[str, Callable[[], StudyPreset]] = {"quick": _quick, "standard": _standard, "full": _full}


def preset(name: str) -> StudyPreset:
    """A fresh copy of the named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown study preset {name!r}; choose from: {', '.join(PRESETS)}")
    return PRESETS[name]()


def select(study: StudyPreset, models: list[str] | None, tasks: list[str] | None) -> StudyPreset:
    """The preset restricted to ``models`` / ``tasks`` (by task name); unknown names list the choices."""
    from seqlab.evaluation.gradient_flow import sequence_presets

    if models is not None:
        known = sequence_presets()
        unknown = [m for m in models if m not in known]
        if unknown or not models:
            raise ConfigError(
                f"--models: unknown or unsuitable model {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"a study compares per-step sequence models: {', '.join(known)}"
            )
        study = replace(study, models=list(dict.fromkeys(models)))
    if tasks is not None:
        by_name = {t.task: t for t in (*QUICK_TASKS, *MORE_TASKS, *FULL_TASKS)}
        unknown = [t for t in tasks if t not in by_name]
        if unknown or not tasks:
            raise ConfigError(
                f"--tasks: unknown study task {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"choose from: {', '.join(by_name)}"
            )
        study = replace(study, tasks=[by_name[t] for t in dict.fromkeys(tasks)])
    return study


# -- a user's data file ---------------------------------------------------------------------------


def with_data(study: StudyPreset, path: Path) -> StudyPreset:
    """The study with ``path`` in place of the built-in data of the task that fits it.

    A ``.txt`` file (UTF-8 text) replaces the char-LM's text; a CSV / TSV whose columns are all
    numbers (a ``timestamp`` / ``date`` column aside) replaces the forecasting series; a CSV / TSV
    with a ``text`` and a ``label`` column replaces the sentiment data. The file is read here, so
    a wrong shape fails before any training (the task's loader then checks the rest).
    """
    if not path.is_file():
        raise ConfigError(f"--data {path}: no such file")
    kind, options = data_kind(path)
    tasks = [t for t in study.tasks if t.data_kind == kind]
    if not tasks:
        raise ConfigError(
            f"--data {path}: a {kind} file replaces the data of the study's "
            f"{ {'text': 'charlm', 'table': 'classify', 'series': 'forecast'}[kind] } task, which "
            f"--tasks left out (tasks: {', '.join(t.task for t in study.tasks)})"
        )
    changed = [
        replace(t, overrides=(*_drop_dataset(t.overrides), *options)) if t in tasks else t
        for t in study.tasks
    ]
    return replace(study, tasks=changed)


def data_kind(path: Path) -> tuple[str, tuple[str, ...]]:
    """("text" | "table" | "series", the task overrides that load ``path``)."""
    from seqlab.data.files import load_table

    suffix = path.suffix.lower()
    if suffix in (".txt", ".text", ".md"):
        return "text", (f"task.text={path}",)
    if suffix not in (".csv", ".tsv"):
        raise ConfigError(
            f"--data {path}: expected a .txt text file or a .csv / .tsv table, got {suffix or 'no suffix'!r}"
        )
    table = load_table(path, None, header=True, quoting=None)  # file:line errors for ragged rows
    header = [h.strip() for h in table.header or []]
    lowered = [h.lower() for h in header]
    if "text" in lowered and "label" in lowered:
        t, y = header[lowered.index("text")], header[lowered.index("label")]
        return "table", (f"task.table={path}", f"task.text_column={t}", f"task.label_column={y}")
    values = [i for i, h in enumerate(lowered) if h not in ("timestamp", "date", "time", "ds")]
    bad = next(
        ((header[i], row[i], line) for line, row in table.records for i in values if not _is_number(row[i])),
        None,
    )
    if not values or bad is not None:
        where = (
            f"column {bad[0]!r} holds {bad[1]!r} on line {bad[2]}"
            if bad
            else f"its columns: {', '.join(header)}"
        )
        raise ConfigError(
            f"--data {path}: a table must be a time series (every column a number, a timestamp/date "
            f"column aside) or labelled text (columns 'text' and 'label'); {where}"
        )
    stamps = [header[i] for i, h in enumerate(lowered) if i not in values]
    timestamp = (f"task.timestamp={stamps[0]}",) if stamps else ()
    return "series", (f"task.csv={path}", *timestamp)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell.strip() == ""  # a missing value: the forecast task's missing-value policy decides
    return True


DATA_KEYS = ("task.text=", "task.table=", "task.csv=")


def _drop_dataset(overrides: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(o for o in overrides if not o.startswith(("task.dataset=", "task.text=")))


# -- matched parameter budget ---------------------------------------------------------------------


@dataclass(frozen=True)
class Width:
    """A model preset scaled to the budget: its width and the ``--set`` overrides that give it."""

    model: str
    d_model: int
    overrides: tuple[str, ...]
    block_params: int  # parameters of the blocks and the final norm (no embedding, no head)


def width_overrides(model: str, d: int) -> tuple[str, ...]:
    """``--set`` overrides that scale preset ``model`` to width ``d``: every FFN width scales with
    it (d_ff · d / d₀, a multiple of 8), so the blocks keep the preset's shape."""
    from seqlab.models import MODELS

    base = MODELS.get(model)()
    d0 = base.get("d_model", 128)
    scale = lambda d_ff: max(8, round(d_ff * d / d0 / 8) * 8)  # noqa: E731
    out = [f"model.d_model={d}"]
    if base.get("d_ff", 0):
        out.append(f"model.d_ff={scale(base['d_ff'])}")
    for kind, ffn in base.get("ffn_by_type", {}).items():
        if ffn.get("d_ff", 0):
            out.append(f"model.ffn_by_type.{kind}.d_ff={scale(ffn['d_ff'])}")
    return tuple(out)


def block_params(model: str, overrides: tuple[str, ...]) -> int:
    """Parameters of the blocks + final norm of preset ``model`` under ``overrides``."""
    import torch

    from seqlab.models import build_model
    from seqlab.spec import IOSpec
    from seqlab.training.config import resolve_config

    config = resolve_config("charlm", model, None, list(overrides)).model
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        built = build_model(config, IOSpec(output_dim=8, vocab_size=8))
    return sum(p.numel() for name, p in built.named_parameters() if name.startswith(("blocks.", "norm.")))


def match_width(model: str, target: int, step: int = 8, largest: int = 2048) -> Width:
    """The width (a multiple of ``step``) whose block parameters come closest to ``target``
    (parameters grow with the width, so a bisection finds it)."""
    lo, hi = 1, largest // step
    count = lambda k: block_params(model, width_overrides(model, k * step))  # noqa: E731
    while lo < hi:  # the smallest k with count(k) >= target
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < target else (lo, mid)
    candidates = [k for k in (lo - 1, lo) if k >= 1]
    best = min(candidates, key=lambda k: abs(count(k) - target))
    overrides = width_overrides(model, best * step)
    return Width(model, best * step, overrides, block_params(model, overrides))


def matched_widths(models: list[str], target: int) -> dict[str, Width]:
    return {m: match_width(m, target) for m in models}


# -- the study file ---------------------------------------------------------------------------------


def study_record(study: StudyPreset, widths: dict[str, Width], environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "preset": study.to_dict(),
        "widths": {m: asdict(w) for m, w in widths.items()},
        "environment": environment,
    }


def read_study(directory: Path) -> dict[str, Any]:
    path = directory / STUDY_FILE
    study = read_json_object(path, ConfigError, f"{directory} is not a study directory (no {STUDY_FILE})")
    missing = [k for k in ("preset", "widths") if k not in study]
    if missing:
        raise ConfigError(f"{path}: not a study written by seqlab compare (no {', '.join(missing)})")
    return study


MAY_CHANGE = {"seconds", "steps", "budget", "measure"}  # a re-run trains longer / measures anew


def write_study(directory: Path, record: dict[str, Any]) -> None:
    """``study.json``. A study directory holds one study: a re-run may change how long runs train
    and what is measured (:data:`MAY_CHANGE`; the suite resumes runs with the new budget, changed
    measurements are taken again), anything else (models, tasks, widths, seeds, overrides) is an
    error that names what differs."""
    record = json.loads(json.dumps(record))  # tuples as lists, as read back
    path = directory / STUDY_FILE
    if path.is_file():
        old = read_study(directory)
        changed = [k for k in old["preset"].keys() | record["preset"].keys() if k not in MAY_CHANGE]
        changed = sorted(k for k in changed if old["preset"].get(k) != record["preset"].get(k))
        changed += ["widths"] if old.get("widths") != record["widths"] else []
        if changed:
            raise ConfigError(
                f"{directory} holds another study (it differs in {', '.join(changed)}); "
                "use another --out, or the same options to resume it"
            )
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


# -- running the study ------------------------------------------------------------------------------


def study_suite(study: StudyPreset, widths: dict[str, Width]) -> Any:
    """The suite of training runs: per-model widths and per-task settings as scoped overrides,
    the budget and the user's ``--set`` last."""
    from seqlab.evaluation.suite import Suite

    sets = [f"{m}:{o}" for m, w in widths.items() for o in w.overrides]
    sets += [f"{t.task}:{o}" for t in study.tasks for o in t.overrides]
    return Suite(
        tasks=[t.task for t in study.tasks],
        models=list(study.models),
        seeds=list(study.seeds),
        overrides=[*sets, *study.budget_overrides(), *study.overrides],
        metric=study.tasks[0].metric,
        name=f"compare-{study.name}",
        task_metrics={t.task: t.metric for t in study.tasks},
    )


def check_study(study: StudyPreset, suite: Any) -> None:
    """Everything that can be wrong before any work: names, every run's config, every task's data
    (each task is built once: a bad file names itself here, not an hour into the study)."""
    from seqlab.tasks import build_task
    from seqlab.training.config import resolve_config

    suite.check()
    for spec in suite.specs():
        resolve_config(spec.task, spec.model, None, list(spec.overrides))
    for t in study.tasks:
        spec = next(s for s in suite.specs() if s.task == t.task)
        config = resolve_config(spec.task, spec.model, None, list(spec.overrides))
        try:
            build_task(config.task.name, config.task.options, seed=config.train.seed)
        except ConfigError as err:  # say which task and which file the message is about
            files = [o.partition("=")[2] for o in t.overrides if o.startswith(DATA_KEYS)]
            raise ConfigError(f"task {t.task}{f' on {files[0]}' if files else ''}: {err}") from None


def measure_all(
    study: StudyPreset, widths: dict[str, Width], out: Path, report: Callable[[str], None]
) -> None:
    """``measure/<model>.json`` for every model that lacks an up-to-date one, one at a time."""
    from seqlab.evaluation.measure import measure_model

    settings = asdict(study.measure)
    for i, model in enumerate(study.models, start=1):
        path = out / "measure" / f"{model}.json"
        overrides = list(widths[model].overrides)
        old = _read(path)
        if (
            old
            and old.get("settings") == json.loads(json.dumps(settings))
            and old.get("overrides") == overrides
        ):
            report(f"measure [{i}/{len(study.models)}] {model}: measured earlier, skipped")
            continue
        report(f"measure [{i}/{len(study.models)}] {model}: throughput, memory, latency, gradient flow ...")
        result = measure_model(model, overrides, study.measure)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result, indent=1) + "\n")
        errors = [f"{k}: {result[k]['error']}" for k in ("speed", "memory") if "error" in result[k]]
        took = sum(result[k]["wall_s"] for k in ("speed", "memory"))
        report(
            f"measure [{i}/{len(study.models)}] {model}: " + ("; ".join(errors) or f"done in {took:.0f} s")
        )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_study(
    study: StudyPreset,
    out: str | Path,
    *,
    jobs: int = 2,
    report: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Check, measure, train and report a study into ``out`` (a re-run resumes it).

    Returns:
        ``{"suite": SuiteResult, "paths": {"html", "md", "json"}}``.
    """
    from seqlab.evaluation.suite import run_suite
    from seqlab.reports.environment import environment
    from seqlab.reports.study_report import write_study_report

    out = Path(out)
    # 1. widths at the parameter budget, the runs, and every check before any work
    report(f"matching widths to ~{study.target_params:,} block parameters ...")
    widths = matched_widths(study.models, study.target_params)
    suite = study_suite(study, widths)
    check_study(study, suite)
    write_study(out, study_record(study, widths, environment()))
    # 2. the measurements (one model at a time, all cores: timings undisturbed by training)
    measure_all(study, widths, out, report)
    # 3. the training runs (jobs in parallel; skip finished, resume interrupted)
    result = run_suite(suite, out, jobs=jobs, report=report)
    # 4. the report
    report("writing the report ...")
    paths = write_study_report(out)
    return {"suite": result, "paths": paths}
