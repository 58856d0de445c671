"""The control of execution feedback: each program is run against its own tests in the sandbox,
as the ``execution`` source does, but a failing program is given the interpreter's message about
*another* failing program of the round (a seeded derangement), and a passing one 'good'. What
survives is the verdict (it failed) and the form of the message; what it says about this
program is gone. A refiner that does as well with it as with its own feedback is not reading the
message's content (the input, what was returned, what was expected)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ilf.feedback.execution import ExecutionFeedback
from ilf.records import Feedback
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


def derangement(count: int, rng: random.Random) -> list[int]:
    """A permutation of range(count) with no fixed point (the identity for fewer than 2)."""
    if count < 2:
        return list(range(count))
    while True:
        order = list(range(count))
        rng.shuffle(order)
        if all(i != j for i, j in enumerate(order)):
            return order


@FEEDBACK_SOURCES.register(
    "execution_other",
    help="Control of execution feedback: each failing program gets the sandbox's message about another failing "
    "program of the round (seeded), a passing one 'good'.",
)
class ExecutionFeedbackOfAnother(ExecutionFeedback):
    def collect(self, run: RunView) -> tuple[list[Feedback], str]:
        records, _ = super().collect(run)
        failing = [i for i, r in enumerate(records) if r.feedback_class != "passed"]
        order = derangement(len(failing), random.Random(f"execution_other:{run.config.seed}"))
        shuffled = list(records)
        for position, index in enumerate(failing):
            other = records[failing[order[position]]]
            shuffled[index] = Feedback(
                sample_id=records[index].sample_id,
                text=other.text,
                output=records[index].output,
                annotator=records[index].annotator,
                source="execution_other",
                feedback_class=records[index].feedback_class,
                extra={**records[index].extra, "feedback_of": other.sample_id},
            )
        return shuffled, "the unit tests of other programs"
