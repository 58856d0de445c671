"""The program world's simulated reviewer as a feedback source: it reads each initial program
against its task and names one problem, in one of several phrasings per kind of mistake
(``world.annotator_noise`` of its critiques unhelpful or misleading). Online methods (sdpo) score
their rollouts by the task's unit tests, run in the sandbox (the base class's ``reward``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilf import reads
from ilf.demo import programs
from ilf.execution.programs import run_completions, sandbox_for
from ilf.feedback import FeedbackSource
from ilf.records import Feedback, Output, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


@FEEDBACK_SOURCES.register(
    "reviewer",
    help="The program world's reviewer: names one mistake of each program (min written as max, a reversed subtraction, "
    "...) in several phrasings; world.annotator_noise of its critiques are unhelpful or misleading.",
)
class ProgramReviewer(FeedbackSource):
    def collect(self, run: RunView) -> tuple[list[Feedback], str]:
        reads.note_probe("constant", "ilf.demo.programs:VERSION")  # the world's tasks and flaws, as this code draws them
        reviewer = programs.Reviewer(noise=run.config.world.annotator_noise, seed=1000 + run.config.seed)
        outputs = {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
        samples = [s for s in run.samples() if s.id in outputs]
        tasks = {s.id: programs.task_from_sample(s) for s in samples}
        read = {s.id: programs.read_flaws(tasks[s.id], outputs[s.id]) for s in samples}
        # A program that is none of the weak programmer's variants may still be right (x + 3 for
        # 3 + x): the reviewer tries it before calling it wrong.
        unread = [s for s in samples if read[s.id] is None]
        for sample, result in zip(unread, run_completions(sandbox_for(run.task), [(s, outputs[s.id]) for s in unread])):
            if result.passed:
                read[sample.id] = frozenset()
        records = []
        for sample in samples:
            critique = reviewer.critique(tasks[sample.id], read[sample.id])
            records.append(
                Feedback(
                    sample_id=sample.id,
                    text=critique.text,
                    output=outputs[sample.id],
                    annotator="reviewer",
                    source="program-world",
                    feedback_class=critique.kind,
                    extra=critique.record(),
                )
            )
        return records, "the simulated reviewer"
