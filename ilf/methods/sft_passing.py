"""SFT on the policy's own initial programs that pass their unit tests: what the tests alone give,
with no critique and no refiner (rejection sampling of one sample per task). Each training
sample's initial output runs in the task's sandbox; those that pass are the targets."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ilf.execution.programs import has_tests, run_training_tests
from ilf.methods.supervised import SupervisedMethod
from ilf.registry import METHODS

if TYPE_CHECKING:
    from ilf.config import RunConfig
    from ilf.costs import Asked
    from ilf.records import Sample
    from ilf.view import RunView


@METHODS.register(
    "sft_passing",
    help="Baseline for code: fine-tune on the policy's initial outputs that pass their unit tests (sandboxed); no feedback read.",
)
class SFTPassing(SupervisedMethod):
    target = "initial"

    def targets(self, run: RunView) -> dict[str, str] | None:
        initial = super().targets(run) or {}
        samples = [s for s in run.training_samples() if has_tests(s) and initial.get(s.id, "").strip()]
        results = run_training_tests(run.task, [(s, initial[s.id]) for s in samples])
        return {s.id: initial[s.id] for s, r in zip(samples, results) if r.passed}

    def _pairs(self, run: RunView) -> tuple[list[dict[str, str]], dict[str, int]]:
        from ilf.train.sft import training_pairs

        passing = self.targets(run) or {}
        samples = [dataclasses.replace(s, initial_output=passing[s.id]) for s in run.training_samples() if s.id in passing]
        pairs, counts = training_pairs(run.task, samples, "initial")
        return pairs, {**counts, "failing_left_out": len(run.training_samples()) - len(samples)}

    def feedback_asked(self, run: RunView, samples: list[Sample]) -> list[Asked]:
        from ilf.costs import asked

        return [asked(s.id, "executions", run.config.cost) for s in samples]  # each initial program run against its tests

    def seconds_per_sample(self, config: RunConfig) -> float:
        from ilf.costs import price

        return price(config.cost, "executions")
