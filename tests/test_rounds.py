"""Feedback rounds: each round an ordinary run on fresh samples, starting from the last round's policy."""

import json
import os
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from ilf.config import load_config, read_config_file
from ilf.records import Sample, read_records
from ilf.rounds import Rounds


def _world_config(tmp_path: Path, **changes: object) -> Path:
    """The quick demo's world as a plain run config, shrunk to seconds per round."""
    raw = read_config_file(str(files("ilf.studies") / "demo_quick.yaml"))
    raw.pop("study")
    raw["world"]["preference"] = "hidden"
    raw["data"].update(limit=12, eval_limit=16)
    raw["pretraining"].update(steps=20, examples=400, cache_dir=str(tmp_path / "cache"))
    raw["refine"]["num_candidates"] = 2
    raw["finetune"]["num_train_epochs"] = 1
    raw["evaluation"]["metrics"] = ["facts", "selection_hits"]
    raw.update(changes)
    path = tmp_path / "rounds.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _markers(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): json.loads(p.read_text())["finished"] for p in sorted(run_dir.glob("round-*/.ilf/stages/*.json"))}


@pytest.mark.slow
def test_two_rounds_resume_after_a_kill_in_round_two(tmp_path: Path) -> None:
    config = _world_config(tmp_path, rounds=2)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "ilf", "run", str(config), "--run-dir", str(run_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reached = run_dir / "round-2" / ".ilf" / "stages" / "feedback.json"
    deadline = time.monotonic() + 300
    while not reached.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before round 2 could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "round-2" / "metrics.json").exists() and not (run_dir / "metrics.json").exists()
    before = _markers(run_dir)
    assert "round-1/.ilf/stages/evaluate.json" in before and "round-2/.ilf/stages/feedback.json" in before

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _markers(run_dir)
    assert {k: v for k, v in after.items() if k in before} == before  # round 1 and round 2's first stages kept
    assert {"round-2/.ilf/stages/refine.json", "round-2/.ilf/stages/finetune.json"} <= set(after)

    # round 2 critiques fresh posts, written by round 1's policy; the refiner stays the pretrained one
    first = [s.id for s in read_records(run_dir / "round-1" / "samples.jsonl", Sample)]
    second = [s.id for s in read_records(run_dir / "round-2" / "samples.jsonl", Sample)]
    assert len(first) == len(second) == 12 and not set(first) & set(second)
    resolved = load_config(run_dir / "round-2" / "config.yaml")
    assert resolved.policy.name_or_path == str(run_dir / "round-1" / "model")
    assert resolved.refiner is not None and resolved.refiner.name_or_path == "pretrained"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["number"] for r in metrics["rounds"]] == [1, 2]
    assert metrics["rounds"][1]["systems"] == json.loads((run_dir / "round-2" / "metrics.json").read_text())["systems"]
    assert "| round 1 |" in metrics["rounds_table"] and "| round 2 |" in metrics["rounds_table"]
    assert "by round" in result.stdout and (run_dir / "rounds.png").exists()


@pytest.mark.slow
def test_restarted_rounds_train_the_base_policy_on_every_rounds_targets(tmp_path: Path) -> None:
    config = load_config(_world_config(tmp_path, rounds=2, round_training="restart"))
    rounds = Rounds(config, tmp_path / "run")
    rounds.run()
    first, second = (tmp_path / "run" / f"round-{k}" for k in (1, 2))
    resolved = load_config(second / "config.yaml")
    assert resolved.policy.name_or_path == "pretrained"  # trained from the base again
    assert resolved.outputs.model is not None and resolved.outputs.model.name_or_path == str(first / "model")
    pairs = [json.loads((r / ".ilf" / "stages" / "finetune.json").read_text())["summary"]["pairs"] for r in (first, second)]
    assert pairs == [12, 24]
    # retraining round 1 makes round 2 stale: its stages read round 1's model and targets
    assert set(rounds.status().values()) == {"done"}
    (first / ".ilf" / "stages" / "finetune.json").unlink()
    Rounds(config, tmp_path / "run").pipelines(1)[0].run()
    status = Rounds(config, tmp_path / "run").status()
    assert status["round-1/finetune"] == "done" and status["round-2/outputs"] == "pending"
    assert status["round-2/finetune"] == "waits on outputs"  # its own reads are round 1's targets, unchanged
