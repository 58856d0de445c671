"""TL;DR summarization of Reddit-style posts, with the settings of the SLF5K study.

Prompt structure follows Scheurer et al. 2023 ("Training Language Models with Language Feedback
at Scale", arXiv 2303.16755): the post as Title and Text, a "TL;DR:" cue for the initial summary;
for a refinement, an instruction to write a better summary that incorporates the feedback, then
the post, the summary, the feedback and an "Improved TL;DR:" cue. The wording here is our own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ilf.registry import TASKS
from ilf.tasks.base import TemplateTask

_POST = "Title: {title}\n\nText: {post}\n\n"


@dataclass
class SummarizationTask(TemplateTask):
    initial_template: str = _POST + "TL;DR:"
    refine_template: str = (
        "Write an excellent summary of the post below. It must take the feedback on the given "
        "summary into account and be better than the given summary.\n\n"
        + _POST
        + "Summary: {output}\n\nFeedback on summary: {feedback}\n\nImproved TL;DR:"
    )
    refine_without_feedback_template: str = (
        "Write an excellent summary of the post below that is better than the given summary.\n\n"
        + _POST
        + "Summary: {output}\n\nImproved TL;DR:"
    )


TASKS.register("summarization", help="TL;DR summaries of Reddit posts with the SLF5K study's prompts.")(SummarizationTask.from_options)
