"""experiments/code_study.yaml reduced to a few problems: the code task through every method of a study."""

from __future__ import annotations

import json
from pathlib import Path

from ilf.records import Output, Sample, read_records
from ilf.study import run_study

CONFIG = Path(__file__).resolve().parent.parent / "experiments" / "code_study.yaml"
SMALL = [
    "data.limit=3",
    "data.eval_limit=4",
    "refine.num_candidates=2",
    "outputs.sampling.max_new_tokens=16",
    "refine.sampling.max_new_tokens=16",
    "evaluation.sampling.max_new_tokens=16",
    "finetune.num_train_epochs=1",
    "evaluation.num_samples=3",
]


def test_the_code_study_runs_every_method_and_reports_pass_at_1(tmp_path: Path) -> None:
    result = run_study(CONFIG, tmp_path, SMALL)
    rows = {row["method"]: row["metrics"] for row in json.loads((tmp_path / "cells.json").read_text())}
    methods = ["before", "ilf", "sft_initial", "sft_reference", "ilf_execution", "sdft", "sdpo"]
    assert sorted(rows) == sorted(methods)
    for method in methods:
        assert 0.0 <= rows[method]["pass@1"] <= 1.0 and rows[method]["problems"] == 4, method
        assert "pass@10" not in rows[method]  # three programs per problem cannot estimate pass@10
        assert f"| {method} | " in result["report"]
    # The references are sound: every one sft_reference trains on passes its problem's tests.
    assert rows["sft_reference"]["code.targets"] == 3 and rows["sft_reference"]["code.targets_pass_rate"] == 1.0
    # ILF from the file's critiques and ILF from execution both ran their feedback rounds on the same outputs.
    ilf, execution = tmp_path / "cells" / "seed0-ilf", tmp_path / "cells" / "seed0-ilf_execution"
    assert [f["source"] for f in _jsonl(ilf / "feedback.jsonl")] == ["written for experiments/code_study.yaml"] * 3
    assert {f["source"] for f in _jsonl(execution / "feedback.jsonl")} == {"execution"}
    assert "code.refinement_pass_rate" in rows["ilf"] and "code.refinement_pass_rate" in rows["ilf_execution"]
    # A random tiny model writes no passing refinement: ILF has nothing to train on and keeps the policy, saying so.
    assert rows["ilf"]["code.targets"] == rows["ilf"]["code.selected"] == 0
    assert json.loads((ilf / "model" / "train_metrics.json").read_text()) == {"pairs": 0, "steps": 0, "train_loss": None}
    # The self-distillation peers read the same critiques; sdpo's every rollout ran against its problem's tests.
    assert rows["sdft"]["cost.critiques"] == rows["sdpo"]["cost.critiques"] == rows["ilf"]["cost.critiques"] == 3
    sdpo = json.loads((tmp_path / "cells" / "seed0-sdpo" / "model" / "sdpo_metrics.json").read_text())
    assert rows["sdpo"]["cost.executions"] == sdpo["rewards_scored"] == 4 * 8 and sdpo["reward_unit"] == "executions"
    finetune = json.loads((tmp_path / "cells" / "seed0-sdft" / ".ilf" / "stages" / "finetune.json").read_text())
    assert finetune["summary"]["teacher"] == "refine"  # the teacher read the refiner's prompt: the problem after the critique
    # Each held-out program's verdict is kept beside it; the training problems are not among the held-out ones.
    evaluated = read_records(ilf / "eval_outputs.jsonl", Output)
    assert len(evaluated) == 4 * 3 and all(o.extra["execution"]["status"] for o in evaluated)
    train = {s.id for s in read_records(ilf / "samples.jsonl", Sample)}
    assert train == {"HumanEval/100", "HumanEval/101", "HumanEval/102"} and not train & {o.sample_id for o in evaluated}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
