"""One registry per kind of plug-in: data loaders, tasks, feedback sources, selectors, metrics
and methods.

A plug-in is one module in its kind's package that registers itself by name with its help text:

    @SELECTORS.register("embedding", help="Cosine similarity of feedback and refinement (MiniLM).")
    class EmbeddingSelector(Selector): ...

Names and help are read from the package's source without importing it (the ``register`` calls
are found in each module's syntax tree), so listing plug-ins imports no model library, and a
lookup imports only the module that holds the name: one plug-in whose optional dependency is
missing breaks only itself. Adding a plug-in adds one file and touches no other.

From elsewhere: a config may name an object as ``module.path:Name`` (imported then), and an
installed package may declare an entry point in the group ``ilf.plugins`` whose value is a module
that registers plug-ins (``[project.entry-points."ilf.plugins"] mine = "mypkg.plugins"``): its
plug-ins are listed and found by name like the built-in ones. A package whose module fails to
import registers nothing (what it registered before failing is forgotten); a warning names it, and
so does the error of any lookup that then finds no plug-in by the name asked for.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.metadata
import importlib.util
import logging
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from ilf import reads

if TYPE_CHECKING:  # the kinds' base classes, for the registries' types only
    from ilf.feedback import FeedbackSource
    from ilf.methods import Method
    from ilf.metrics import Metric
    from ilf.selection.base import Selector
    from ilf.tasks.base import Task

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    help: str
    obj: T


@dataclass(frozen=True)
class Interface:
    """What a plug-in of a kind must define: the base class's methods it overrides (``any_of``: at
    least one of them), and whether it may be a plain function (loaders, task factories)."""

    base: str  # module:Class
    required: tuple[str, ...] = ()
    any_of: bool = False
    functions_allowed: bool = False


class UnknownPlugin(ValueError):
    """A name that no plug-in of the kind registered, nor an importable ``module:Name``."""


class Registry(Generic[T]):
    def __init__(
        self,
        kind: str,
        package: str,
        config_key: str,
        interface: str,
        variable: str,
        shape: Interface | None = None,
        options_key: str = "",
    ) -> None:
        self.kind = kind
        self.options_key = options_key  # the config section of its plug-ins' own settings, by name
        self.package = package
        self.config_key = config_key
        self.interface = interface  # what a plug-in of the kind is, for the docs' generated table
        self.variable = variable  # the name modules register through (``SELECTORS.register``), found in their source
        self.shape = shape
        self._entries: dict[str, Entry[T]] = {}
        self._index: dict[str, tuple[str, str | None]] | None = None  # name -> (module, help if literal)
        self._loaded = False

    def register(self, name: str, help: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if isinstance(obj, type):  # a plug-in class knows the name it is built by, and where its options are
                obj.name = name  # type: ignore[attr-defined]
                obj.options_key = self.options_key  # type: ignore[attr-defined]
            self._entries[name] = Entry(name, help, obj)
            if self._index is not None:
                self._index.setdefault(name, (getattr(obj, "__module__", self.package), help))
            return obj

        return decorate

    def unregister(self, name: str) -> None:
        """Forget a plug-in registered at run time (a test's, a notebook's)."""
        self._entries.pop(name, None)
        if self._index is not None:
            self._index.pop(name, None)

    def _forget_since(self, names: set[str]) -> None:
        """Forget what was registered since the registry held ``names``, except ilf's own plug-ins
        (a failed package may have imported one of ilf's modules on its way, which stays imported)."""
        for name in set(self._entries) - names:
            module = getattr(self._entries[name].obj, "__module__", None) or ""
            if module.split(".")[0] != self.package.split(".")[0]:
                del self._entries[name]
                if self._index is not None and self._index.get(name, ("",))[0] == module:
                    del self._index[name]

    def index(self) -> dict[str, tuple[str, str | None]]:
        """Every registered name of the kind with its module and help, read without importing the
        package's modules (installed packages' ``ilf.plugins`` entry points are imported)."""
        if self._index is None:
            index: dict[str, tuple[str, str | None]] = {}
            folder = _package_folder(self.package)
            for module in pkgutil.iter_modules([str(folder)]):
                if not module.name.startswith("_"):
                    for name, help_text in _registrations(folder / f"{module.name}.py", self.variable):
                        index.setdefault(name, (f"{self.package}.{module.name}", help_text))
            load_entry_points()
            for name, entry in self._entries.items():  # registered on import: entry points, and anything imported already
                index.setdefault(name, (getattr(entry.obj, "__module__", self.package), entry.help))
            self._index = index
        return self._index

    def _load_package(self) -> None:
        """Import every module of the kind's package: what the index could not read registers itself."""
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")
        load_entry_points()

    def entries(self) -> list[Entry[T]]:
        """Every plug-in of the kind, imported (``names`` and ``help`` import nothing)."""
        self._load_package()
        return [self._entries[name] for name in sorted(self._entries)]

    def names(self) -> list[str]:
        return sorted(self.index())

    def __contains__(self, name: str) -> bool:
        return name in self.index() or name in self._entries or ":" in name

    def get(self, name: str) -> T:
        """The plug-in registered as ``name`` (its module alone imported), or the object
        ``module.path:Name`` names; a stage that looks one up records which code it got."""
        obj = self._get(name)
        if reads.active():
            reads.note("probe", ["plugin", self.kind, name], reads.plugin_identity(obj, name))
        return obj

    def _get(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name].obj
        if ":" in name:
            obj = _import_object(name, self)
            if isinstance(obj, type):  # someone's own class: its options under the name it declares, else its import path
                obj.options_key = self.options_key
                if "name" not in vars(obj):
                    obj.name = name
                else:
                    self._known_as(obj.name, obj, name)
            return obj
        found = self.index().get(name)
        if found is not None:
            importlib.import_module(found[0])
        if name not in self._entries:
            self._load_package()  # a registration the source did not show plainly
        if name in self._entries:
            return self._entries[name].obj
        raise UnknownPlugin(f"{self.config_key}: {self.unknown(name)}")

    def _known_as(self, declared: str, obj: Any, spec: str) -> None:
        """A ``module.path:Name`` class that declares its ``name`` is found by that name from now on
        in this process (a study's cells that no longer name it may still carry its options)."""
        entry = self._entries.get(declared)
        found = self.index().get(declared)
        if (entry is not None and entry.obj is not obj) or (entry is None and found is not None and found[0] != obj.__module__):
            raise UnknownPlugin(f"{self.config_key}: {spec} declares the name {declared!r}, which another {self.kind} is registered by")
        if entry is None:
            doc = (obj.__doc__ or "").strip().split("\n", 1)[0]
            self._entries[declared] = Entry(declared, doc, obj)
            self.index().setdefault(declared, (obj.__module__, doc))

    def unknown(self, name: str) -> str | None:
        """Why ``name`` names no plug-in of the kind (the closest name, the registered ones), or None
        if it does; ``module.path:Name`` passes here and is checked when imported."""
        if name in self:
            return None
        known = sorted(set(self.index()) | set(self._entries))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        failed = "".join(f"; {failure}" for failure in failed_packages())  # the name may have been one of theirs
        return f"unknown {self.kind} {name!r}{hint}{failed}; registered: {', '.join(known)}, or module.path:Name for one of your own"

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is one of ilf's own plug-ins (checked by its tests, not at config time)."""
        found = self.index().get(name)
        return ":" not in name and found is not None and found[0].startswith("ilf.")

    def interface_problem(self, name: str) -> str | None:
        """Why the plug-in ``name`` (imported) lacks its kind's interface, or None when it has it."""
        if self.shape is None:
            return None
        obj = self.get(name)
        what = f"{self.kind} {name!r} ({getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)})"
        base = _import_object(self.shape.base, self)
        methods = (
            " or ".join(f"{m}()" for m in self.shape.required) if self.shape.any_of else ", ".join(f"{m}()" for m in self.shape.required)
        )
        if not isinstance(obj, type):
            if self.shape.functions_allowed and callable(obj):
                return None
            return f"{what} is a {type(obj).__name__}; a {self.kind} is a class deriving from {self.shape.base.replace(':', '.')} that defines {methods}"
        missing = [m for m in self.shape.required if getattr(obj, m, None) is None or getattr(obj, m) is getattr(base, m, None)]
        if missing and (not self.shape.any_of or len(missing) == len(self.shape.required)):
            listed = methods if self.shape.any_of else ", ".join(f"{m}()" for m in missing)
            return f"{what} does not define {listed}, which every {self.kind} defines (docs/EXTENDING.md)"
        return None

    def help(self, name: str) -> str:
        found = self.index().get(name)
        if found is not None and found[1] is not None:
            return found[1]
        if name in self._entries or found is not None:
            self.get(name)
            return self._entries[name].help
        obj = self.get(name)
        return (getattr(obj, "__doc__", None) or "").strip().split("\n", 1)[0]


def _package_folder(package: str) -> Path:
    """A package's folder, found without running its ``__init__`` (only the top package's)."""
    top, *rest = package.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"no package {top!r}")
    return Path(list(spec.submodule_search_locations)[0], *rest)


