"""Entity-level (span) precision / recall / F1 for BIO tags, as ``conlleval`` and ``seqeval`` compute it.

Tags are strings: ``"O"``, ``"B-TYPE"`` (begin) or ``"I-TYPE"`` (inside). An entity is a maximal span
(type, start, end) that starts at ``B-X``, or — the lenient conlleval rule, seqeval's default mode —
at an ``I-X`` that does not continue an ``X`` span (after ``O`` or another type). It continues through
following ``I-X`` tags. A predicted entity is correct only when type, start and end all match.
Token-level metrics are in :mod:`seqlab.metrics.classification`.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqlab.errors import ConfigError

Entity = tuple[str, int, int]  # (type, start, end) with end exclusive


def _split_tag(tag: str, where: str) -> tuple[str, str]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", "")``."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = str(tag).partition("-")
    if prefix not in ("B", "I") or not sep or not kind:
        raise ConfigError(f"{where}: tag {tag!r} is not BIO; expected 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, kind


def bio_entities(tags: Sequence[str], where: str = "tags") -> list[Entity]:
    """Entities of one tagged sentence as ``(type, start, end)``, end exclusive.

    Example: ``["B-PER", "I-PER", "O", "I-LOC", "B-LOC"]`` →
    ``[("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5)]`` (a stray ``I-LOC`` starts an entity).
    """
    entities: list[Entity] = []
    kind, start = "", -1  # the open entity, if start >= 0
    for i, tag in enumerate(tags):
        prefix, t = _split_tag(tag, f"{where}[{i}]")
        if start >= 0 and (prefix != "I" or t != kind):  # close the open entity
            entities.append((kind, start, i))
            start = -1
        if prefix != "O" and start < 0:  # B-X, or an I-X that does not continue an X
            kind, start = t, i
    if start >= 0:
        entities.append((kind, start, len(tags)))
    return entities


def _prf(tp: int, n_pred: int, n_true: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return {"precision": p, "recall": r, "f1": 2 * tp / (n_pred + n_true) if tp else 0.0}


def entity_f1(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """Micro-averaged entity precision / recall / F1 over sentences, and the same per entity type.

    P = |E_pred ∩ E_true| / |E_pred|,  R = |E_pred ∩ E_true| / |E_true|,  F1 = 2PR/(P+R)
    with E the sets of (sentence, type, start, end); 0 when a denominator is 0.

    Example: true [["B-PER", "I-PER", "O", "B-LOC"]], pred [["B-PER", "I-PER", "O", "B-ORG"]]
    → one of two entities right: P = R = F1 = 1/2; per_type PER f1 = 1, LOC f1 = 0, ORG f1 = 0.

    Returns:
        ``{"precision", "recall", "f1", "per_type": {type: {"precision", "recall", "f1", "support"}}}``
        where support is the number of true entities of that type.
    """
    if len(y_true) != len(y_pred):
        raise ConfigError(
            f"y_true and y_pred must have the same number of sentences, got {len(y_true)} and {len(y_pred)}"
        )
    true_set: set[tuple[int, str, int, int]] = set()
    pred_set: set[tuple[int, str, int, int]] = set()
    for s, (t, p) in enumerate(zip(y_true, y_pred)):
        if isinstance(t, str) or isinstance(p, str) or len(t) != len(p):
            raise ConfigError(f"sentence {s}: y_true and y_pred must be tag lists of the same length")
        true_set.update((s, *e) for e in bio_entities(t, f"y_true[{s}]"))
        pred_set.update((s, *e) for e in bio_entities(p, f"y_pred[{s}]"))
    out = _prf(len(true_set & pred_set), len(pred_set), len(true_set))
    per_type = {}
    for kind in sorted({e[1] for e in true_set | pred_set}):
        tk = {e for e in true_set if e[1] == kind}
        pk = {e for e in pred_set if e[1] == kind}
        per_type[kind] = {**_prf(len(tk & pk), len(pk), len(tk)), "support": len(tk)}
    return {**out, "per_type": per_type}
