"""The code task: prompts, the cut at the function's end, refinement prompts, fine-tuning targets."""

from __future__ import annotations

import pytest

from ilf.config import TaskConfig
from ilf.records import Sample
from ilf.tasks import get_task
from ilf.tasks.code import CodeTask, function_body

PROMPT = 'def double(x: int) -> int:\n    """Twice x.\n    >>> double(2)\n    4\n    """\n'
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"
SAMPLE = Sample(id="double", inputs={"prompt": PROMPT}, references=["    return 2 * x\n"], extra={"test": TEST, "entry_point": "double"})


@pytest.mark.parametrize(
    "generated, body",
    [
        ("    return 2 * x\n\ndef triple(x):\n    return 3 * x\n", "    return 2 * x"),
        ("    return 2 * x\n\n\nclass Helper:\n    pass\n", "    return 2 * x"),
        ("    return 2 * x\n\nif __name__ == '__main__':\n    print(double(2))\n", "    return 2 * x"),
        ("    return 2 * x\nprint(double(3))\n", "    return 2 * x"),
        ("    return 2 * x\n# a test\nassert double(1) == 2\n", "    return 2 * x"),
        ("    return 2 * x\n```\nThat doubles x.", "    return 2 * x"),
        ("    return 2 * x<|endoftext|>def junk(): pass", "    return 2 * x"),
        ("    y = x\n\n    # twice\n    return y + y\n\n\n", "    y = x\n\n    # twice\n    return y + y"),
        ("\n    return 2 * x\n\ndef f():", "\n    return 2 * x"),
        ("    return 2 * x\r\ndef f():\r\n", "    return 2 * x"),
        ("def triple(x):\n    return 3 * x\n", ""),
        ("   \n\n", ""),
    ],
)
def test_postprocess_cuts_at_the_next_top_level_statement(generated: str, body: str) -> None:
    assert CodeTask().postprocess(generated) == body
    assert function_body(generated) == body


def test_the_cut_body_runs_as_the_function() -> None:
    task = CodeTask(timeout=5.0)
    generated = "    return 2 * x\n\n\ndef main():\n    while True:\n        pass\n\nmain()\n"  # the tail would hang
    (result,) = task.run_tests([(SAMPLE, task.postprocess(generated))])
    assert result.passed, result


def test_the_prompt_is_the_problem_and_the_completion_follows_it() -> None:
    task = CodeTask()
    assert task.initial_prompt(SAMPLE) == PROMPT
    assert task.completion("\n  \n    return 2 * x\n\n") == "    return 2 * x\n"
    assert task.completion("\tif x:\n\t\treturn 1\r\n\treturn 0") == "\tif x:\n\t\treturn 1\n\treturn 0\n"


def test_the_refinement_prompt_shows_old_code_and_feedback_and_ends_with_the_prompt() -> None:
    task = CodeTask()
    prompt = task.refine_prompt(SAMPLE, "    return x + 2", "It adds 2 instead of doubling.")
    assert prompt == f"OLD CODE:\n{PROMPT}    return x + 2\n\nFEEDBACK:\nIt adds 2 instead of doubling.\n\nREFINEMENT:\n{PROMPT}"
    without = task.refine_prompt(SAMPLE, "    return x + 2", None)
    assert "FEEDBACK" not in without and without.endswith(f"REFINEMENT:\n{PROMPT}") and "return x + 2" in without


def test_the_refinement_prompt_can_carry_the_failing_test() -> None:
    task = CodeTask(include_test_output=True, timeout=5.0)
    prompt = task.refine_prompt(SAMPLE, "    return x + 2", "Double it.")
    assert "FEEDBACK:\nDouble it.\n\nTEST RESULT:\nAssertionError at `assert candidate(-1) == -2`\n\nREFINEMENT:\n" in prompt
    assert prompt.endswith(PROMPT)


def test_judge_prompts_fill_with_a_sample() -> None:
    for template, yes, no in CodeTask().judge_variants():
        text = template.format(**SAMPLE.inputs, inputs="", output="    return x + 2", feedback="Double it.", candidate="    return 2 * x")
        assert text.count(PROMPT) == 2 and "Double it." in text and yes != no


def test_options_set_the_sandbox_and_bad_ones_are_named() -> None:
    options = {"timeout": 3, "memory_mb": 256, "isolation": "unsafe_process", "workers": 2, "executor": "spawn", "max_sandbox_errors": 0.1}
    task = get_task(TaskConfig(name="code", options=options))
    assert isinstance(task, CodeTask)
    sandbox = task.sandbox
    assert (sandbox.limits.timeout, sandbox.limits.memory_mb, sandbox.isolation, sandbox.workers) == (3, 256, "unsafe_process", 2)
    assert (sandbox.executor, sandbox.max_error_share) == ("spawn", 0.1)
    assert get_task(TaskConfig(name="code")).sandbox.isolation == "bwrap"  # isolation is the default, not an option
    with pytest.raises(ValueError, match="task.options.isolation: 'process' was renamed 'unsafe_process'"):
        get_task(TaskConfig(name="code", options={"isolation": "process"}))
    with pytest.raises(ValueError, match="task.options.max_sandbox_errors"):
        get_task(TaskConfig(name="code", options={"max_sandbox_errors": 5}))
    with pytest.raises(ValueError, match="unknown option"):
        get_task(TaskConfig(name="code", options={"time_limit": 3}))
    with pytest.raises(ValueError, match="isolation"):
        get_task(TaskConfig(name="code", options={"isolation": "docker"}))
    with pytest.raises(ValueError, match="timeout must be positive"):
        get_task(TaskConfig(name="code", options={"timeout": 0}))