def _registrations(path: Path, variable: str) -> list[tuple[str, str | None]]:
    """The ``variable.register(name, help=...)`` calls in a module's source whose name is a literal,
    with the help where it is one too."""
    if not path.is_file():
        return []  # a sub-package or a compiled module: it registers itself when imported
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"):
            continue
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == variable) or not node.args:
            continue
        name = _literal(node.args[0])
        if not isinstance(name, str):
            continue
        help_node = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "help"), None)
        help_text = _literal(help_node) if help_node is not None else ""
        found.append((name, help_text if isinstance(help_text, str) else None))
    return found


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


@dataclass(frozen=True)
class FailedPackage:
    """An installed package whose ``ilf.plugins`` entry point failed to import: none of its
    plug-ins is registered, and a lookup that finds no plug-in says so."""

    package: str  # the distribution's name, as ``pip install`` and ``pip uninstall`` know it
    entry_point: str  # ``name = module``, as its pyproject.toml declares it
    where: str  # the file and line of the package's code that raised, when the traceback shows one
    error: str

    def __str__(self) -> str:
        at = f" at {self.where}" if self.where else ""
        return (
            f"the plug-in package {self.package!r} (entry point {self.entry_point}) failed to import{at}, "
            f"so none of its plug-ins is registered: {self.error}"
        )


