"""The comparative table of a study and the "which to use" summary derived from its numbers.

The table has a row per model and a column per measured property, each with its unit:
block parameters, state size, the quality metric of every task, training throughput,
parallelism (throughput at the longest T over the shortest, tokens per step fixed), memory at
the longest T and its growth exponent, decode latency at the shortest and longest context and the
gradient ratio at initialisation.

The summary states only what the numbers say, by fixed rules with the thresholds below:
the best and runner-up of every task, the fastest trainer, which models keep their throughput as
T grows (parallel over time) and which lose it, whose memory grows faster than linearly, whose
per-token latency grows with the context, whose gradient vanishes, and the best mean rank.
"""

from __future__ import annotations

import math
from typing import Any

from seqlab.reports.document import Table

PARALLEL_KEEPS = 0.8  # throughput(T_max) / throughput(T_min) at or above: keeps its throughput
PARALLEL_LOSES = 0.5  # at or below: loses most of it (sequential steps, or attention's T² cost)
FLAT_LATENCY = 1.5  # latency(L_max) / latency(L_min) at or below: constant per-token cost
SUPERLINEAR = 1.3  # memory exponent above: faster than linear in T
VANISHING = 1e-3  # gradient ratio below: vanishing over the probe's T steps


def _ratio(values: dict[str, float] | None, first: str, last: str) -> float | None:
    if not values or first not in values or last not in values or not values[first]:
        return None
    return values[last] / values[first]


