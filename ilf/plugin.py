"""What every plug-in class shares: its registered name, its own settings, and one way to be built.

A plug-in's settings are a dataclass beside its code, named in ``Options``; a config sets them
under the options section of its kind, by the plug-in's name:

    selection_options: {instruct_rm: {judge: {name_or_path: ./judge}}}
    method_options: {dpo: {beta: 0.2}}

``ilf config --fields FILE`` and ``ilf plugins NAME`` list them with their help. A setting that used
to live elsewhere in the config stays readable there: the plug-in lists it in ``moved`` and the
config loader moves it, saying in one line where it now belongs.

Every kind's base class derives from ``Plugin``, and the pipeline builds each plug-in it names the
same way: ``registry.get(name).from_config(config, task)``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ilf import reads
from ilf.schema import SchemaError, build

if TYPE_CHECKING:
    from ilf.config import RunConfig
    from ilf.registry import Registry

P = TypeVar("P", bound="Plugin")


class Plugin:
    name: ClassVar[str] = ""  # the name it is registered by (or the module.path:Name it was given as)
    options_key: ClassVar[str] = ""  # the config section of its kind's options (selection_options, say)
    Options: ClassVar[type | None] = None  # the dataclass of its settings, under <options_key>.<name>
    # Keys an earlier config used for a setting this plug-in now reads: old dotted key -> its new
    # dotted key, ``{options}`` standing for this plug-in's section ({"selection.seed": "{options}.seed"}).
    moved: ClassVar[dict[str, str]] = {}

    @classmethod
    def options(cls, config: RunConfig) -> Any:
        """This plug-in's settings from ``<options_key>.<name>`` (defaults where unset), validated;
        errors name the key. None when it has no ``Options``."""
        if cls.Options is None:
            return None
        with reads.unrecorded():  # what a stage depends on is the options built, defaults and all
            raw = (getattr(config, cls.options_key, None) or {}).get(cls.name) or {}
            built = build(cls.Options, raw, error=option_error(f"{cls.options_key}.{cls.name}"))
        if reads.active():
            reads.note("options", [cls.options_key, cls.name], reads.plain(built))
            for f in dataclasses.fields(built):
                value = getattr(built, f.name)
                if f.metadata.get("path") and f.metadata.get("contents", True) and isinstance(value, str):
                    reads.note_local(value)
        return built

    @classmethod
    def from_config(cls: type[P], config: RunConfig, task: Any = None) -> P:
        """The plug-in as ``config`` sets it up (its options, the models it reads). ``task`` is the
        run's task, which plug-ins that prompt it or run its programs share (one sandbox a run);
        one that needs it and is given none builds it from ``config.task``."""
        return cls()


def option_error(prefix: str) -> Any:
    """A ConfigError maker that names the key under ``prefix`` (``method_options.sdft.max_steps``)."""
    from ilf.config import ConfigError

    def make(path: Any, line: Any, field: str | None, problem: str) -> SchemaError:
        return ConfigError(path, line, f"{prefix}.{field}" if field else prefix, problem)

    return make


def named_plugins(config: RunConfig) -> list[tuple[Registry[Any], str]]:
    """The plug-ins a run config names of the kinds with an options section (its method,
    selectors, feedback source and metrics), each with its registry."""
    from ilf.registry import FEEDBACK_SOURCES, METHODS, METRICS, SELECTORS

    return [
        (METHODS, config.method),
        *((SELECTORS, name) for name in dict.fromkeys([config.selection.method, *config.selection.also_score])),
        (FEEDBACK_SOURCES, config.feedback.source),
        *((METRICS, name) for name in dict.fromkeys(config.evaluation.metrics)),
    ]


def configured_options(config: RunConfig) -> list[Any]:
    """The options of every plug-in ``config`` names (those without any left out)."""
    found = [registry.get(name).options(config) for registry, name in named_plugins(config)]
    return [options for options in found if options is not None]


def options_help(registry: Registry[Any], name: str) -> tuple[str, list[tuple[str, str, str]]]:
    """Where the plug-in ``name`` takes its settings in a config, and each one's dotted key, default
    and help (``ilf plugins NAME``, ``ilf config --fields``, the docs): its ``Options`` under
    ``<kind>_options.<name>``, or for a task class the fields of ``task.options``."""
    from ilf.config import field_help

    obj = registry.get(name)
    options = getattr(obj, "Options", None)
    if options is not None and registry.options_key:
        where = f"{registry.options_key}.{getattr(obj, 'name', '') or name}"  # a module.path:Name class's own name
        return where, field_help(options, where + ".")
    owner = getattr(obj, "__self__", obj)  # a task registers its class's from_options
    if registry.config_key == "task.name" and isinstance(owner, type) and dataclasses.is_dataclass(owner):
        return "task.options", field_help(owner, "task.options.")
    return "", []


def run_task(config: RunConfig, task: Any) -> Any:
    """``task``, or the one ``config.task`` describes when none was given."""
    if task is not None:
        return task
    from ilf.tasks import get_task

    return get_task(config.task)


__all__ = ["Plugin", "configured_options", "named_plugins", "option_error", "options_help", "run_task"]