_failed: list[FailedPackage] = []


@lru_cache(maxsize=1)
def load_entry_points() -> tuple[str, ...]:
    """Import the modules installed packages declare under the ``ilf.plugins`` entry point (once).

    One that fails to import is reported, remembered (``failed_packages``) and skipped, so it cannot
    break every other plug-in; what it registered before failing is forgotten, so that a package is
    either all there or named as missing, never half registered."""
    loaded = []
    for point in importlib.metadata.entry_points(group="ilf.plugins"):
        before = [(registry, set(registry._entries)) for registry in ALL]
        try:
            point.load()
        except Exception as err:  # noqa: BLE001 - someone else's package: say what broke, keep going
            for registry, names in before:
                registry._forget_since(names)
            dist = getattr(point, "dist", None)
            failure = FailedPackage(
                package=dist.name if dist is not None else point.value,
                entry_point=f"{point.name} = {point.value}",
                where=_raised_in(err, point.module.split(".")[0]),
                error=f"{type(err).__name__}: {err}",
            )
            _failed.append(failure)
            logging.getLogger(__name__).warning("%s", failure)
            continue
        loaded.append(point.value)
    return tuple(loaded)


def failed_packages() -> tuple[FailedPackage, ...]:
    """The installed plug-in packages that failed to import (their entry points loaded first)."""
    load_entry_points()
    return tuple(_failed)


