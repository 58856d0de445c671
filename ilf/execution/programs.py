"""Samples with unit tests as programs: what the code task, the execution feedback source, the
unit_tests selector and the pass@k metric share.

A code sample keeps its problem in ``inputs["prompt"]`` (text that ends after the function's
signature and docstring), its tests in ``extra["test"]`` (code defining ``check(candidate)``)
and the name of the function under test in ``extra["entry_point"]``. A completion is the
function body that follows the prompt.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any, Protocol, Sequence, runtime_checkable

from ilf.execution.sandbox import ExecutionResult, Sandbox, build_program
from ilf.records import Sample

PROMPT_KEY = "prompt"
TEST_KEY = "test"
VISIBLE_TEST_KEY = "visible_test"  # the tests the training side may run, where a sample keeps some hidden (as MBPP shows some)
ENTRY_POINT_KEY = "entry_point"

_TOP_LEVEL_DEF = re.compile(r"^def[ \t]+([A-Za-z_]\w*)[ \t]*\(", re.M)

_default: Sandbox | None = None
_default_lock = threading.Lock()


def last_top_level_def(source: str) -> str | None:
    """The name of the last function defined at the top level of ``source``: the function a
    prompt that ends after a signature asks for."""
    names = _TOP_LEVEL_DEF.findall(source)
    return names[-1] if names else None


def has_tests(sample: Sample) -> bool:
    return bool(sample.extra.get(TEST_KEY)) and bool(sample.extra.get(ENTRY_POINT_KEY)) and PROMPT_KEY in sample.inputs


def program_for(sample: Sample, completion: str) -> str:
    """The program that passes when ``completion`` passes the sample's tests."""
    if not has_tests(sample):
        raise ValueError(
            f"sample {sample.id}: running its code needs inputs.{PROMPT_KEY}, extra.{TEST_KEY} and extra.{ENTRY_POINT_KEY} "
            "(the humaneval, mbpp and ilf_code loaders give them)"
        )
    return build_program(sample.inputs[PROMPT_KEY], completion, sample.extra[TEST_KEY], sample.extra[ENTRY_POINT_KEY])


def default_sandbox() -> Sandbox:
    """The sandbox of a task that does not configure one (not a code task): default limits,
    bubblewrap, refused without it. A code task's options are its own sandbox's, see ``sandbox_for``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
        return _default


@runtime_checkable
class RunsPrograms(Protocol):
    """A task whose outputs are programs, with the sandbox they run in (the code task's options set its limits)."""

    @property
    def sandbox(self) -> Sandbox: ...


def sandbox_for(task: Any) -> Sandbox:
    """The task's sandbox, else the default one."""
    return task.sandbox if isinstance(task, RunsPrograms) else default_sandbox()


def run_completions(sandbox: Sandbox, pairs: Sequence[tuple[Sample, str]]) -> list[ExecutionResult]:
    """Run each (sample, completion) against the sample's tests, in parallel; results in order.
    Raises :class:`SandboxErrors` once more than the sandbox's share of its programs ended in a
    sandbox error, so that a broken sandbox stops a run instead of reading as failing programs."""
    results = sandbox.run_many([program_for(sample, completion) for sample, completion in pairs])
    sandbox.check_errors()
    return results


def with_visible_tests(sample: Sample) -> Sample:
    """The sample with its visible tests (``extra.visible_test``) in place of all of them; an error
    naming it where it has none."""
    if not sample.extra.get(VISIBLE_TEST_KEY):
        raise ValueError(
            f"sample {sample.id!r} has no visible tests (extra.{VISIBLE_TEST_KEY}): task.options.training_tests: all runs every test"
        )
    return dataclasses.replace(sample, extra={**sample.extra, TEST_KEY: sample.extra[VISIBLE_TEST_KEY]})


def run_training_tests(task: Any, pairs: Sequence[tuple[Sample, str]]) -> list[ExecutionResult]:
    """Run each (sample, completion) against the tests the training side may see: all of a sample's
    tests, or with the task's ``training_tests: visible`` only its visible ones, so that execution
    feedback, a pick by the tests, sft_passing and online rewards never run what pass@k runs."""
    visible = getattr(task, "training_tests", "all") == "visible"
    return run_completions(sandbox_for(task), [(with_visible_tests(s) if visible else s, c) for s, c in pairs])


def execution_feedback(result: ExecutionResult) -> str:
    """Feedback an automatic critic gives: 'good', or what failed and in which test."""
    return "good" if result.passed else f"The program fails: {result.summary()}"


def result_record(result: ExecutionResult) -> dict[str, Any]:
    """The part of a result worth keeping beside an output or a feedback record."""
    return {"status": result.status, "error": result.error, "line": result.line, "test": result.test, "isolation": result.isolation}


def check_sandbox(task: Any) -> None:
    """Refuse, before any program runs, where the task's sandbox cannot isolate programs (a code
    task, or any task with a ``sandbox``); other tasks run no programs and pass."""
    if isinstance(task, RunsPrograms):
        _ = task.sandbox.plan  # settling the plan is the check


__all__ = [
    "PROMPT_KEY",
    "TEST_KEY",
    "ENTRY_POINT_KEY",
    "last_top_level_def",
    "has_tests",
    "program_for",
    "default_sandbox",
    "sandbox_for",
    "run_completions",
    "run_training_tests",
    "with_visible_tests",
    "VISIBLE_TEST_KEY",
    "execution_feedback",
    "result_record",
    "check_sandbox",
]
