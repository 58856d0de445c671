"""`ilf demo code` end to end, reduced: a world model after a few pre-training steps, two seeds,
one size, the methods its contrasts and gate read; programs run in the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilf.cli import main

METHODS = (
    "before",
    "ilf",
    "refine_no_feedback",
    "ilf_execution",
    "ilf_execution_other",
    "sft_reference",
    "ilf_cued",
    "refine_no_feedback_cued",
)
CONTRASTS = ("ilf - refine_no_feedback", "ilf_execution - ilf_execution_other", "ilf_cued - refine_no_feedback_cued")


@pytest.mark.slow
def test_code_demo_reports_pass_at_k_the_contrasts_and_the_gate(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "code"
    argv = [
        "demo",
        "code",
        "--run-dir",
        str(run_dir),
        "--set",
        "pretraining.steps=12",
        "--set",
        "pretraining.examples=600",
        "--set",
        "data.limit=6",
        "--set",
        "data.eval_limit=6",
        "--set",
        "finetune.num_train_epochs=1",
        "--set",
        "study.sizes=[6]",
        "--set",
        "study.seeds=[0,1]",
        "--set",
        'study.axes={"pretraining.seed": [7]}',
        "--set",
        f"study.methods={json.dumps(list(METHODS))}",
        "--set",
        f"study.contrasts={json.dumps(list(CONTRASTS))}",
        "--set",
        'study.gates=["sft_reference pass@1 >= 0.9 at 6"]',
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    cells = json.loads((run_dir / "cells.json").read_text())
    assert {row["method"] for row in cells} == set(METHODS)
    for row in cells:
        metrics = row["metrics"]
        assert 0.0 <= metrics["pass@1"] <= metrics["pass@10"] <= 1.0  # ten sampled programs per held-out task
        assert metrics["programs"] == 60 and metrics["problems"] == 6
    reference = [row for row in cells if row["method"] == "sft_reference"]
    assert all(row["metrics"]["code.targets_pass_rate"] == 1.0 for row in reference)  # every reference passes its tests
    # the control's feedback is the sandbox's message about another program of the round
    control = next(row for row in cells if row["method"] == "ilf_execution_other")
    feedback = [json.loads(line) for line in (Path(control["dir"]) / "feedback.jsonl").read_text().splitlines()]
    failing = [f for f in feedback if f["feedback_class"] != "passed"]
    assert all(f["feedback_of"] != f["sample_id"] for f in failing) or len(failing) < 2
    # the hidden world's text leaves the conventions unstated; the cued control's states them
    # (that execution feedback runs only the visible tests: test_program_world)
    execution = next(row for row in cells if row["method"] == "ilf_execution")
    samples = {s["id"]: s for s in map(json.loads, (Path(execution["dir"]) / "samples.jsonl").read_text().splitlines())}
    cued = next(row for row in cells if row["method"] == "ilf_cued")
    hidden_prompts = [s["inputs"]["prompt"] for s in samples.values()]
    cued_prompts = [json.loads(line)["inputs"]["prompt"] for line in (Path(cued["dir"]) / "samples.jsonl").read_text().splitlines()]
    stated = ("below 0", "rounding")
    assert not any(w in p for p in hidden_prompts for w in stated)
    with_conventions = [p for p in cued_prompts if "subtract" in p or "divide" in p]
    assert with_conventions and all(any(w in p for w in stated) for p in with_conventions)
    # the contrasts and the gate are in the report, with intervals over the two seeds
    contrasts = {c["contrast"]: c for c in json.loads((run_dir / "contrasts.json").read_text())["contrasts"] if c["metric"] == "pass@1"}
    for name in CONTRASTS:
        assert contrasts[name]["n"] == 2 and contrasts[name]["low"] <= contrasts[name]["mean"] <= contrasts[name]["high"]
        assert f"| {name} | pass@1 |" in printed
    gate = json.loads((run_dir / "contrasts.json").read_text())["gates"]
    assert [g["gate"] for g in gate] == ["sft_reference pass@1 >= 0.9 at 6"]
    assert "| sft_reference pass@1 >= 0.9 at 6 |" in printed
    assert len(list((tmp_path / "world-cache").glob("program-world-model-*/config.json"))) == 1
    assert list((tmp_path / "world-cache" / "executions").glob("*/*.json"))  # verdicts cached beside the world model
