import json
from pathlib import Path

import pytest
from conftest import REPO

from ilf.cli import main

METHODS = ["before", "ilf", "sft_initial", "sft_reference", "rm_best_of_n", "dpo", "rloo", "ilf_best_of_n"]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.mark.slow
def test_compare_on_the_world_gives_every_method_a_row_judged_by_one_reward_model(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    sets = [
        "data.limit=20",
        "data.eval_limit=30",
        "feedback_options.simulated.comparisons_per_sample=3",
        "reward.best_of_n=3",
        "reward.num_train_epochs=1",
        "method_options.rloo.max_steps=2",
        "pretraining.steps=120",
        "pretraining.examples=4000",
        f"pretraining.cache_dir={tmp_path / 'cache'}",
        "finetune.num_train_epochs=1",
        "study.seeds=[0]",
        "study.contrasts=[]",
    ]
    assert main(["compare", str(REPO / "experiments" / "compare_offline.yaml"), "--run-dir", str(run_dir), *_sets(sets)]) == 0
    printed = capsys.readouterr().out
    rows = {row["method"]: row for row in json.loads((run_dir / "cells.json").read_text())}
    assert list(rows) == METHODS
    for method, row in rows.items():
        assert f"| {method} |" in printed
        for metric in ("win_rate", "recall", "precision", "rougeL"):
            assert 0.0 <= row["metrics"][metric] <= 1.0 and row["metrics"][f"{metric}_sem"] >= 0.0
    # one reward model (one comparisons stage, one reward stage) serves every method that needs it
    computed = [p for p in run_dir.glob("cells/*/.ilf/stages/reward.json") if "shared_from" not in json.loads(p.read_text())]
    assert len(computed) == 1
    assert rows["ilf_best_of_n"]["stages"]["finetune"] == "shared"  # trained once, as ilf
    assert rows["ilf"]["metrics"]["reward.pairs"] > 0 and "reward.eval_accuracy" in rows["ilf"]["metrics"]
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # one bar per method: no sizes to plot against
    ranking = json.loads((run_dir / "labelstudio_ranking.json").read_text())  # a human evaluation of the same outputs
    assert len(ranking) == 30
    systems = {s for task in ranking for group in task["data"]["systems"].values() for s in group}
    assert systems == set(METHODS) | {"reference"}


@pytest.mark.slow
def test_compare_on_a_dataset_runs_every_method_on_the_bundled_layout(slf5k_dir: Path, tmp_path: Path, caplog) -> None:
    run_dir = tmp_path / "run"
    sets = [
        f"data.path={slf5k_dir}",
        "data.limit=12",
        "data.eval_limit=6",
        "policy.name_or_path=tiny:gpt2",
        "refiner.name_or_path=tiny:gpt2",
        "reward.model.name_or_path=tiny:gpt2",
        "reward.learning_rate=1.0e-3",
        "reward.best_of_n=2",
        "method_options.rloo.max_steps=2",
        "method_options.rloo.per_device_train_batch_size=4",
        "method_options.dpo.per_device_train_batch_size=4",
        "refine.num_candidates=2",
        "refine.sampling.max_new_tokens=8",
        "refine.sampling.max_prompt_tokens=null",
        "outputs.sampling.max_new_tokens=8",
        "outputs.sampling.max_prompt_tokens=null",
        "evaluation.sampling.max_new_tokens=8",
        "evaluation.sampling.max_prompt_tokens=null",
        "finetune.per_device_train_batch_size=4",
        "finetune.gradient_accumulation_steps=1",
        "finetune.lora={r: 4, alpha: 8, dropout: 0.0, target_modules: [c_attn]}",
    ]
    with caplog.at_level("WARNING", logger="ilf.methods"):
        assert main(["compare", str(REPO / "experiments" / "compare_slf5k_100.yaml"), "--run-dir", str(run_dir), *_sets(sets)]) == 0
    rows = {row["method"]: row for row in json.loads((run_dir / "cells.json").read_text())}
    assert list(rows) == METHODS
    # finetune.lora trains the SFT methods' adapter; the methods that train every weight say they ignore it
    assert (run_dir / "cells" / "seed0-ilf" / "model" / "adapter" / "adapter_config.json").is_file()
    ignored = {m for m in METHODS if f"finetune.lora is set, but the method {m!r} trains every weight" in caplog.text}
    assert ignored == {"dpo", "rloo"}
    for row in rows.values():
        assert 0.0 <= row["metrics"]["win_rate"] <= 1.0 and row["metrics"]["n"] == 6
    assert (run_dir / "cells" / "seed0-ilf" / "selected.jsonl").exists()  # the ILF round ran as a pipeline


def test_unknown_method_in_a_compare_config_is_one_line(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "compare",
                str(REPO / "experiments" / "compare_offline.yaml"),
                "--run-dir",
                str(tmp_path / "r"),
                "--set",
                "study.methods=[ilf, ppo]",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "unknown method 'ppo'" in err and err.count("\n") == 1
