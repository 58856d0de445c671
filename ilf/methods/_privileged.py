"""What the self-distillation teachers (sdft, sdpo) see beyond the student's prompt: the earlier
output and its critique, from the same feedback records ILF refines with.

TRL's trainers build the teacher's prompt from a template over ``{prompt}`` (the student's) and a
per-row ``privileged_context``. The natural teacher of this framework is the model as it reads
the task's own refinement prompt, which already holds the input, the earlier output and the
feedback: where that prompt extends the student's prompt (the facts world: "post : ... summary :"
then " <output> feedback : <critique> improved :") or ends with it (the code task: "OLD CODE ...
FEEDBACK ... REFINEMENT:\\n<prompt>"), the difference is the privileged context and the teacher
is exactly ILF's refiner prompt. Tasks whose refinement prompt is laid out otherwise (the
summarization task's instruction comes first) get the context form: the critique stated before
the student's prompt, in words (``context_text``), so the completion still follows the prompt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.config import RunConfig
from ilf.methods import Method
from ilf.records import Feedback, Output, Sample, read_records

if TYPE_CHECKING:
    from ilf.view import RunView

log = logging.getLogger(__name__)

TEACHERS = ("auto", "refine", "context")
_SENTINEL = "\x00ATTEMPT\x00"


@dataclass
class PrivilegedRows:
    rows: list[dict[str, str]]  # prompt, privileged_context, sample_id
    template: str  # how TRL joins them: "{prompt}{privileged_context}", "{privileged_context}{prompt}", ...
    form: str  # refine or context: which teacher the rows were built for
    prompt_first: bool  # whether the student's prompt opens the teacher's prompt
    samples: dict[str, Sample]


def _split(whole: str, prompt: str) -> tuple[str, bool] | None:
    """(the rest of ``whole`` around ``prompt``, whether the prompt comes first), or None."""
    if whole.startswith(prompt):
        return whole[len(prompt) :], True
    if whole.endswith(prompt):
        return whole[: len(whole) - len(prompt)], False
    return None


def critiqued_samples(run: RunView) -> list[tuple[Sample, str, str]]:
    """(sample, earlier output, critique) for every training sample with a feedback record."""
    samples = {s.id: s for s in run.training_samples()}
    outputs = {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
    found = []
    for record in read_records(run.paths.feedback, Feedback):
        sample = samples.get(record.sample_id)
        output = record.output if record.output is not None else outputs.get(record.sample_id)
        if sample is not None and output is not None:
            found.append((sample, output, record.text))
    return found


def privileged_rows(task: Any, critiqued: list[tuple[Sample, str, str]], teacher: str, context_text: str) -> PrivilegedRows:
    """TRL dataset rows for the critiqued samples, with the teacher form ``teacher`` (auto: the
    refinement prompt where it fits around the student's prompt for every sample, else context)."""
    if teacher not in TEACHERS:
        raise ValueError(f"teacher: expected one of {', '.join(TEACHERS)}, got {teacher!r}")
    prompts = [task.initial_prompt(s) for s, _, _ in critiqued]
    if teacher in ("auto", "refine"):
        splits = [_split(task.refine_prompt(s, output, critique), p) for (s, output, critique), p in zip(critiqued, prompts)]
        firsts = {sp[1] for sp in splits if sp is not None}
        if all(sp is not None for sp in splits) and len(firsts) <= 1:
            first = firsts.pop() if firsts else True
            rows = [
                {"prompt": p, "privileged_context": sp[0], "sample_id": s.id}  # type: ignore[index]
                for (s, _, _), p, sp in zip(critiqued, prompts, splits)
            ]
            template = "{prompt}{privileged_context}" if first else "{privileged_context}{prompt}"
            return PrivilegedRows(rows, template, "refine", first, {s.id: s for s, _, _ in critiqued})
        if teacher == "refine":
            raise ValueError(
                "teacher: refine needs the task's refinement prompt to begin or end with its initial prompt, "
                "which this task's does not; use teacher: context"
            )
        log.info("self-distillation: the task's refinement prompt does not extend its initial prompt; the teacher reads the context form")
    rows = [
        {"prompt": p, "privileged_context": context_text.format(output=output, feedback=critique), "sample_id": s.id}
        for (s, output, critique), p in zip(critiqued, prompts)
    ]
    return PrivilegedRows(rows, "{privileged_context}\n\n{prompt}", "context", False, {s.id: s for s, _, _ in critiqued})


def solution_context(task: Any, samples: list[Sample], prompt_first: bool) -> str | None:
    """SDPO's template for a successful attempt, in the task's own words where it has them: the
    refinement prompt without feedback around ``{successful_previous_attempt}``, when that is the
    same for every sample (the facts world's " <attempt> improved :"); else None (TRL's default)."""
    found = set()
    for sample in samples:
        split = _split(task.refine_prompt(sample, _SENTINEL, None), task.initial_prompt(sample))
        if split is None or split[1] != prompt_first or _SENTINEL not in split[0]:
            return None
        found.add(split[0])
    if len(found) != 1:
        return None
    text = found.pop().replace("{", "{{").replace("}", "}}")
    return text.replace(_SENTINEL, "{successful_previous_attempt}")


class SelfDistillationMethod(Method):
    """What sdft and sdpo share: they read the outputs and their critiques, and train on rows whose
    privileged context the teacher reads (``Options`` must have ``teacher`` and ``context_text``)."""

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        return ("outputs", "feedback")

    def rows(self, run: RunView) -> PrivilegedRows | None:
        """The training rows of this round (and of earlier ones, when a round retrains from the
        base), or None when no training sample has a critique."""
        options = self.options(run.config)
        critiqued = [c for source in [*run.earlier, run] for c in critiqued_samples(source)]
        return privileged_rows(run.task, critiqued, options.teacher, options.context_text) if critiqued else None
