"""Automatic feedback from running the code: each initial output is run against its sample's
unit tests in the task's sandbox (those the training side may see: ``task.options.training_tests``), and the critique says what failed ("The program fails:
AssertionError at `assert candidate(2) == 4`"), or "good" when it passes. The feedback class is
the verdict (passed, failed, timeout, memory_error) and the record keeps the result's details."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilf.execution.programs import execution_feedback, result_record, run_training_tests
from ilf.feedback import FeedbackSource
from ilf.records import Feedback, Output, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


@FEEDBACK_SOURCES.register(
    "execution",
    help="Run each output against its sample's unit tests (sandboxed): the failing test and error as text, 'good' when it passes.",
)
class ExecutionFeedback(FeedbackSource):
    critique_unit = "executions"

    def collect(self, run: RunView) -> tuple[list[Feedback], str]:
        outputs = {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
        samples = [s for s in run.samples() if s.id in outputs]
        results = run_training_tests(run.task, [(s, outputs[s.id]) for s in samples])
        records = [
            Feedback(
                sample_id=sample.id,
                text=execution_feedback(result),
                output=outputs[sample.id],
                annotator="unit tests",
                source="execution",
                feedback_class=result.status,
                extra={"execution": result_record(result)},
            )
            for sample, result in zip(samples, results)
        ]
        return records, "the unit tests"
