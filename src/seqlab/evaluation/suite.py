"""Run a grid of experiments — every (task, model, seed) its own ``seqlab train`` — and report it.

A :class:`Suite` names tasks, models, seeds and ``--set``-style overrides; :func:`run_suite` trains
each run as a subprocess (``jobs`` at a time, ``train.threads = cores // jobs`` each) and collects
the final metrics. The output directory::

    suite.json                      the suite as run (tasks, models, seeds, overrides)
    results.jsonl                   one record per run: status, final metrics or the error
    table.md                        task × model: the suite's metric, best and mean of seeds
    per_length_<task>.png           accuracy vs test length, one line per model
    runs/<task>/<model>/seed-<s>/   a ``seqlab train --out`` run directory, plus
        suite-run.json              what the suite asked of it (task, model, seed, overrides)
        train.log                   the subprocess's output

Overrides apply in order (later wins); ``NAME:key=value`` applies to one task or one model only,
e.g. ``copy:task.max_len=40``. The seed is set last (``train.seed``).

Re-running the same suite into the same directory resumes it:

* a finished run (``final_metrics.json``) asked for the same settings is skipped;
* an interrupted one (``config.yaml`` but no final metrics) continues with
  ``seqlab train --resume`` from its newest checkpoint;
* a finished run whose settings differ only in what a resume may change (``train.steps``, …:
  :data:`~seqlab.training.rundir.RESUME_MAY_CHANGE`) is resumed with the new settings;
  any other difference is an error before anything runs (choose another output directory);
* a run still held by another process (a killed suite leaves its trainers running) is an error.

Example: 2 tasks × 2 models × 2 seeds = 8 runs; the table cell (parity, lstm) with seeds at
test accuracy 0.98 and 0.62 reads ``98.0 / 80.0`` (best / mean, in %).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from seqlab.config import parse_override
from seqlab.errors import ConfigError
from seqlab.fileio import atomic_write_text

log = logging.getLogger(__name__)

SPEC_FILE = "suite-run.json"
LOG_FILE = "train.log"
LOCK_FILE = ".suite.lock"
PARENT_ENV = "SEQLAB_PARENT_PID"  # see seqlab.cli.main.die_with_parent
HEARTBEAT_S = 20.0  # a progress line of the runs in flight this often
LOCK_WAIT_S = 15.0  # a killed suite's trainers take a moment to end and release their runs
NOT_SETTINGS = {"train.threads"}  # chosen by the runner (cores // jobs): not part of what a run is


# -- what to run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run: a task, a model preset, a seed and the overrides that apply to it (in order)."""

    task: str
    model: str
    seed: int
    overrides: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.task}/{self.model}/seed-{self.seed}"

    @property
    def path(self) -> Path:
        """The run directory, relative to the suite's."""
        return Path("runs", self.task, self.model, f"seed-{self.seed}")

    def settings(self) -> dict[str, Any]:
        """``{"task.max_len": 40, ...}``: the overrides parsed, the last of a key winning."""
        parsed = (parse_override(text) for text in self.overrides)
        return {".".join(keys): value for keys, value in parsed if ".".join(keys) not in NOT_SETTINGS}


def split_scope(text: str) -> tuple[str, str]:
    """``"copy:task.max_len=40"`` -> ("copy", "task.max_len=40"); unscoped -> ("", text)."""
    key = text.partition("=")[0]
    if ":" in key:
        scope, _, rest = text.partition(":")
        return scope.strip(), rest
    return "", text


