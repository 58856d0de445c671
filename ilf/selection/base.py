"""The selector interface: score every candidate of every item, then take the argmax."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.plugin import Plugin
from ilf.records import Refinements, Sample, Selection

if TYPE_CHECKING:
    from ilf.costs import Asked
    from ilf.view import RunView


@dataclass
class SelectionItem:
    """What a selector sees for one sample: the input, the critiqued output, the feedback, the candidates."""

    sample: Sample
    output: str | None
    feedback: str | None
    candidates: list[str]


class Selector(Plugin):
    """Scores candidates; higher is better. Subclasses implement ``score`` over all items at once,
    so work can be shared across samples (each distinct text embedded once, judge prompts batched).
    Built by ``from_config(run_config, task)``; settings of its own in ``Options``."""

    # Candidates scoring below this are unacceptable (a refinement that fails its tests): a sample
    # whose best candidate is one gets no selection and is left out of fine-tuning. None: any pick.
    min_score: float | None = None
    # Whether scoring reads the feedback: a method whose refinements ignore it and whose selector
    # does too (refine_no_feedback with a random pick) has consumed no critique.
    reads_feedback: bool = True
    # The kind of feedback scoring consumes of its own, counted per candidate in a method's
    # feedback cost (``cost.<kind>``): "executions" for a selector that runs every candidate.
    cost_unit: str | None = None

    @classmethod
    def seconds_per_sample(cls, config: Any) -> float:
        """Annotator-seconds scoring one sample's candidates costs, before it runs (what a budget buys)."""
        from ilf.costs import price

        return price(config.cost, cls.cost_unit) * config.refine.num_candidates if cls.cost_unit else 0.0

    @classmethod
    def feedback_asked(cls, refinements: list[Refinements], selections: list[Selection], cost: Any) -> list[Asked]:
        """The questions scoring asked of its own for these samples' refinements and selections
        (``ilf.costs``): by default ``cost_unit`` once per candidate."""
        from ilf.costs import asked

        if cls.cost_unit is None:
            return []
        return [asked(r.sample_id, cls.cost_unit, cost) for r in refinements for _ in r.candidates]

    @classmethod
    def models(cls, config: Any) -> list[Any]:
        """The models scoring reads (an LM judge, say), as configured: a study trains a ``pretrained``
        one before its cells, and a model that fails to load is named by its options key."""
        return []

    @classmethod
    def prepare(cls, run: RunView) -> None:
        """Before any stage of ``run`` runs: fetch what scoring will read from outside
        (people's picks, say) into the run directory, where the select stage reads it by content."""

    @classmethod
    def summary(cls, selections: list[Selection]) -> dict[str, Any]:
        """Counts for the select stage's summary beyond the common ones (who picked, say)."""
        return {}

    def use_run(self, run: RunView) -> None:
        """Before scoring in a run's select stage: the run, whose folder holds what ``prepare``
        fetched (people's picks, say)."""

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        raise NotImplementedError

    def finish(self, row: int, selection: Selection) -> Selection:
        """The picking selector's last word on item ``row``'s selection (a person's edited text,
        say); by default the selection as it is."""
        return selection


def argmax(scores: list[float]) -> int:
    """Index of the highest score; the earliest candidate wins a tie."""
    best = 0
    for index, value in enumerate(scores):
        if value > scores[best]:
            best = index
    return best
