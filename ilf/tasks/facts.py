"""The facts world's task: its prompts, and generations kept as written (the world's text is
already clean: one line of fact spans, up to the end-of-text token)."""

from __future__ import annotations

from dataclasses import dataclass

from ilf.demo import world
from ilf.registry import TASKS
from ilf.tasks.base import TemplateTask


@dataclass
class FactsTask(TemplateTask):
    initial_template: str = world.POLICY_PROMPT
    refine_template: str = "post : {post} summary : {output} feedback : {feedback} improved :"
    refine_without_feedback_template: str = "post : {post} summary : {output} improved :"
    stop_at_newline: bool = False
    drop_unfinished_sentence: bool = False

    def judge_variants(self) -> list[tuple[str, str, str]]:
        return [(world.JUDGE_PROMPT, *world.JUDGE_ANSWERS)]  # the question the world model learned in pre-training


TASKS.register("facts", help="Summaries of facts-world posts (ilf demo): the world's prompts, outputs kept verbatim.")(
    FactsTask.from_options
)