@dataclass
class Suite:
    """A grid of runs: ``tasks × models × seeds``, with overrides (global or ``NAME:``-scoped)."""

    tasks: list[str]
    models: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)
    metric: str = "test_acc"
    name: str = "custom"
    task_metrics: dict[str, str] = field(default_factory=dict)  # a task's own metric, else ``metric``

    def metric_for(self, task: str) -> str:
        return self.task_metrics.get(task, self.metric)

    def specs(self) -> list[RunSpec]:
        runs = []
        for task in self.tasks:
            for model in self.models:
                mine = [
                    rest for scope, rest in map(split_scope, self.overrides) if scope in ("", task, model)
                ]
                for seed in self.seeds:
                    runs.append(RunSpec(task, model, seed, (*mine, f"train.seed={seed}")))
        return runs

    def check(self) -> None:
        """Unknown task, model or scope names and empty selections fail here, naming the choices."""
        from seqlab.models import MODELS
        from seqlab.tasks import TASKS

        for kind, chosen, known in (
            ("task", self.tasks, TASKS.names()),
            ("model", self.models, MODELS.names()),
        ):
            if not chosen:
                raise ConfigError(
                    f"suite {self.name!r}: no {kind}s selected; choose from: {', '.join(known)}"
                )
            unknown = [n for n in chosen if n not in known]
            if unknown:
                raise ConfigError(
                    f"unknown {kind} {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}"
                )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: expected distinct integers, got {self.seeds}")
        names = set(TASKS.names()) | set(MODELS.names())
        for text in self.overrides:
            scope, rest = split_scope(text)
            if scope and scope not in names:
                raise ConfigError(f"--set {text!r}: {scope!r} is neither a task nor a model")
            parse_override(rest)  # KEY=VALUE shape

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("name", "tasks", "models", "seeds", "overrides", "metric", "task_metrics")
        }


# -- the long-range preset ---------------------------------------------------------------------------

CHOMSKY_TASKS = [
    "parity", "even-pairs", "cycle-navigation", "modular-arithmetic", "modular-arithmetic-brackets",
    "reverse-string", "duplicate-string", "stack-manipulation", "bucket-sort",
]  # fmt: skip
LONG_RANGE_TASKS = [*CHOMSKY_TASKS, "copy", "selective-copy", "adding", "mqar"]
LONG_RANGE_MODELS = ["rnn", "lstm", "gru", "transformer", "slstm", "mlstm", "xlstm"]
# A small CPU budget: the whole grid (13 tasks x 7 models, one seed) in about 50 minutes with
# --jobs 2 on 2 cores (measured per run, BENCHMARKS.md) — far below the paper's, so most cells stay
# near chance; --steps 600 (about 2.5 hours) is where the LSTM solves parity. No evaluation before
# the end (each one runs the whole test set); a checkpoint every 50 steps, so a kill loses little.
LONG_RANGE_BUDGET = [
    "train.steps=150", "train.eval_every=0", "train.checkpoint_every=50", "train.keep_best=false",
    "train.tensorboard=false",
]  # fmt: skip
TEST_PER_LENGTH = 2  # 460 test lengths x 2: each per-length point is noisy, the mean is not


def long_range_suite() -> Suite:
    """Delétang et al. 2022's protocol where a task has lengths: train on n ≤ 40, test every
    n in 41–500 (``TEST_PER_LENGTH`` strings each); ``adding`` and ``mqar`` keep their own
    settings (one test length T; MQAR's (T, KV pairs) = (64, 4), with a vocabulary of 512 instead
    of Zoology's 8192: an 8192-way softmax at every position is most of a CPU step, and the
    binding to learn is the same)."""
    from seqlab.tasks import TASKS
    from seqlab.tasks.lengths import LengthConfig

    lengths = []
    for task in LONG_RANGE_TASKS:
        if issubclass(getattr(TASKS.get(task), "Config", object), LengthConfig):
            sets = ("max_len=40", "test_min_len=41", "test_max_len=500", f"test_per_length={TEST_PER_LENGTH}")
            lengths += [f"{task}:task.{s}" for s in sets]
    sets = [*LONG_RANGE_BUDGET, *lengths, "mqar:task.vocab_size=512"]
    return Suite(LONG_RANGE_TASKS, LONG_RANGE_MODELS, [0], sets, name="long-range")


PRESETS: dict[str, Callable[[], Suite]] = {"long-range": long_range_suite}


