"""Keep the refinements that pass the sample's unit tests (Chen et al. 2023 train only on
refinements that pass).

Each candidate runs against its sample's tests in the task's sandbox. Passing candidates score
1 plus a tie-break below 0.5; failing ones score below 1, which is this selector's ``min_score``,
so a sample with no passing refinement gets no selection and is left out of fine-tuning (the
select stage counts them). Ties among passing candidates are broken by the first other selector
of ``selection.also_score`` (``embedding``, say), else at random (``selection.seed``); only
passing candidates are shown to it.
"""

from __future__ import annotations

import logging
from typing import Any

from ilf.config import ModelConfig, SelectionConfig
from ilf.execution.programs import run_completions, sandbox_for
from ilf.execution.sandbox import Sandbox
from ilf.registry import SELECTORS
from ilf.selection import build_selector
from ilf.selection.base import SelectionItem, Selector
from ilf.selection.random_choice import RandomSelector

log = logging.getLogger(__name__)

PASSED = 1.0
TIE_BREAK_SPAN = 0.5


def rank_fractions(scores: list[float]) -> list[float]:
    """Each score's rank among ``scores`` as a fraction in [0, 1): the lowest 0, ties equal."""
    ordered = sorted(set(scores))
    return [ordered.index(s) / len(scores) for s in scores]


@SELECTORS.register(
    "unit_tests",
    help="Refinements that pass the sample's unit tests (sandboxed); ties broken by the first of selection.also_score, "
    "else at random; samples with none passing are left out of fine-tuning.",
)
class UnitTestsSelector(Selector):
    name = "unit_tests"
    min_score = PASSED

    @classmethod
    def from_config(cls, config: SelectionConfig, judge: ModelConfig, task: Any) -> UnitTestsSelector:
        others = [name for name in config.also_score if name != cls.name]
        tie_breaker = build_selector(others[0], config, judge, task) if others else RandomSelector(config.seed)
        return cls(sandbox_for(task), tie_breaker)

    def __init__(self, sandbox: Sandbox | None = None, tie_breaker: Selector | None = None) -> None:
        self.sandbox = sandbox or sandbox_for(None)
        self.tie_breaker = tie_breaker or RandomSelector()

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        pairs = [(item.sample, candidate) for item in items for candidate in item.candidates]
        flat = run_completions(self.sandbox, pairs)
        results: list[list[Any]] = []
        start = 0
        for item in items:
            results.append(flat[start : start + len(item.candidates)])
            start += len(item.candidates)

        passing = [[c for c, r in zip(item.candidates, rs) if r.passed] for item, rs in zip(items, results)]
        with_passing = [i for i, texts in enumerate(passing) if texts]
        ties: dict[int, list[float]] = {}
        if with_passing:
            subset = [
                SelectionItem(sample=items[i].sample, output=items[i].output, feedback=items[i].feedback, candidates=passing[i])
                for i in with_passing
            ]
            for i, row in zip(with_passing, self.tie_breaker.score(subset)):
                ties[i] = rank_fractions(row)
        scores = []
        for i, (item, rs) in enumerate(zip(items, results)):
            tie = iter(ties.get(i, []))
            scores.append([PASSED + TIE_BREAK_SPAN * next(tie) if r.passed else 0.0 for r in rs])
        passed = sum(r.passed for r in flat)
        log.info("unit_tests: %d of %d candidates pass; %d of %d samples have one", passed, len(flat), len(with_passing), len(items))
        return scores
