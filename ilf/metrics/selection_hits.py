"""The facts world's view of a feedback round: did the refiner and each selector do what the
feedback asked?

Over actionable feedback (a missing, wrong or superfluous fact): the refiner's incorporation rate
(share of all refinements that do it), the share of samples where at least one of the N does it,
and each selector's hit rate (its pick does it), overall and by kind of feedback. Every selector
that scored the candidates (``selection.method`` and ``selection.also_score``) gets a rate.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from ilf.demo import world
from ilf.metrics import Metric
from ilf.records import Feedback, read_records
from ilf.registry import METRICS
from ilf.selection import argmax

if TYPE_CHECKING:
    from ilf.view import RunView

ACTIONABLE = ("missing", "wrong", "extra")
KINDS = ("missing", "wrong", "extra", "misleading")


@METRICS.register(
    "selection_hits", help="Facts world: refiner incorporation rate and each selector's hit rate, overall and by feedback kind."
)
class SelectionHits(Metric):
    def score_round(self, run: RunView) -> dict[str, Any]:
        if "select" not in run.stages:
            return {}
        feedback = {f.sample_id: f for f in read_records(run.paths.feedback, Feedback)}
        rows = []
        for selection in run.selections():
            record = feedback.get(selection.sample_id)
            if record is None:
                continue
            asked = world.SimulatedFeedback.from_record(record.text, record.extra)
            texts = [c.text for c in selection.candidates]
            # what each selector alone would pick; the picking selector's is what was trained on, its ties broken as select() broke them
            picks = {name: texts[argmax([c.scores[name] for c in selection.candidates])] for name in selection.candidates[0].scores}
            picks[selection.selector] = selection.text
            rows.append((asked, texts, picks))
        if not rows:
            return {}
        result: dict[str, Any] = {"feedback.actionable_share": sum(a.kind in ACTIONABLE for a, _, _ in rows) / len(rows)}
        for kind in ("all", *KINDS):
            chosen = [r for r in rows if (r[0].kind in ACTIONABLE if kind == "all" else r[0].kind == kind)]
            if not chosen:
                continue
            suffix = "" if kind == "all" else f".{kind}"
            result[f"feedback.n{suffix}"] = len(chosen)
            result[f"hit.any_candidate{suffix}"] = statistics.fmean(any(world.carries(a, t) for t in texts) for a, texts, _ in chosen)
            if kind == "all":
                result["refiner.incorporation"] = statistics.fmean(world.carries(a, t) for a, texts, _ in chosen for t in texts)
            for name in chosen[0][2]:
                result[f"hit.{name}{suffix}"] = statistics.fmean(world.carries(a, picks[name]) for a, _, picks in chosen)
        return result