def preset(name: str) -> Suite:
    if name not in PRESETS:
        raise ConfigError(f"unknown suite {name!r}; choose from: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()


# -- planning: skip, resume or start ------------------------------------------------------------------


@dataclass
class Job:
    spec: RunSpec
    run_dir: Path
    action: str  # "skip" | "resume" | "start"
    lock: Any = None  # the open lock file, held (with the subprocess) while the run trains


def plan(spec: RunSpec, run_dir: Path) -> str:
    """What to do with ``run_dir`` for ``spec``: "skip", "resume" or "start" (see the module doc)."""
    from seqlab.training.rundir import RESUME_MAY_CHANGE

    finished = (run_dir / "final_metrics.json").is_file()
    saved = _read_json(run_dir / SPEC_FILE)
    if saved is None:
        if finished or (run_dir / "config.yaml").is_file():
            raise ConfigError(
                f"{run_dir} holds a run the suite did not start (no {SPEC_FILE}); use another --out"
            )
        return "start"
    old = RunSpec(saved["task"], saved["model"], saved["seed"], tuple(saved["overrides"])).settings()
    new = spec.settings()
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    fixed = [k for k in changed if not (k.startswith("train.") and k[6:] in RESUME_MAY_CHANGE)]
    if fixed:
        changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in fixed)
        raise ConfigError(
            f"{run_dir} was run with other settings ({changes}); "
            "use another --out (a re-run may change only how long and how a run trains, e.g. train.steps)"
        )
    if finished and not changed:
        return "skip"
    return "resume" if (run_dir / "config.yaml").is_file() else "start"


