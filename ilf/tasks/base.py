"""The Task interface and the prompt-template task every built-in task is made of."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, fields
from typing import Any

from ilf.config import option
from ilf.records import Sample

# A sentence ends at . ! or ? optionally followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*")


def first_line(text: str) -> str:
    """The text up to the first newline, stripped: models continue with unrelated lines."""
    return text.strip().split("\n", 1)[0].strip()


def drop_unfinished_sentence(text: str) -> str:
    """Cut a trailing sentence that the token limit interrupted; '' if no sentence is complete."""
    text = text.strip()
    ends = list(_SENTENCE_END.finditer(text))
    if not ends:
        return ""
    return text[: ends[-1].end()].strip()


class TemplateFieldError(ValueError):
    """A prompt template names a field the sample does not have."""

    def __init__(self, template: str, field: str, known: list[str]) -> None:
        self.template, self.field, self.known = template, field, known
        super().__init__(
            f"prompt template '{template}' uses {{{field}}}, which the sample does not have (fields: {', '.join(known) or 'none'})"
        )


class _Fields(dict):
    """Template fields that name the missing key instead of a bare KeyError."""

    def __init__(self, values: dict[str, Any], template_name: str) -> None:
        super().__init__(values)
        self.template_name = template_name

    def __missing__(self, key: str) -> str:
        raise TemplateFieldError(self.template_name, key, sorted(self))


@dataclass
class Task:
    """Builds prompts from samples and cleans generated text. Subclasses override the prompts."""

    stop_at_newline: bool = option(True, "Keep a generation up to its first newline (models run on into unrelated lines).")
    drop_unfinished_sentence: bool = option(
        True, "Cut a last sentence the token limit interrupted; an output with no complete sentence is drawn again."
    )
    completion_prefix: str = option(" ", "What joins a prompt and its target output in fine-tuning data (a space after 'TL;DR:').")

    def initial_prompt(self, sample: Sample) -> str:
        raise NotImplementedError

    def refine_prompt(self, sample: Sample, output: str, feedback: str | None) -> str:
        """The refinement prompt; ``feedback=None`` gives the ablation without feedback."""
        raise NotImplementedError

    def judge_variants(self) -> list[tuple[str, str, str]] | None:
        """(template, yes answer, no answer) prompts for the instruct_rm judge in this task's own
        language, or None for its general English prompts. Templates may use {inputs}, the
        sample's input fields, {output}, {feedback} and {candidate}."""
        return None

    def postprocess(self, text: str) -> str:
        """Clean a generation; '' means unusable, and the generator resamples it."""
        if self.stop_at_newline:
            text = first_line(text)
        text = text.strip()
        if self.drop_unfinished_sentence:
            text = drop_unfinished_sentence(text)
        return text

    def fallback(self, text: str) -> str:
        """What is kept when every resample was unusable: the first line, unfinished or not."""
        return first_line(text) if self.stop_at_newline else text.strip()

    def completion(self, text: str) -> str:
        """How a target output follows its prompt in fine-tuning data."""
        return self.completion_prefix + text.strip()


@dataclass
class TemplateTask(Task):
    """A task whose prompts are ``str.format`` templates over the sample's input fields.

    Templates may use any input field, plus ``{output}`` and ``{feedback}`` in refinement prompts.
    """

    initial_template: str = option(
        "{input}\n\nOutput:",
        "Prompt for an output: a str.format template over the sample's input fields by name; {input} is all of them, "
        "one 'name: value' a line.",
    )
    refine_template: str = option(
        "{input}\n\nOutput: {output}\n\nFeedback: {feedback}\n\nWrite an improved output that addresses the feedback.\n\nImproved output:",
        "Prompt for a refinement: the input fields, {input}, {output} (the output critiqued) and {feedback}.",
    )
    refine_without_feedback_template: str = option(
        "{input}\n\nOutput: {output}\n\nWrite an improved output.\n\nImproved output:",
        "Prompt for a refinement without feedback (refine.use_feedback: false): the input fields, {input} and {output}.",
    )

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TemplateTask:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"task.options: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        task = cls(**options)
        for name in ("initial_template", "refine_template", "refine_without_feedback_template"):
            template = getattr(task, name)
            try:
                list(string.Formatter().parse(template))
            except ValueError as err:
                raise ValueError(f"task.options.{name}: not a valid template ({err})") from None
        return task

    def _fill(self, template: str, name: str, sample: Sample, **more: str) -> str:
        values: dict[str, Any] = dict(sample.inputs)
        values.setdefault("input", "\n".join(f"{k}: {v}" for k, v in sample.inputs.items()))
        values.update(more)
        return template.format_map(_Fields(values, name))

    def initial_prompt(self, sample: Sample) -> str:
        return self._fill(self.initial_template, "initial_template", sample)

    def refine_prompt(self, sample: Sample, output: str, feedback: str | None) -> str:
        if feedback is None:
            return self._fill(self.refine_without_feedback_template, "refine_without_feedback_template", sample, output=output)
        return self._fill(self.refine_template, "refine_template", sample, output=output, feedback=feedback)
