"""Turn parsed JSON or YAML into typed dataclasses, naming the file, line and field of a mismatch.

Records and configs share this: both are dataclasses read from text a person may have edited by
hand, and both owe that person an error that says exactly where the problem is.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class SchemaError(ValueError):
    """Data that does not fit its schema. ``str()`` reads ``file:line: field 'x': problem``."""

    def __init__(self, path: str | Path | None, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}" if line is not None else str(path or "<input>")
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}: {what}{problem}")


_EXPONENT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def describe(tp: Any) -> str:
    """A reader's name for a type hint: 'a string', 'a list of strings', ..."""
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    origin = typing.get_origin(tp)
    if origin is list:
        inner = describe(typing.get_args(tp)[0]).removeprefix("a ").removeprefix("an ")
        return f"a list of {inner}s"
    if origin is dict:
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a) for a in typing.get_args(tp))
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return str(tp)


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)[:60]


def convert(value: Any, tp: Any, field: str, fail: Any, unknown: str) -> Any:
    """Check ``value`` against the type hint ``tp``; ``fail(field, problem)`` raises."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return convert(value, options[0], field, fail, unknown)
        for option in options:
            try:
                return convert(value, option, field, fail, unknown)
            except SchemaError:
                continue
        fail(field, f"expected {describe(tp)}, got {_shown(value)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            fail(field, f"expected {describe(tp)}, got {_shown(value)}")
        return value
    if tp is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.match(value):
            return float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string; everyone means the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(field, f"expected a number, got {_shown(value)}")
        return float(value)
    if tp in (str, int, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            fail(field, f"expected {describe(tp)}, got {_shown(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            fail(field, f"expected {describe(tp)}, got {_shown(value)}")
        (inner,) = typing.get_args(tp)
        return [convert(v, inner, f"{field}[{i}]", fail, unknown) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(field, f"expected a mapping, got {_shown(value)}")
        _, inner = typing.get_args(tp)
        return {str(k): convert(v, inner, f"{field}.{k}", fail, unknown) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail(field, f"expected {describe(tp)}, got {_shown(value)}")
        return _build(tp, value, fail, unknown, prefix=f"{field}.")
    raise TypeError(f"unsupported field type {tp!r}")


def unknown_key_problem(key: str, known: typing.Iterable[str]) -> str:
    """The problem text for an unknown key: the likely intended key when one is close, else all of them."""
    choices = sorted(known)
    # A typo is the usual cause, and naming the one key meant beats a list of dozens to scan.
    close = difflib.get_close_matches(key, choices, n=1)
    if close:
        return f"unknown key {key!r} (did you mean {close[0]!r}?)"
    return f"unknown key {key!r} (expected one of: {', '.join(choices)})"


@functools.cache
def _fields(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    # resolving string annotations costs more than building the record: records are read by the
    # hundred thousand in a study, of a few dozen classes
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def sections(cls: type) -> dict[str, type]:
    """The fields of a dataclass that hold another dataclass (``X`` or ``X | None``): its sections,
    by field name, with their classes."""
    hints, known = _fields(cls)
    found = {}
    for name in known:
        section = next((t for t in (hints[name], *typing.get_args(hints[name])) if dataclasses.is_dataclass(t)), None)
        if section is not None:
            found[name] = section
    return found


def _build(cls: type[T], obj: dict[str, Any], fail: Any, unknown: str, prefix: str = "") -> T:
    hints, known = _fields(cls)
    keeps_extra = unknown == "keep" and "extra" in known
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in obj.items():
        if key in known and not (keeps_extra and key == "extra"):
            kwargs[key] = convert(value, hints[key], prefix + key, fail, unknown)
        elif keeps_extra:
            extra.update(value if key == "extra" and isinstance(value, dict) else {key: value})
        else:
            fail(prefix + str(key), unknown_key_problem(str(key), known))
    for name, spec in known.items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required and name not in kwargs:
            fail(prefix + name, "is missing")
    if keeps_extra:
        kwargs["extra"] = extra
    try:
        return cls(**kwargs)
    except SchemaError as err:
        fail(prefix + (err.field or ""), err.problem)
        raise  # unreachable: fail raises


def build(
    cls: type[T],
    obj: Any,
    error: type[SchemaError] = SchemaError,
    path: str | Path | None = None,
    line: int | None = None,
    unknown: str = "error",
) -> T:
    """Validate ``obj`` as ``cls``. ``unknown='keep'`` stores unknown keys in an ``extra`` field."""

    def fail(field: str | None, problem: str) -> None:
        raise error(path, line, field, problem)

    if not isinstance(obj, dict):
        fail(None, f"expected a mapping, got {type(obj).__name__}")
    return _build(cls, obj, fail, unknown)