def _lock(run_dir: Path) -> Any:
    """An exclusive, non-blocking lock on ``run_dir``; None if another process holds it."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a")  # noqa: SIM115 (held across the run, closed in _execute)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


# -- running ---------------------------------------------------------------------------------------


@dataclass
class SuiteResult:
    records: list[dict[str, Any]]
    counts: dict[str, int]  # trained / resumed / skipped / failed
    wall_s: float


def train_command(spec: RunSpec, run_dir: Path, action: str, threads: int) -> list[str]:
    """The ``seqlab train`` command line of one run (``--resume`` continues an interrupted one)."""
    where = ["--resume", str(run_dir)] if action == "resume" else ["--out", str(run_dir), "--overwrite"]
    sets = [f"train.threads={threads}", *spec.overrides]  # the user's train.threads, if any, wins
    cmd = [sys.executable, "-m", "seqlab", "train", "--task", spec.task, "--model", spec.model, *where]
    return cmd + ["--no-progress"] + [a for s in sets for a in ("--set", s)]


def run_suite(
    suite: Suite,
    out: str | Path,
    *,
    jobs: int = 1,
    cores: int | None = None,
    check: Callable[[RunSpec], None] | None = None,
    report: Callable[[str], None] = log.info,
) -> SuiteResult:
    """Run (or finish) every run of ``suite`` into ``out`` and write results, table and plots.

    Args:
        suite: what to run; checked (names, overrides) before anything starts.
        out: the suite's directory (created).
        jobs: runs in parallel; each trains with ``train.threads = max(1, cores // jobs)``.
        cores: CPU cores to share (default: those this process may use).
        check: called on every run before any starts, e.g. to resolve its config (a bad
            ``--set`` key then fails before training).
        report: receives one progress line per event (start, end, skip; with i/N, elapsed, ETA).

    Returns:
        The records (also in ``results.jsonl``), counts of trained/resumed/skipped/failed runs,
        and the wall time.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs: expected a positive integer, got {jobs}")
    suite.check()
    out, specs = Path(out), suite.specs()
    for spec in specs:
        if check is not None:
            check(spec)
    plans = [Job(s, out / s.path, "") for s in specs]
    for job in plans:
        job.action = plan(job.spec, job.run_dir)
    _lock_all([j for j in plans if j.action != "skip"])
    atomic_write_text(out / "suite.json", json.dumps(suite.to_dict(), indent=2) + "\n")
    threads = max(1, (cores or len(os.sched_getaffinity(0))) // jobs)
    runner = _Runner(out, suite, [j.spec.key for j in plans], report)
    for i, job in enumerate(j for j in plans if j.action == "skip"):
        runner.add(job, _record(job, suite.metric_for(job.spec.task), "skipped", 0.0, None))
        report(f"[{i + 1}/{len(plans)}] {job.spec.key}: finished earlier, skipped")
    runner.run([j for j in plans if j.action != "skip"], threads, jobs)
    records = [runner.records[j.spec.key] for j in plans if j.spec.key in runner.records]
    write_report(out, records, suite)
    counts = {k: sum(r["action"] == k for r in records) for k in ("trained", "resumed", "skipped")}
    counts["failed"] = sum(r["status"] == "failed" for r in records)
    return SuiteResult(records, counts, round(time.perf_counter() - runner.start, 2))


def _lock_all(jobs: list[Job], wait_s: float = LOCK_WAIT_S) -> None:
    busy, deadline = [], time.monotonic() + wait_s
    for job in jobs:
        job.lock = _lock(job.run_dir)
        while job.lock is None and time.monotonic() < deadline:
            time.sleep(0.25)
            job.lock = _lock(job.run_dir)
        if job.lock is None:
            busy.append(job.spec.key)
    if busy:
        for job in jobs:
            if job.lock is not None:
                job.lock.close()
        raise ConfigError(
            f"run(s) {', '.join(busy)} are being trained by another process (an earlier suite's "
            "trainers outlive it); wait for them to finish or stop them, then re-run"
        )


class _Runner:
    """Runs jobs in a thread pool (one subprocess each) and rewrites ``results.jsonl`` as they end
    (the runs done so far, in the suite's order)."""

    def __init__(self, out: Path, suite: Suite, keys: list[str], report: Callable[[str], None]) -> None:
        self.out, self.suite, self.keys, self.report = out, suite, keys, report
        self.total = len(keys)
        self.records: dict[str, dict[str, Any]] = {}
        self.procs: set[subprocess.Popen] = set()
        self.guard, self.stopping = threading.Lock(), False
        self.start = self.last_beat = time.perf_counter()
        self.running: dict[str, Path] = {}  # key -> run directory of the runs training now

    def add(self, job: Job, record: dict[str, Any]) -> None:
        self.records[job.spec.key] = record
        lines = "".join(json.dumps(self.records[k]) + "\n" for k in self.keys if k in self.records)
        atomic_write_text(self.out / "results.jsonl", lines)

    def run(self, todo: list[Job], threads: int, jobs: int) -> None:
        done, begin = len(self.records), time.perf_counter()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(self._execute, job, threads) for job in todo]
            try:
                for n, future in enumerate(_as_completed(futures, self._heartbeat), start=1):
                    job, record = future.result()
                    self.add(job, record)
                    elapsed = time.perf_counter() - begin
                    eta = elapsed / n * (len(todo) - n)
                    value = record["value"]
                    shown = f"{record['metric']} {value:.3f}" if isinstance(value, float) else record["error"]
                    self.report(
                        f"[{done + n}/{self.total}] {job.spec.key}: {record['status']} in "
                        f"{record['run_wall_s']:.0f} s ({shown}) · elapsed {_clock(elapsed)}, "
                        f"ETA {_clock(eta)}"
                    )
            except BaseException:  # Ctrl-C, SIGTERM or a bug: stop the trainers (checkpoints stay)
                pool.shutdown(wait=False, cancel_futures=True)
                with self.guard:
                    self.stopping = True
                    for proc in self.procs:
                        proc.terminate()
                raise

    def _heartbeat(self) -> None:
        """Every :data:`HEARTBEAT_S`, one line with the progress of each run training now."""
        now = time.perf_counter()
        if now - self.last_beat < HEARTBEAT_S:
            return
        self.last_beat = now
        with self.guard:
            running = dict(self.running)
        if running:
            done = len(self.records)
            parts = [f"{key} ({run_progress(path)})" for key, path in running.items()]
            self.report(f"[{done}/{self.total} done] training: " + "; ".join(parts))

    def _execute(self, job: Job, threads: int) -> tuple[Job, dict[str, Any]]:
        spec, run_dir = job.spec, job.run_dir
        saved = _read_json(run_dir / SPEC_FILE) or {}
        steps = _checkpoint_steps(run_dir)
        where = f" from step {max(steps)}" if job.action == "resume" and steps else ""
        self.report(f"start {spec.key} ({'resume' if job.action == 'resume' else 'train'}{where})")
        info = {"task": spec.task, "model": spec.model, "seed": spec.seed, "overrides": list(spec.overrides)}
        # the old settings' final metrics go before the new settings are recorded: a resume that
        # dies must not leave them looking like this run's (plan would then skip it)
        (run_dir / "final_metrics.json").unlink(missing_ok=True)
        atomic_write_text(run_dir / SPEC_FILE, json.dumps(info | {"wall_s": saved.get("wall_s", 0.0)}) + "\n")
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        env[PARENT_ENV] = str(os.getpid())  # the trainer ends with this process, even a killed one
        clock = time.perf_counter()
        try:
            with open(run_dir / LOG_FILE, "ab") as logfile:
                log_start = logfile.tell()  # the log is appended to: this invocation's part starts here
                cmd = train_command(spec, run_dir, job.action, threads)
                with self.guard:  # no new trainer once the suite is stopping
                    if self.stopping:
                        raise RuntimeError(f"{spec.key}: not started, the suite is stopping")
                    proc = subprocess.Popen(
                        cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env, pass_fds=(job.lock.fileno(),)
                    )
                    self.procs.add(proc)
                    self.running[spec.key] = run_dir
                code = proc.wait()
        finally:
            job.lock.close()
            with self.guard:
                self.running.pop(spec.key, None)
        wall = time.perf_counter() - clock
        atomic_write_text(
            run_dir / SPEC_FILE, json.dumps(info | {"wall_s": saved.get("wall_s", 0.0) + wall}) + "\n"
        )
        error = None if code == 0 else _last_error(run_dir / LOG_FILE, code, log_start)
        action = "resumed" if job.action == "resume" else "trained"
        return job, _record(job, self.suite.metric_for(spec.task), action, wall, error)


def _as_completed(futures: list[Future], tick: Callable[[], None] = lambda: None) -> Iterator[Future]:
    """Futures as they finish, waking every second (and calling ``tick``): a signal (Ctrl-C,
    SIGTERM) may be delivered to another thread, and the main thread runs Python's handler only
    once it wakes up."""
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
        tick()
        yield from finished


def run_progress(run_dir: Path) -> str:
    """ "step 450, 8.1 s" from the last training line of a run's ``metrics.jsonl`` ("starting"
    before the first one)."""
    try:
        with open(run_dir / "metrics.jsonl", "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return "starting"
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in record and "step" in record:
            return f"step {record['step']}, {record.get('time_s', 0):.0f} s"
    return "starting"


def _record(job: Job, metric: str, action: str, wall: float, error: str | None) -> dict[str, Any]:
    """One line of results.jsonl."""
    metrics = None if error else _read_json(job.run_dir / "final_metrics.json")
    if metrics is None and error is None:
        error = "the run ended without final_metrics.json"
    saved = _read_json(job.run_dir / SPEC_FILE) or {}
    s = job.spec
    return {
        "task": s.task,
        "model": s.model,
        "seed": s.seed,
        "run_dir": str(s.path),  # relative to the suite's directory
        "status": "failed" if error else "ok",
        "action": action,
        "run_wall_s": round(wall, 2),  # this invocation
        "wall_s": round(saved.get("wall_s", wall), 2),  # over every invocation (resumes add up)
        "metric": metric,
        "value": None if metrics is None else metrics.get(metric),
        "metrics": metrics,
        "error": error,
    }


def _checkpoint_steps(run_dir: Path) -> list[int]:
    root = run_dir / "checkpoints"
    names = root.iterdir() if root.is_dir() else []
    return [int(p.name[5:]) for p in names if p.name.startswith("step-") and p.name[5:].isdigit()]


def _last_error(path: Path, code: int, start: int = 0) -> str:
    """The last ``error:`` line (else the last line) that the trainer wrote from byte ``start`` on."""
    with open(path, "rb") as file:
        file.seek(start)
        text = file.read().decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    tail = errors[-1] if errors else (lines[-1] if lines else "(no output)")
    return f"exit status {code}: {tail}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


# -- the report ------------------------------------------------------------------------------------


def write_report(out: Path, records: list[dict[str, Any]], suite: Suite) -> list[Path]:
    """``table.md`` and, for every task whose runs report accuracy by length, ``per_length_<task>.png``."""
    from seqlab.evaluation.plots import plot_by_length
    from seqlab.fileio import atomic_write

    tasks: dict[str, Any] = {}  # one finished run's task per task name (a real-data task takes seconds)
    for r in records:
        if r["status"] == "ok" and r["task"] not in tasks:
            tasks[r["task"]] = _run_task(out / r["run_dir"])
    chance = {name: chance_level(task) for name, task in tasks.items()}
    paths = [out / "table.md"]
    atomic_write_text(
        paths[0],
        summary_table(
            records, suite.tasks, suite.models, suite.metric, chance, suite.name, suite.task_metrics
        ),
    )
    for name in suite.tasks:
        metric = suite.metric_for(name)
        curves = best_curves([r for r in records if r["task"] == name], suite.models, metric)
        if not curves:
            continue
        per_length = getattr(tasks[name].config, "test_per_length", 16)
        window = 1 if per_length >= 16 else (16 // per_length) | 1  # odd, so the average is centred
        title = f"{name}: {metric} by length (best of seeds)"
        path = out / f"per_length_{name}.png"
        atomic_write(path, partial(plot_by_length, curves, title=title, chance=chance[name], window=window))
        paths.append(path)
    return paths


def chance_level(task: Any) -> float | None:
    """The accuracy of guessing: the task's ``chance_accuracy`` if it declares one, else 1 / C for
    a length-generalisation task with C output classes (uniform guessing — where the labels are
    unbalanced, e.g. stack manipulation's end token, always guessing the majority scores more);
    None for other tasks (regression, MQAR's 8192-way recall)."""
    from seqlab.tasks.lengths import LengthGeneralisationTask

    declared = getattr(task, "chance_accuracy", None)
    if declared is not None:
        return float(declared)
    classes = task.io.output_dim
    return 1.0 / classes if isinstance(task, LengthGeneralisationTask) and classes > 1 else None


def best_curves(records: list[dict[str, Any]], models: list[str], metric: str) -> dict[str, dict[int, float]]:
    """model -> {length: accuracy} of its best seed (by ``metric``), for runs reporting
    ``<metric>_by_length`` (e.g. ``test_acc_by_length``); JSON's string lengths become ints."""
    curves = {}
    for model in models:
        runs = [r for r in records if r["model"] == model and r["status"] == "ok"]
        runs = [r for r in runs if isinstance(r["metrics"].get(f"{metric}_by_length"), dict)]
        if runs:
            score = lambda r: r["value"] if isinstance(r["value"], int | float) else float("-inf")  # noqa: E731
            best = max(runs, key=score)
            curves[model] = {int(n): float(a) for n, a in best["metrics"][f"{metric}_by_length"].items()}
    return curves


def summary_table(
    records: list[dict[str, Any]],
    tasks: list[str],
    models: list[str],
    metric: str,
    chance: dict[str, float | None] | None = None,
    name: str = "suite",
    task_metrics: dict[str, str] | None = None,
) -> str:
    """Markdown: a row per task, a column per model; each cell ``metric`` (a task's own metric
    from ``task_metrics``, in a column of its own) — accuracies in % — best / mean over the seeds
    that finished (one seed: its value), ``—`` where every seed failed, ``*`` where some did.

    Example: seeds at 0.98 and 0.62 -> ``98.0 / 80.0``; seeds at 2.31 and 2.45 bits per char
    (lower is better) -> ``2.310 / 2.380``.
    """
    task_metrics = task_metrics or {}
    seeds = ", ".join(map(str, sorted({r["seed"] for r in records})))
    head = f"best / mean over seeds {seeds}" if "," in seeds else f"seed {seeds}"
    lines = [
        f"# {name}: `{metric}` (%), {head}" if not task_metrics else f"# {name}: each task's metric, {head}",
        "",
        "Each run's final evaluation; for tasks with test lengths, the mean over those lengths of the "
        "per-length accuracy (Delétang et al. 2022). chance: 1/C, guessing uniformly among C classes. "
        "`—`: every seed failed, `*`: some did (errors below and in results.jsonl).",
        "",
        "| task | "
        + ("metric | " if task_metrics else "")
        + "test lengths | chance | "
        + " | ".join(models)
        + " |",
        "|---" * (len(models) + 3 + bool(task_metrics)) + "|",
    ]
    for task in tasks:
        m = task_metrics.get(task, metric)
        cells = [_cell([r for r in records if r["task"] == task and r["model"] == x], m) for x in models]
        level = (chance or {}).get(task)
        lines.append(
            f"| {task} | " + (f"`{m}` | " if task_metrics else "") + f"{_length_range(records, task, m)} | "
            f"{'' if level is None else f'{100 * level:.1f}'} | " + " | ".join(cells) + " |"
        )
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        lines += ["", "Failed runs:", ""] + [
            f"- {r['task']}/{r['model']}/seed-{r['seed']}: {r['error']}" for r in failed
        ]
    return "\n".join(lines) + "\n"


LOWER_IS_BETTER = {"loss", "bpc", "ppl", "mase", "mae", "rmse", "smape", "mse", "per", "wer"}


def lower_is_better(metric: str) -> bool:
    """``val_bpc``, ``test_mase``, ...: a metric named for an error or a cost."""
    return bool(set(metric.split("_")) & LOWER_IS_BETTER)


def _cell(runs: list[dict[str, Any]], metric: str = "acc") -> str:
    values = [r["value"] for r in runs if r["status"] == "ok" and isinstance(r["value"], int | float)]
    if not values:
        return "—"
    mark = "*" if len(values) < len(runs) else ""
    percent = metric.endswith("acc")
    scale, digits = (100, 1) if percent else (1, 3)
    best = (min if lower_is_better(metric) else max)(values) * scale
    mean = scale * sum(values) / len(values)
    return (f"{best:.{digits}f}" if len(runs) == 1 else f"{best:.{digits}f} / {mean:.{digits}f}") + mark


def _length_range(records: list[dict[str, Any]], task: str, metric: str) -> str:
    for r in records:
        by_length = (r["metrics"] or {}).get(f"{metric}_by_length") if r["task"] == task else None
        if isinstance(by_length, dict) and by_length:
            lengths = [int(n) for n in by_length]
            return f"{min(lengths)}–{max(lengths)}"
    return ""


def _run_task(run_dir: Path) -> Any:
    """The task of a finished run, rebuilt from its saved config (synthetic tasks: instant)."""
    from seqlab.config import load_file
    from seqlab.tasks import build_task
    from seqlab.training.config import ExperimentConfig

    config = ExperimentConfig.from_dict(load_file(run_dir / "config.yaml"))
    return build_task(config.task.name, config.task.options, seed=config.train.seed)
