"""One registry per kind of plug-in: data loaders, tasks, feedback sources, selectors, metrics
and methods.

A plug-in is one module in its kind's package that registers itself by name with its help text:

    @SELECTORS.register("embedding", help="Cosine similarity of feedback and refinement (MiniLM).")
    class EmbeddingSelector(Selector): ...

Every module of the package is imported when a name is first looked up, so adding a plug-in adds
one file and touches no other. A config may also name an object outside the package as
``module.path:Name`` (``selection.method: mypkg.selectors:EditDistance``); it is imported then.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    help: str
    obj: T


class UnknownPlugin(ValueError):
    """A name that no plug-in of the kind registered, nor an importable ``module:Name``."""


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str, config_key: str, interface: str) -> None:
        self.kind = kind
        self.package = package
        self.config_key = config_key
        self.interface = interface  # what a plug-in of the kind is, for the docs' generated table
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, name: str, help: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, help, obj)
            return obj

        return decorate

    def _load_package(self) -> None:
        """Import every module of the kind's package, each of which registers its plug-ins."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def entries(self) -> list[Entry[T]]:
        self._load_package()
        return [self._entries[name] for name in sorted(self._entries)]

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries()]

    def __contains__(self, name: str) -> bool:
        self._load_package()
        return name in self._entries or ":" in name

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``, or the object ``module.path:Name`` names."""
        self._load_package()
        if name in self._entries:
            return self._entries[name].obj
        if ":" in name:
            return _import_object(name, self)
        close = difflib.get_close_matches(name, list(self._entries), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownPlugin(
            f"{self.config_key}: unknown {self.kind} {name!r}{hint}; registered: {', '.join(sorted(self._entries))}, "
            "or module.path:Name for one of your own"
        )

    def help(self, name: str) -> str:
        self._load_package()
        entry = self._entries.get(name)
        if entry is not None:
            return entry.help
        obj = self.get(name)
        return (getattr(obj, "__doc__", None) or "").strip().split("\n", 1)[0]


def _import_object(spec: str, registry: Registry[Any]) -> Any:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UnknownPlugin(f"{registry.config_key}: cannot import {module_name!r} for {spec!r} ({err})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UnknownPlugin(f"{registry.config_key}: module {module_name!r} has no {attribute!r}") from None


# The six kinds. Each package imports nothing of the others at module level, so lookups stay cheap.
LOADERS: Registry[Any] = Registry("data loader", "ilf.data", "data.loader", "`fn(config, split, path, limit) -> SplitData`")
TASKS: Registry[Any] = Registry("task", "ilf.tasks", "task.name", "a `Task` (prompts, post-processing)")
FEEDBACK_SOURCES: Registry[Any] = Registry(
    "feedback source", "ilf.feedback", "feedback.source", "a `FeedbackSource` (`collect`; optionally `compare`, `reward`)"
)
SELECTORS: Registry[Any] = Registry("selector", "ilf.selection", "selection.method", "a `Selector` (`score(items) -> scores`)")
METRICS: Registry[Any] = Registry("metric", "ilf.metrics", "evaluation.metrics", "a `Metric` (`score_outputs`, `score_round`)")
METHODS: Registry[Any] = Registry("method", "ilf.methods", "method", "a `Method` (`stages`, `train`, `systems`, `generate`)")

ALL: tuple[Registry[Any], ...] = (LOADERS, TASKS, FEEDBACK_SOURCES, SELECTORS, METRICS, METHODS)

__all__ = ["Registry", "Entry", "UnknownPlugin", "LOADERS", "TASKS", "FEEDBACK_SOURCES", "SELECTORS", "METRICS", "METHODS", "ALL"]
