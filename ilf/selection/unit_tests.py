"""Keep the refinements that pass the sample's unit tests (Chen et al. 2023 train only on
refinements that pass).

Each candidate runs against its sample's tests in the task's sandbox. Passing candidates score 1,
failing ones 0; 1 is this selector's ``min_score``, so a sample with no passing refinement gets no
selection and is left out of fine-tuning (the select stage counts them). Passing candidates tie,
and the select step tells them apart by the first of ``selection.also_score`` (``embedding``,
say), else takes the first of them.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Literal

from ilf.config import RunConfig, option
from ilf.execution.programs import run_completions, sandbox_for
from ilf.execution.sandbox import Sandbox
from ilf.plugin import run_task
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector

log = logging.getLogger(__name__)

PASSED = 1.0


@dataclass
class UnitTestsOptions:
    tests: Literal["all", "visible"] = option(
        "all",
        "Which of a sample's tests a candidate must pass: all of them (extra.test), or only the visible ones "
        "(extra.visible_test, as MBPP shows some of its tests), so that the pick is no oracle of what pass@k runs.",
    )


def visible_only(sample: Any) -> Any:
    """The sample with its visible tests in place of all of them (an error naming it where it has none)."""
    extra = getattr(sample, "extra", {}) or {}
    if "visible_test" not in extra:
        raise ValueError(f"sample {sample.id!r} has no visible tests (extra.visible_test): selection_options.unit_tests.tests: all")
    return dataclasses.replace(sample, extra={**extra, "test": extra["visible_test"]})


@SELECTORS.register(
    "unit_tests",
    help="Refinements that pass the sample's unit tests (sandboxed); ties broken by the first of selection.also_score, "
    "else the first passing one; samples with none passing are left out of fine-tuning.",
)
class UnitTestsSelector(Selector):
    Options = UnitTestsOptions
    reads_feedback = False
    cost_unit = "executions"  # every candidate runs against its sample's tests
    min_score = PASSED

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> UnitTestsSelector:
        return cls(sandbox_for(run_task(config, task)), visible=cls.options(config).tests == "visible")

    def __init__(self, sandbox: Sandbox | None = None, visible: bool = False) -> None:
        self.sandbox = sandbox or sandbox_for(None)
        self.visible = visible

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        pick = visible_only if self.visible else (lambda sample: sample)
        flat = run_completions(self.sandbox, [(pick(item.sample), candidate) for item in items for candidate in item.candidates])
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
