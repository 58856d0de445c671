"""Keep the refinements that pass the sample's unit tests (Chen et al. 2023 train only on
refinements that pass).

Each candidate runs against its sample's tests in the task's sandbox (with ``task.options.training_tests:
visible``, only the visible ones, so the pick is no oracle of what pass@k runs). Passing candidates score 1,
failing ones 0; 1 is this selector's ``min_score``, so a sample with no passing refinement gets no
selection and is left out of fine-tuning (the select stage counts them). Passing candidates tie,
and the select step tells them apart by the first of ``selection.also_score`` (``embedding``,
say), else takes the first of them.
"""

from __future__ import annotations

import logging
from typing import Any

from ilf.config import RunConfig
from ilf.execution.programs import run_training_tests
from ilf.plugin import run_task
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector

log = logging.getLogger(__name__)

PASSED = 1.0


@SELECTORS.register(
    "unit_tests",
    help="Refinements that pass the sample's unit tests (sandboxed); ties broken by the first of selection.also_score, "
    "else the first passing one; samples with none passing are left out of fine-tuning.",
)
class UnitTestsSelector(Selector):
    reads_feedback = False
    cost_unit = "executions"  # every candidate runs against its sample's tests
    min_score = PASSED

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> UnitTestsSelector:
        return cls(run_task(config, task))

    def __init__(self, task: Any = None) -> None:
        self.task = task  # its sandbox, and which tests the training side may run (task.options.training_tests)

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        flat = run_training_tests(self.task, [(item.sample, candidate) for item in items for candidate in item.candidates])
        scores, start = [], 0
        for item in items:
            scores.append([PASSED if r.passed else 0.0 for r in flat[start : start + len(item.candidates)]])
            start += len(item.candidates)
        with_passing = sum(1 for row in scores if PASSED in row)
        log.info(
            "unit_tests: %d of %d candidates pass; %d of %d samples have one",
            sum(r.passed for r in flat),
            len(flat),
            with_passing,
            len(items),
        )
        return scores