def _raised_in(err: BaseException, top: str) -> str:
    """``file:line`` of the innermost frame of the package ``top`` in the traceback of ``err``, the
    line of its own code that failed (an import, a class definition), or "" when none is there."""
    where = ""
    trace = err.__traceback__
    while trace is not None:
        module = trace.tb_frame.f_globals.get("__name__", "")
        if module == top or module.startswith(top + "."):
            where = f"{trace.tb_frame.f_code.co_filename}:{trace.tb_lineno}"
        trace = trace.tb_next
    return where


def plugin_probe(kind: str, name: str) -> str:
    """The code the plug-in ``name`` of ``kind`` stands for now (``ilf.reads`` records it)."""
    registry = next(r for r in ALL if r.kind == kind)
    try:
        obj = registry._get(name)
    except Exception as err:  # noqa: BLE001 - an unknown or broken plug-in: a stage that used it is not up to date
        return f"{reads.MISSING} ({type(err).__name__})"
    return reads.plugin_identity(obj, name)


def _import_object(spec: str, registry: Registry[Any]) -> Any:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - someone's own module: any error in it is reported as the key's
        where = _raised_in(err, module_name.split(".")[0])
        at = f" (failed at {where})" if where else ""
        raise UnknownPlugin(f"{registry.config_key}: cannot import {module_name!r} for {spec!r}{at}: {type(err).__name__}: {err}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UnknownPlugin(f"{registry.config_key}: module {module_name!r} has no {attribute!r}") from None


# The six kinds. Each package imports nothing of the others at module level, so lookups stay cheap.
LOADERS: Registry[Callable[..., Any]] = Registry(
    "data loader", "ilf.data", "data.loader", "`fn(config, split, path, limit) -> SplitData`", "LOADERS"
)
TASKS: Registry[type[Task] | Callable[..., Task]] = Registry(
    "task",
    "ilf.tasks",
    "task.name",
    "a `Task` (prompts, post-processing)",
    "TASKS",
    Interface("ilf.tasks.base:Task", ("initial_prompt", "refine_prompt"), functions_allowed=True),
)
FEEDBACK_SOURCES: Registry[type[FeedbackSource]] = Registry(
    "feedback source",
    "ilf.feedback",
    "feedback.source",
    "a `FeedbackSource` (`collect`; optionally `compare`, `reward`)",
    "FEEDBACK_SOURCES",
    Interface("ilf.feedback:FeedbackSource", ("collect",)),
    options_key="feedback_options",
)
SELECTORS: Registry[type[Selector]] = Registry(
    "selector",
    "ilf.selection",
    "selection.method",
    "a `Selector` (`score(items) -> scores`)",
    "SELECTORS",
    Interface("ilf.selection.base:Selector", ("score",)),
    options_key="selection_options",
)
METRICS: Registry[type[Metric]] = Registry(
    "metric",
    "ilf.metrics",
    "evaluation.metrics",
    "a `Metric` (`score_outputs`, `score_round`)",
    "METRICS",
    Interface("ilf.metrics:Metric", ("score_outputs", "score_round"), any_of=True),
    options_key="metric_options",
)
METHODS: Registry[type[Method]] = Registry(
    "method",
    "ilf.methods",
    "method",
    "a `Method` (`stages`, `train`, `systems`, `generate`)",
    "METHODS",
    Interface("ilf.methods:Method"),
    options_key="method_options",
)

ALL: tuple[Registry[Any], ...] = (LOADERS, TASKS, FEEDBACK_SOURCES, SELECTORS, METRICS, METHODS)

__all__ = [
    "Registry",
    "Entry",
    "Interface",
    "UnknownPlugin",
    "FailedPackage",
    "failed_packages",
    "load_entry_points",
    "LOADERS",
    "TASKS",
    "FEEDBACK_SOURCES",
    "SELECTORS",
    "METRICS",
    "METHODS",
    "ALL",
]
