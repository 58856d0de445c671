"""Feedback priced in annotator-seconds: what a method's training read, counted the same way for
every method, and what a person would have spent giving it.

A method lists the questions its training read, one ``Asked`` each (``Method.feedback_asked``: critiques,
comparisons, rankings, judgements, references, picks, edits, executions, oracle scores). Each kind
has a price per piece in ``cost.*`` (seconds). Where people gave the feedback in Label Studio, the
lead time it recorded for each annotation is what that piece cost instead (a record's
``lead_time``, or ``extra.lead_time``), and the share of seconds so measured is reported beside.
A ranking of k outputs costs k times ``cost.ranking``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ilf.config import CostConfig
    from ilf.records import Comparison

# the kind of feedback a cost column counts -> the ``cost.*`` key of its price per piece
PRICE_KEYS = {
    "critiques": "critique",
    "comparisons": "comparison",
    "rankings": "ranking",
    "judgements": "judgement",
    "references": "reference",
    "picks": "pick",
    "edits": "edit",
    "executions": "execution",
    "oracle_scores": "oracle_score",
}


def price(cost: CostConfig, kind: str) -> float:
    """Seconds one piece of ``kind`` costs (a ranking: per output ranked)."""
    key = PRICE_KEYS.get(kind)
    if key is None:
        raise ValueError(f"no price for feedback of kind {kind!r}: cost.* prices {', '.join(PRICE_KEYS)}")
    return float(getattr(cost, key))


def ranking_groups(comparisons: list[Comparison]) -> tuple[list[Comparison], dict[str, list[Comparison]]]:
    """Comparisons given one at a time, and those that came out of one ranking (``extra.ranking``
    names it), grouped by ranking."""
    single: list[Comparison] = []
    rankings: dict[str, list[Comparison]] = {}
    for c in comparisons:
        key = c.extra.get("ranking")
        if key is None:
            single.append(c)
        else:
            rankings.setdefault(str(key), []).append(c)
    return single, rankings


def _lead_time(record: Any) -> float | None:
    value = getattr(record, "lead_time", None)
    if value is None:
        value = (getattr(record, "extra", None) or {}).get("lead_time")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class Asked:
    """One question a person answered for one sample, and what it cost them."""

    sample_id: str
    kind: str
    seconds: float
    measured: bool = False  # the seconds are a lead time Label Studio recorded, not a price


def asked(sample_id: str, kind: str, cost: CostConfig, record: Any = None, pieces: int = 1) -> Asked:
    """The question behind a record, priced by its lead time where it has one, else ``pieces`` times its kind's price."""
    lead = _lead_time(record) if record is not None else None
    return Asked(sample_id, kind, lead, True) if lead is not None else Asked(sample_id, kind, pieces * price(cost, kind))


def comparisons_asked(comparisons: list[Comparison], cost: CostConfig) -> list[Asked]:
    """Comparisons given one at a time, one question each; a ranking's pairs, one question for the ranking."""
    single, rankings = ranking_groups(comparisons)
    items = [asked(c.sample_id, "comparisons", cost, c) for c in single]
    for pairs in rankings.values():
        items.append(asked(pairs[0].sample_id, "rankings", cost, pairs[0], int(pairs[0].extra.get("ranked") or 2)))
    return items


def summarise(items: list[Asked], trained: dict[str, int], cost: CostConfig) -> dict[str, float]:
    """A round's cost metrics: ``cost.<kind>`` (questions answered), ``seconds.<kind>``, their sum
    ``annotator_seconds`` and the share Label Studio measured (``measured_share``). ``trained``: the
    questions asked while training (SDPO's judgements), priced by kind."""
    counts: dict[str, int] = dict(trained)
    seconds = {kind: n * price(cost, kind) for kind, n in trained.items()}
    measured = 0.0
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
        seconds[item.kind] = seconds.get(item.kind, 0.0) + item.seconds
        measured += item.seconds if item.measured else 0.0
    total = sum(seconds.values())
    # whole seconds: a report shows a count as it is, seed by seed where seeds differ
    result: dict[str, float] = {f"cost.{kind}": n for kind, n in sorted(counts.items())}
    result.update({f"seconds.{kind}": int(round(value)) for kind, value in sorted(seconds.items())})
    result["annotator_seconds"] = int(round(total))
    if measured:
        result["measured_share"] = round(measured / total, 3)
    return result


__all__ = ["PRICE_KEYS", "Asked", "asked", "comparisons_asked", "price", "ranking_groups", "summarise"]
