"""The benchmarks run from a checkout and print their tables (on a workload small enough for CI).

They are measured by hand (see docs/performance.md); here only that they run, count
the work they did and report every variant, never how fast.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from conftest import REPO


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 5 and cells[0] != "variant" and not cells[0].startswith("-"):
            rows[cells[0]] = cells
    return rows


def test_generation_benchmark_prints_every_variant_with_ratios(tmp_path) -> None:
    out = tmp_path / "generation.md"
    _run(
        "benchmarks/generation.py",
        "--models",
        "tiny",
        "--prompts",
        "6",
        "--samples",
        "3",
        "--new-tokens",
        "4",
        "--batch-size",
        "4",
        "--per-sample-prompts",
        "1",
        "--out",
        str(out),
    )
    report = out.read_text()
    assert report.count("ratio to per-sample loop") == 1 and report.count("ratio to batched generate") == 1
    rows = _rows(report)
    for variant in (
        "per-sample loop",
        "batched generate",
        "shared prompt, batches of 4 by length",
        "ilf refine stage",
        "ilf refine stage, bfloat16",
    ):
        assert variant in rows, (variant, list(rows))
    assert re.search(r"max abs log-prob gap to float32: \d\.\d{3}", rows["ilf refine stage, bfloat16"][-1])
    assert all(float(cells[2].rstrip("x")) > 0 and float(cells[4].replace(",", "")) > 0 for cells in rows.values())
    # the refine stage's share of the matmul ceiling measured in the same run, in both types
    assert re.search(r"Ceiling: a 2048-cubed matmul at \d+ GFLOP/s in float32, \d+ GFLOP/s in bfloat16", report)
    for variant in ("ilf refine stage", "ilf refine stage, bfloat16"):
        assert re.search(rf"\| {variant} \| \d+ \| \d+% \|", report), variant


def test_selection_benchmark_scores_every_candidate(tmp_path) -> None:
    out = tmp_path / "selection.md"
    _run("benchmarks/selection.py", "--samples", "20", "--candidates", "3", "--pairs-samples", "2", "--out", str(out))
    report = out.read_text()
    rows = _rows(report)
    assert set(rows) == {"pairs one by one", "embedder ceiling", "ilf embedding selector"}
    assert rows["pairs one by one"][2] == "1.00x"
    assert "ilf selector:" in report and "for 60 candidates" in report


def test_execution_benchmark_prints_every_variant_on_both_workloads_and_the_isolation(tmp_path) -> None:
    out = tmp_path / "execution.md"
    _run("benchmarks/execution.py", "--world", "8", "--humaneval", "4", "--out", str(out))
    report = out.read_text()
    assert "Isolation: bubblewrap" in report and ("an unprivileged uid per worker" in report or "user namespace" in report)
    assert report.count("ratio to one python -I per program") == 2
    assert "HumanEval canonical solutions (4 programs" in report and "world programs (8 programs" in report
    for variant in ("one python -I per program", "sandbox, spawn executor (before)", "sandbox, warm executor (now)"):
        assert report.count(f"| {variant} |") == 2, variant


def test_study_executor_benchmark_runs_every_executor_on_a_tiny_study(tmp_path) -> None:
    out = tmp_path / "executors.md"
    tiny = ["pretraining.steps=4", "pretraining.examples=100", "data.limit=2", "data.eval_limit=2", "evaluation.num_samples=2"]
    tiny += ["study.sizes=[2]", "study.seeds=[0,1]", 'study.axes={"pretraining.seed": [7]}', "study.methods=[before]", "study.gates=[]"]
    _run("benchmarks/study_executors.py", "--study", "code", *(a for s in tiny for a in ("--set", s)), "--out", str(out))
    report = out.read_text()
    rows = _rows(report)
    assert {"1 local process, 1 thread", "2 local processes, 1 thread each", "Ray, 1 task of 1 CPU", "Ray, 2 tasks of 1 CPU"} <= set(rows)
    assert rows["1 local process, 1 thread"][2] == "1.00x" and "cells/min" in report
    assert re.search(r"\| local processes \| \d+\.\d\dx \|", report) and re.search(r"\| Ray tasks \| \d+\.\d\dx \|", report)
    assert re.search(r"\| local processes \| \d+\.\d\dx \| \d+\.\d\dx \|", report)  # the whole study, and the cells' own time
    assert re.search(r"\| Ray, 2 workers \| \| \| [+-]\d+\.\d\d \|", report) and "Projected for the paper's grid" in report


def test_rehearsal_reports_every_stage_it_computed_with_its_peak_memory_and_estimate(tmp_path) -> None:
    # one layer and a small vocabulary of the 0.5B shape: the rehearsal's machinery, not its size
    args = ["--layers", "1", "--vocab", "2048", "--samples", "2", "--eval-samples", "2", "--prompt-tokens", "60", "--methods", "ilf"]
    printed = _run("benchmarks/rehearsal.py", "--run-dir", str(tmp_path), *args)
    assert "shape:qwen2.5-0.5b,num_hidden_layers=1,vocab_size=2048" in printed
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in printed.splitlines() if line.startswith("| seed0-")]
    assert [row[1] for row in rows] == ["data", "outputs", "feedback", "refine", "select", "finetune", "evaluate"]  # as they ran
    assert all(float(row[4]) >= float(row[3]) > 0 for row in rows)  # peak RSS GiB, measured, at least what the stage began with
    estimated = {row[1]: row[6] for row in rows}
    assert estimated["finetune"] == "full fine-tune" and estimated["data"] == "-"
    assert (tmp_path / "memory.md").read_text() in printed

    spec = importlib.util.spec_from_file_location("rehearsal", REPO / "benchmarks" / "rehearsal.py")
    rehearsal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rehearsal)
    estimate = rehearsal.estimates("qwen2.5-0.5b")
    assert round(estimate["params_b"], 3) == 0.494 and estimate["train"] == 4 * estimate["weights"]
    assert rehearsal.stage_estimate("seed0-dpo-n4", "finetune", estimate) == ("fine-tune + frozen copy", estimate["train+frozen"])


def test_up_to_date_benchmark_reports_every_variant_and_sees_the_edit(tmp_path) -> None:
    out = tmp_path / "up_to_date.md"
    report = _run("benchmarks/up_to_date.py", "--mib", "8", "--files", "2", "--out", str(out))
    rows = _rows(report)
    assert list(rows) == ["cold", "SQLite cache", "in-memory cache", "one shard rewritten, size and mtime kept"]
    assert rows["cold"][2] == "1.00x" and "The digest changed after the edit: yes." in out.read_text()
