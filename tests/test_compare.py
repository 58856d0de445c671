import json
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.demo.compare import ALL_METHODS


@pytest.mark.slow
def test_compare_produces_a_row_for_every_method(tmp_path: Path, capsys) -> None:
    config = tmp_path / "compare.yaml"
    config.write_text(
        "name: compare_test\ntrain_posts: 20\ntest_posts: 30\nsamples_per_post: 3\nbest_of_n: 3\nrloo_steps: 2\n"
        "pretrain_steps: 120\nstudy: {finetune_epochs: 1.0}\n"
    )
    run_dir = tmp_path / "run"
    assert main(["compare", str(config), "--run-dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    result = json.loads((run_dir / "compare.json").read_text())
    assert list(result["systems"]) == list(ALL_METHODS)
    for method, row in result["systems"].items():
        assert f"| {method} |" in printed
        for metric in ("win_rate", "recall", "precision", "rougeL"):
            assert 0.0 <= row[metric] <= 1.0 and row[f"{metric}_sem"] >= 0.0
    assert result["reward_model"]["pairs"] > 0 and result["reward_model"]["eval_accuracy"] is not None
    ranking = json.loads((run_dir / "labelstudio_ranking.json").read_text())
    assert len(ranking) == 30
    systems = {s for task in ranking for group in task["data"]["systems"].values() for s in group}
    assert systems == set(ALL_METHODS) | {"reference"}
    assert (run_dir / "compare.png").exists() and (run_dir / "comparisons.jsonl").exists()


def test_compare_config_rejects_unknown_methods(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("methods: [ilf, ppo]\n")
    assert main(["compare", str(config)]) == 2
    assert "field 'methods': unknown method(s) ppo" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_on_a_dataset_runs_the_ilf_round_and_every_baseline(tmp_path: Path, capsys) -> None:
    """The dataset path on the bundled SLF5K-layout data and tiny models: the A/B comparisons
    train the reward model, the ILF round is an ordinary run, every method gets a row."""
    from ilf.compare import METHODS

    repo = Path(__file__).resolve().parent.parent
    config = tmp_path / "compare.yaml"
    config.write_text(
        f"name: compare_data\nrun_config: {repo / 'experiments' / 'offline.yaml'}\n"
        f"overrides: [data.path={repo / 'data' / 'offline'}, data.limit=12, data.eval_limit=6, refine.num_candidates=2, "
        "refine.sampling.max_new_tokens=8, refine.sampling.max_resamples=0, evaluation.sampling.max_new_tokens=8]\n"
        "best_of_n: 2\nrloo_steps: 2\nreward_learning_rate: 1.0e-3\nbatch_size: 4\n"
    )
    run_dir = tmp_path / "run"
    assert main(["compare", str(config), "--run-dir", str(run_dir)]) == 0
    result = json.loads((run_dir / "compare.json").read_text())
    assert list(result["systems"]) == list(METHODS)
    printed = capsys.readouterr().out
    for method, row in result["systems"].items():
        assert f"| {method} |" in printed
        assert 0.0 <= row["win_rate"] <= 1.0 and row["n"] == 6 and "rougeL" in row
    assert result["reward_model"]["pairs"] > 0
    assert (run_dir / "ilf" / "selected.jsonl").exists()  # the ILF round ran as a pipeline
    ranking = json.loads((run_dir / "labelstudio_ranking.json").read_text())
    assert len(ranking) == 6
