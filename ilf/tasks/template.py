"""The template task: prompts are ``str.format`` templates given in ``task.options``."""

from ilf.registry import TASKS
from ilf.tasks.base import TemplateTask

TASKS.register("template", help="Prompts from task.options (initial_template, refine_template, ...): a new task with no code.")(
    TemplateTask.from_options
)
