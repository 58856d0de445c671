"""Feedback priced in annotator-seconds: what a method's training read, counted the same way for
every method, and what a person would have spent giving it.

A method counts the feedback its training read by kind (``Method.feedback_cost``: critiques,
comparisons, rankings, judgements, references, picks, edits, executions, oracle scores). Each kind
has a price per piece in ``cost.*`` (seconds). Where people gave the feedback in Label Studio, the
lead time it recorded for each annotation is what that piece cost instead (a record's
``lead_time``, or ``extra.lead_time``), and the share of seconds so measured is reported beside.
A ranking of k outputs costs k times ``cost.ranking``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ilf.records import Feedback, Selection, read_records

if TYPE_CHECKING:
    from ilf.config import CostConfig
    from ilf.records import Comparison
    from ilf.view import RunView

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


def _priced(records: list[Any], each: float) -> tuple[float, float]:
    """(seconds, of which measured): a record's lead time where it has one, else ``each``."""
    total = measured = 0.0
    for record in records:
        lead = _lead_time(record)
        if lead is None:
            total += each
        else:
            total += lead
            measured += lead
    return total, measured


def annotation_seconds(run: RunView, counts: dict[str, int]) -> dict[str, float]:
    """``seconds.<kind>`` for every kind counted, their sum ``annotator_seconds`` and the share of it
    that Label Studio measured (``measured_share``). Critiques, comparisons, rankings, picks and edits
    are priced record by record (a measured lead time where there is one); every other kind is its
    count times its price."""
    cost = run.config.cost
    ids = {s.id for s in run.training_samples()}
    seconds: dict[str, float] = {}
    measured_total = 0.0
    for kind, count in counts.items():
        if kind == "critiques" and run.paths.feedback.exists():
            records = [f for f in read_records(run.paths.feedback, Feedback) if f.sample_id in ids][:count]
            spent, measured = _priced(records, price(cost, kind))
            spent += (count - len(records)) * price(cost, kind)
        elif kind in ("comparisons", "rankings") and run.paths.comparisons.exists():
            single, rankings = ranking_groups(run.comparisons())
            if kind == "comparisons":
                spent, measured = _priced(single, price(cost, kind))
            else:
                spent = measured = 0.0
                for pairs in rankings.values():
                    size = int(pairs[0].extra.get("ranked") or 2)
                    lead = _lead_time(pairs[0])
                    spent += lead if lead is not None else size * price(cost, kind)
                    measured += lead or 0.0
        elif kind in ("picks", "edits") and run.paths.selected.exists():
            edited = kind == "edits"
            records = [
                s
                for s in read_records(run.paths.selected, Selection)
                if s.sample_id in ids and s.extra.get("picked_by") == "human" and bool(s.extra.get("edited")) == edited
            ]
            spent, measured = _priced(records, price(cost, kind))
        else:
            spent, measured = count * price(cost, kind), 0.0
        seconds[kind] = spent
        measured_total += measured
    total = sum(seconds.values())
    # whole seconds: a report shows a count as it is, seed by seed where seeds differ
    result: dict[str, float] = {f"seconds.{kind}": int(round(value)) for kind, value in sorted(seconds.items())}
    result["annotator_seconds"] = int(round(total))
    if measured_total:
        result["measured_share"] = round(measured_total / total, 3)
    return result


__all__ = ["PRICE_KEYS", "annotation_seconds", "price", "ranking_groups"]