def derived(data: Any, model: str) -> dict[str, Any]:
    """The figures of one model the table and the summary share (None where not measured)."""
    s = data.study["preset"]["measure"]
    lengths, contexts = [str(n) for n in s["lengths"]], [str(n) for n in s["contexts"]]
    speed, memory = data.speed(model), data.memory(model)
    tps, mem, lat = speed.get("tokens_per_s"), memory.get("peak_mb"), speed.get("decode_s_per_token")
    mid = "256" if "256" in lengths else lengths[len(lengths) // 2]
    growth = _ratio(mem, lengths[0], lengths[-1])
    exponent = None
    if growth is not None and growth > 0:
        exponent = math.log(growth) / math.log(int(lengths[-1]) / int(lengths[0]))
    grad = speed.get("gradient_flow") or {}
    return {
        "block_params": speed.get("block_params"),
        "state_1": speed.get("state_floats_1"),
        "state_long": speed.get(f"state_floats_{s['contexts'][-1]}"),
        "tokens_per_s": (tps or {}).get(mid),
        "tps_length": int(mid),
        "parallelism": _ratio(tps, lengths[0], lengths[-1]),
        "memory_mb": (mem or {}).get(lengths[-1]),
        "memory_exponent": exponent,
        "latency_first_ms": None if not lat else 1000 * lat[contexts[0]],
        "latency_last_ms": None if not lat else 1000 * lat[contexts[-1]],
        "latency_growth": _ratio(lat, contexts[0], contexts[-1]),
        "gradient_ratio": grad.get("ratio"),
    }


def comparative_table(data: Any) -> Table:
    s = data.study["preset"]["measure"]
    L0, L1 = s["lengths"][0], s["lengths"][-1]
    C0, C1 = s["contexts"][0], s["contexts"][-1]
    tasks = data.tasks
    header = ["model", "block params", "state (floats, 1 token)", f"state (floats, {C1} tokens)"]
    header += [f"{t['task']}: {t['metric']} ({t['unit']})" for t in tasks]
    mid = derived(data, data.models[0])["tps_length"] if data.models else 256
    header += [
        f"train tokens/s (T={mid})",
        f"throughput kept (tokens/s T={L1} ÷ T={L0})",
        f"memory MB (T={L1}, B=1)",
        f"memory exponent (T={L0}→{L1})",
        f"decode ms/token (L={C0})",
        f"decode ms/token (L={C1})",
        f"gradient ratio ‖∂L/∂u_1‖/‖∂L/∂u_T‖ (T={s['grad_length']})",
    ]
    rows = []
    for m in data.models:
        d = derived(data, m)
        quality = [(data.record(t["task"], m) or {}).get("value") for t in tasks]
        rows.append(
            [m, d["block_params"], d["state_1"], d["state_long"], *quality]
            + [d[k] for k in ("tokens_per_s", "parallelism", "memory_mb", "memory_exponent")]
            + [d[k] for k in ("latency_first_ms", "latency_last_ms", "gradient_ratio")]
        )
    formats = [
        None,
        ",d",
        ",d",
        ",d",
        *[".4f"] * len(tasks),
        ",.0f",
        ".2f",
        ".2f",
        ".2f",
        ".3f",
        ".3f",
        ".2e",
    ]
    return Table("the comparative table", header, rows, formats, id="comparative-table")


def table_notes(data: Any) -> str:
    s = data.study["preset"]["measure"]
    return (
        "Quality columns: each task's final metric (the best seed). Throughput: one forward + "
        f"backward with {s['batch_tokens']:,} tokens per step; throughput kept ≈ 1: as fast per token "
        "at long T as at short T (a recurrence's steps run one after another; attention's cost per "
        "token grows with T). Memory exponent: log(memory ratio) / log(T ratio) — 1 linear, "
        "2 quadratic. Gradient ratio at initialisation on the adding problem. Medians of "
        f"{s['repeats']} timed calls after a warm-up; timings on a shared machine are noisy — "
        "compare ratios."
    )


def budget_text(preset: dict[str, Any]) -> str:
    budget = (
        f"the same {preset['seconds']:g} seconds of training"
        if preset["budget"] == "time"
        else f"the same {preset['steps']} training steps (the same tokens)"
    )
    return (
        f"Every model was scaled to about {preset['target_params']:,} parameters in its blocks "
        f"(embeddings and output head excluded) and given {budget} on every task."
    )


def _names(models: list[str]) -> str:
    return ", ".join(f"`{m}`" for m in models) if models else "none"


def which_to_use(data: Any) -> list[str]:
    """The summary's bullets, each one a statement the table's numbers support."""
    lines = [_task_line(data, t) for t in data.tasks]
    lines = [line for line in lines if line]
    d = {m: derived(data, m) for m in data.models}
    s = data.study["preset"]["measure"]
    fast = sorted((m for m in d if d[m]["tokens_per_s"]), key=lambda m: -d[m]["tokens_per_s"])
    if len(fast) >= 2:
        ratio = d[fast[0]]["tokens_per_s"] / d[fast[-1]]["tokens_per_s"]
        lines.append(
            f"**Training speed** (T={d[fast[0]]['tps_length']}): `{fast[0]}` is fastest at "
            f"{d[fast[0]]['tokens_per_s']:,.0f} tokens/s, {ratio:.1f}× the slowest, `{fast[-1]}`."
        )
    par = {m: d[m]["parallelism"] for m in d if d[m]["parallelism"] is not None}
    if par:
        keep = [m for m, p in par.items() if p >= PARALLEL_KEEPS]
        lose = [m for m, p in par.items() if p <= PARALLEL_LOSES]
        lines.append(
            f"**Throughput as T grows** (T {s['lengths'][0]} → {s['lengths'][-1]}, tokens per step fixed): "
            f"keep ≥ {PARALLEL_KEEPS:.0%} of it: {_names(keep)}; "
            f"drop to ≤ {PARALLEL_LOSES:.0%}: {_names(lose)}."
        )
    exps = {m: d[m]["memory_exponent"] for m in d if d[m]["memory_exponent"] is not None}
    if exps:
        steep = [m for m, e in exps.items() if e > SUPERLINEAR]
        low, high = min(exps.values()), max(exps.values())
        lines.append(
            f"**Memory of training**: grows with T with exponents {low:.2f}–{high:.2f}; "
            f"faster than linear (> {SUPERLINEAR}): {_names(steep)}."
        )
    growth = {m: d[m]["latency_growth"] for m in d if d[m]["latency_growth"] is not None}
    if growth:
        flat = [m for m, g in growth.items() if g <= FLAT_LATENCY]
        grows = [f"`{m}` ×{g:.1f}" for m, g in growth.items() if g > FLAT_LATENCY]
        lines.append(
            f"**Generation** (context {s['contexts'][0]} → {s['contexts'][-1]}): constant per-token cost "
            f"(≤ ×{FLAT_LATENCY}) for {_names(flat)}; growing for {', '.join(grows) or 'none'}."
        )
    grads = {m: d[m]["gradient_ratio"] for m in d if d[m]["gradient_ratio"] is not None}
    if grads:
        vanish = [m for m, g in grads.items() if g < VANISHING]
        lines.append(
            f"**Gradient flow at initialisation** (T={s['grad_length']}): the gradient reaching step 1 is "
            f"below {VANISHING:g} of the last step's for {_names(vanish)}; "
            f"largest ratio: `{max(grads, key=grads.get)}` ({max(grads.values()):.2e})."
        )
    lines += _rank_lines(data, growth)
    return lines


def _task_line(data: Any, t: dict[str, Any]) -> str:
    scores = {m: r["value"] for m in data.models if (r := data.record(t["task"], m)) is not None}
    if not scores:
        return ""
    order = sorted(scores, key=scores.get, reverse=t["higher_is_better"])
    shown = ", ".join(f"`{m}` {scores[m]:.4f}" for m in order[:3])
    worst = f"; last `{order[-1]}` {scores[order[-1]]:.4f}" if len(order) > 3 else ""
    return f"**{t['title']}** ({t['metric']}, {t['unit']}): {shown}{worst}."


def mean_ranks(data: Any) -> dict[str, float]:
    """Each model's mean rank (1 = best) over the tasks it finished."""
    ranks: dict[str, list[int]] = {m: [] for m in data.models}
    for t in data.tasks:
        scores = {m: r["value"] for m in data.models if (r := data.record(t["task"], m)) is not None}
        order = sorted(scores, key=scores.get, reverse=t["higher_is_better"])
        for rank, m in enumerate(order, start=1):
            ranks[m].append(rank)
    return {m: sum(r) / len(r) for m, r in ranks.items() if r}


def _rank_lines(data: Any, growth: dict[str, float]) -> list[str]:
    ranks = mean_ranks(data)
    if not ranks:
        return []
    best = min(ranks, key=ranks.get)
    order = ", ".join(f"`{m}` {r:.1f}" for m, r in sorted(ranks.items(), key=lambda kv: kv[1]))
    lines = [f"**Overall quality at this budget**: best mean rank over the tasks `{best}` ({order})."]
    flat = [m for m in ranks if growth.get(m, math.inf) <= FLAT_LATENCY]
    if flat and best not in flat:
        pick = min(flat, key=ranks.get)
        lines.append(
            f"**For long-context generation** (constant per-token cost): `{pick}`, the best mean rank "
            f"among {_names(flat)}."
        )
    return lines
