"""Tasks turn samples into prompts and raw generations into clean outputs.

A task is a plug-in: a module in this package registers a factory (a Task subclass's
``from_options``, or any function of the options mapping) with ``@TASKS.register(name, help=...)``.
The ``template`` task takes its prompts from the config, so a new feedback task may need no code
at all; ``task.name: mypkg.tasks:MyTask`` loads one from outside the package.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ilf.config import TaskConfig
from ilf.records import Sample
from ilf.registry import TASKS
from ilf.tasks.base import Task, TemplateTask


@runtime_checkable
class ScoresOutputs(Protocol):
    """A task that can check any output itself (the code task runs its tests): online methods'
    reward when the feedback source has none of its own."""

    def reward(self, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]: ...


def get_task(config: TaskConfig) -> Task:
    factory: Any = TASKS.get(config.name)
    if isinstance(factory, type) and issubclass(factory, Task):  # a class named by module.path:Class
        factory = getattr(factory, "from_options", None) or (lambda options, cls=factory: cls(**options))
    return factory(dict(config.options))


def available_tasks() -> list[str]:
    return TASKS.names()


def register_task(name: str, help: str = "") -> Callable[[Any], Any]:
    return TASKS.register(name, help)


__all__ = ["ScoresOutputs", "Task", "TemplateTask", "get_task", "available_tasks", "register_task"]
