"""Tasks turn samples into prompts and raw generations into clean outputs.

A task written in Python registers itself with ``@register_task("name")``; the ``template`` task
takes its prompts from the config, so a new feedback task needs no code at all.
"""

from __future__ import annotations

from typing import Callable

from ilf.config import TaskConfig
from ilf.tasks.base import Task, TemplateTask

_REGISTRY: dict[str, Callable[[dict], Task]] = {}


def register_task(name: str) -> Callable[[Callable[[dict], Task]], Callable[[dict], Task]]:
    """Register a task factory (a Task subclass or a function of the options mapping) by name."""

    def decorate(factory: Callable[[dict], Task]) -> Callable[[dict], Task]:
        if name in _REGISTRY:
            raise ValueError(f"task {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_tasks() -> list[str]:
    return sorted(_REGISTRY)


def get_task(config: TaskConfig) -> Task:
    if config.name not in _REGISTRY:
        raise ValueError(f"task.name: unknown task {config.name!r} (registered: {', '.join(available_tasks())})")
    return _REGISTRY[config.name](dict(config.options))


register_task("template")(TemplateTask.from_options)

# Imported for their registrations.
from ilf.tasks import summarization  # noqa: E402,F401

__all__ = ["Task", "TemplateTask", "register_task", "get_task", "available_tasks"]
