"""MBPP (Austin et al. 2021): crowd-sourced Python problems with a reference solution and three
assert statements each, in the layout the ILF-for-code study used.

Rows come from the hub (``google-research-datasets/mbpp`` through ``datasets``; its ``full``
config by default, ``<id>:sanitized`` for the sanitized one), or from a local JSONL file of rows
of either shape. The prompt is the problem text with the first test as an example in a
docstring, then the reference code up to the signature of the function the tests call; the tests
become ``check(candidate)`` (``pytest.approx`` for numeric answers); the reference is the rest of
the code. A sample's id is the ``task_id``, as in the ilf_code annotations, so the two join.

Full rows: ``task_id``, ``text``, ``code``, ``test_list``, ``test_setup_code``,
``challenge_test_list``. Sanitized rows: ``task_id``, ``prompt``, ``code``, ``test_imports``,
``test_list``, ``source_file``. Splits: train, test, validation, prompt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ilf.data import SplitData, before_download, samples_from_rows, text_field
from ilf.records import RecordError, Sample, iter_jsonl
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig

HUB_ID = "google-research-datasets/mbpp"
CONFIGS = ("full", "sanitized")
MAPPED = {"task_id", "text", "prompt", "code", "test_list", "test_setup_code", "test_imports"}


def _strings(row: dict[str, Any], key: str, origin: str, line: int | None, required: bool = False) -> list[str]:
    value = row.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise RecordError(origin, line, key, "is missing" if key not in row else "expected a non-empty list of strings")
    return [v.replace("\r\n", "\n").strip() for v in value]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def tests_as_check(tests: list[str], entry_point: str, setup: str = "") -> str:
    """MBPP's asserts as ``check(candidate)``, the form the ILF study ran: calls of the function
    become calls of ``candidate``, and a numeric expected value is compared with ``approx``."""
    numeric = _is_number(tests[0].rsplit("==", 1)[-1].strip()) if "==" in tests[0] else False
    call = re.compile(rf"\b{re.escape(entry_point)}(?=\s*\()")
    lines = []
    for test in tests:
        if numeric and "==" in test:
            left, right = test.rsplit("==", 1)
            test = f"{left.rstrip()} == approx({right.strip()})"
        lines.append("    " + call.sub("candidate", test))
    head = "from pytest import approx\n\n" if numeric else ""
    if setup.strip():
        head += setup.strip() + "\n\n"
    return head + "def check(candidate):\n" + "\n".join(lines) + "\n"


def entry_point_of(code: str, first_test: str) -> str | None:
    """The function of ``code`` that the first test calls (the first one it names)."""
    names = re.findall(r"^[ \t]*def[ \t]+([A-Za-z_]\w*)[ \t]*\(", code, flags=re.M)
    called = [(m.start(), name) for name in names for m in [re.search(rf"\b{re.escape(name)}\s*\(", first_test)] if m]
    return min(called)[1] if called else None


def sample_from_row(row: Any, origin: str = "mbpp", line: int | None = None) -> Sample:
    """One MBPP row (full or sanitized) as a code sample."""
    if not isinstance(row, dict):
        raise RecordError(origin, line, None, f"expected an object, got {type(row).__name__}")
    task_id = row.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or not str(task_id).strip():
        raise RecordError(origin, line, "task_id", "is missing" if "task_id" not in row else "expected an integer or a string")
    sanitized = "text" not in row and "prompt" in row
    text = text_field(row, "prompt" if sanitized else "text", origin, line, required=True) or ""
    code = text_field(row, "code", origin, line, required=True, strip=False) or ""
    tests = _strings(row, "test_list", origin, line, required=True)
    setup = "\n".join(_strings(row, "test_imports", origin, line)) if sanitized else row.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise RecordError(origin, line, "test_setup_code", f"expected a string, got {type(setup).__name__}")
    entry_point = entry_point_of(code, tests[0])
    if entry_point is None:
        raise RecordError(origin, line, "test_list", "its first test calls no function that the code defines")
    signature = re.search(rf"^[ \t]*def[ \t]+{re.escape(entry_point)}[ \t]*\(.*?\)[ \t]*(?:->[^:\n]*)?:", code, re.M | re.S)
    if signature is None:
        raise RecordError(origin, line, "code", f"the signature of {entry_point}() was not found")
    example = tests[0].removeprefix("assert").strip().replace("==", "=")
    prompt = f'"""\n{text}\n\n>>> Example: {example}\n"""\n\n{code[: signature.end()]}\n'
    rest_of_line, _, after = code[signature.end() :].partition("\n")
    if rest_of_line.strip() and not rest_of_line.strip().startswith("#"):  # a one-line body: def f(x): return x
        after = "    " + rest_of_line.strip() + "\n" + after
    body = after.rstrip()
    extra = {k: v for k, v in row.items() if k not in MAPPED}
    extra.update(test=tests_as_check(tests, entry_point, setup), entry_point=entry_point, test_list=tests)
    return Sample(id=str(task_id), inputs={"prompt": prompt}, references=[body] if body.strip() else [], extra=extra)


def _hub_rows(path: str, split: str) -> tuple[Iterable[Any], str]:
    before_download(f"{path} is a hub dataset (MBPP), not a local file")
    from datasets import load_dataset

    hub_id, _, name = path.partition(":")
    name = name or "full"
    if name not in CONFIGS:
        raise ValueError(f"data.path: MBPP config must be one of {', '.join(CONFIGS)}, got {name!r} in {path!r}")
    return load_dataset(hub_id, name=name, split=split), f"{hub_id}:{name}/{split}"


def load(rows: Iterable[tuple[int, Any]], origin: str, limit: int | None = None, count: Callable[[], int] | None = None) -> SplitData:
    """Samples from ``(line or row number, row)`` pairs; ``count``: how many rows there are (default:
    the lines of the JSONL file ``origin``)."""
    return samples_from_rows(rows, lambda row, line: sample_from_row(row, origin, line), origin, limit, "task_id", count)


@LOADERS.register(
    "mbpp",
    help="MBPP from the hub (google-research-datasets/mbpp, ':sanitized' for that config) or a local JSONL of its rows: "
    "ILF-style prompts, asserts as check(candidate), the reference body.",
)
def load_mbpp(config: RunConfig, split: str, path: str, limit: int | None) -> SplitData:
    from ilf.config import DataConfig

    local = Path(path).expanduser()
    if local.is_file():
        return load(iter_jsonl(local), str(local), limit)
    if path == DataConfig().path or path in ("mbpp", "sanitized", ":sanitized"):
        path = HUB_ID + (":sanitized" if "sanitized" in path else "")
    rows, origin = _hub_rows(path, split)
    return load(enumerate(rows, start=1), origin, limit, count=lambda: len(rows))
