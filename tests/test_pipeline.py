"""The whole round through the ``ilf`` command, as a user runs it."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, slf5k_row, small_run_overrides, write_jsonl

from ilf.cli import main
from ilf.config import load_config
from ilf.pipeline import STAGES, Pipeline
from ilf.records import Feedback, Output, Refinements, Sample, Selection, read_records

OFFLINE = str(REPO / "experiments" / "offline.yaml")


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _marker_times(run_dir: Path) -> dict[str, str]:
    return {p.stem: json.loads(p.read_text())["finished"] for p in sorted((run_dir / ".ilf/stages").glob("*.json"))}


@pytest.mark.slow
def test_offline_round_end_to_end_then_rerun_skips_and_overrides_rerun_from_select(slf5k_dir: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = small_run_overrides(slf5k_dir)
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides)]) == 0
    printed = capsys.readouterr().out
    assert "| base |" in printed and "| finetuned |" in printed

    samples = read_records(run_dir / "samples.jsonl", Sample)
    refinements = read_records(run_dir / "refinements.jsonl", Refinements)
    selected = read_records(run_dir / "selected.jsonl", Selection)
    assert len(samples) == 8
    assert [r.sample_id for r in refinements] == [s.id for s in samples]
    assert all(len(r.candidates) == 3 and all(c.text for c in r.candidates) for r in refinements)
    assert [s.sample_id for s in selected] == [s.id for s in samples]
    for selection in selected:
        scores = [c.scores for c in selection.candidates]
        assert all(set(s) == {"embedding", "random", "oracle_rouge"} for s in scores)
        best = max(range(3), key=lambda i: scores[i]["embedding"])
        assert selection.index == best and selection.text == selection.candidates[best].text
    assert (run_dir / "model" / "config.json").exists() and (run_dir / "model" / "tokenizer.json").exists()
    # every stage says what it held: fine-tuning holds a model, its gradients and optimizer state
    peaks = {p.stem: json.loads(p.read_text())["peak_memory"] for p in (run_dir / ".ilf/stages").glob("*.json")}
    assert set(peaks) == {"data", "outputs", "feedback", "refine", "select", "finetune", "evaluate"}
    assert all(peak["rss_mib"] > 0 and peak["rss_scope"] == "stage" for peak in peaks.values())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for system in ("base", "finetuned"):
        assert metrics["systems"][system]["n"] == 6
        assert {"rouge1", "rouge2", "rougeL", "rougeL_sem", "mean_words"} <= set(metrics["systems"][system])
    resolved = load_config(run_dir / "config.yaml")
    assert resolved.data.limit == 8 and resolved.refine.num_candidates == 3  # --set reached the resolved config

    first = _marker_times(run_dir)
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides)]) == 0
    assert _marker_times(run_dir) == first  # nothing recomputed

    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--set", "selection.method=random"]) == 0
    again = _marker_times(run_dir)
    unchanged = [s for s in STAGES if s in first and again[s] == first[s]]
    assert unchanged == ["data", "outputs", "feedback", "refine"]
    reselected = read_records(run_dir / "selected.jsonl", Selection)
    assert all(s.selector == "random" for s in reselected)
    assert read_records(run_dir / "refinements.jsonl", Refinements) == refinements


@pytest.mark.slow
def test_other_slf5k_layout_file_via_set_and_until(tmp_path: Path, capsys) -> None:
    train = write_jsonl(tmp_path / "elsewhere" / "my_train.jsonl", [slf5k_row(i, "mine") for i in range(40, 45)])
    held = write_jsonl(tmp_path / "elsewhere" / "my_test.jsonl", [slf5k_row(i, "held") for i in range(60, 63)])
    run_dir = tmp_path / "run"
    overrides = small_run_overrides(train) + [f"data.eval_path={held}"]
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--until", "refine"]) == 0
    assert [s.id for s in read_records(run_dir / "samples.jsonl", Sample)] == [f"mine-{i:04d}" for i in range(40, 45)]
    assert [s.id for s in read_records(run_dir / "eval_samples.jsonl", Sample)] == [f"held-{i:04d}" for i in range(60, 63)]
    assert (run_dir / "refinements.jsonl").exists() and not (run_dir / "selected.jsonl").exists()


@pytest.mark.slow
def test_broken_input_names_file_line_field_and_leaves_run_dir_intact(slf5k_dir: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = small_run_overrides(slf5k_dir)
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--until", "select"]) == 0
    before = _tree_digest(run_dir)
    rows = [slf5k_row(i) for i in range(5)]
    rows[3]["title"] = 42
    broken = write_jsonl(tmp_path / "broken" / "train.jsonl", rows)
    capsys.readouterr()
    code = main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--set", f"data.path={broken}"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"ilf: error: {broken}:4: field 'title': expected a string, got int"
    assert _tree_digest(run_dir) == before  # not a byte changed, markers and config included


@pytest.mark.slow
def test_killed_generation_resumes_without_duplicates_or_losses(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data" / "train.jsonl", [slf5k_row(i) for i in range(48)])
    write_jsonl(tmp_path / "data" / "test.jsonl", [slf5k_row(i, "test") for i in range(2)])
    run_dir = tmp_path / "run"
    overrides = small_run_overrides(data.parent, limit=48, eval_limit=2) + [
        "refine.sampling.batch_size=1",
        "refine.sampling.max_new_tokens=24",
        "refine.num_candidates=4",
    ]
    command = [sys.executable, "-m", "ilf", "run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--until", "refine"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial_dir = run_dir / ".ilf" / "partial"
    deadline = time.monotonic() + 120
    journal_lines = 0
    while time.monotonic() < deadline and process.poll() is None:
        journals = list(partial_dir.glob("refine-*.jsonl"))
        if journals:
            journal_lines = journals[0].read_text().count("\n")
            if journal_lines >= 5:
                break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "refinements.jsonl").exists()
    (journal,) = partial_dir.glob("refine-*.jsonl")
    done_before = journal.read_text().count("\n")
    assert 5 <= done_before < 48

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resuming, {done_before} of 48 prompts already done" in result.stderr
    refinements = read_records(run_dir / "refinements.jsonl", Refinements)
    feedback = read_records(run_dir / "feedback.jsonl", Feedback)
    assert [(r.sample_id, r.feedback) for r in refinements] == [(f.sample_id, f.text) for f in feedback]
    assert len({r.sample_id for r in refinements}) == 48 and all(len(r.candidates) == 4 for r in refinements)
    marker = json.loads((run_dir / ".ilf/stages/refine.json").read_text())
    assert marker["summary"]["resumed_prompts"] == done_before
    assert not list(partial_dir.glob("refine-*.jsonl"))  # the journal is gone once the stage is complete


@pytest.mark.slow
def test_stage_commands_chain_over_files(slf5k_dir: Path, tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    overrides = small_run_overrides(slf5k_dir, limit=4, eval_limit=3)
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--until", "feedback"]) == 0
    common = ["--config", OFFLINE, *_sets(overrides)]
    out = tmp_path / "stages"
    assert (
        main(
            [
                "refine",
                "--samples",
                str(run_dir / "samples.jsonl"),
                "--feedback",
                str(run_dir / "feedback.jsonl"),
                "--out",
                str(out / "ref.jsonl"),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "select",
                "--samples",
                str(run_dir / "samples.jsonl"),
                "--refinements",
                str(out / "ref.jsonl"),
                "--out",
                str(out / "sel.jsonl"),
                "--method",
                "oracle_rouge",
                *common,
            ]
        )
        == 0
    )
    selections = read_records(out / "sel.jsonl", Selection)
    assert len(selections) == 4 and all(s.selector == "oracle_rouge" for s in selections)
    # one implementation: the command's refinements are the run's refine stage's, byte for byte
    assert main(["run", OFFLINE, "--run-dir", str(run_dir), *_sets(overrides), "--until", "refine"]) == 0
    assert (run_dir / "refinements.jsonl").read_bytes() == (out / "ref.jsonl").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["ref.jsonl", "sel.jsonl"]  # no work folder left behind
    assert (
        main(
            [
                "finetune",
                "--samples",
                str(run_dir / "samples.jsonl"),
                "--selected",
                str(out / "sel.jsonl"),
                "--out",
                str(out / "model"),
                *common,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--samples",
                str(run_dir / "eval_samples.jsonl"),
                "--model",
                str(out / "model"),
                "--out",
                str(out / "metrics.json"),
                "--outputs-out",
                str(out / "outputs.jsonl"),
                *common,
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["systems"]["model"]["n"] == 3
    assert len(read_records(out / "outputs.jsonl", Output)) == 3


def test_every_command_has_help(capsys) -> None:
    for command in ([], ["run"], ["status"], ["refine"], ["select"], ["finetune"], ["evaluate"], ["config"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: ilf" in capsys.readouterr().out


def test_run_from_another_folder_and_empty_feedback_is_counted(slf5k_dir: Path, tmp_path: Path, monkeypatch) -> None:
    rows = [json.loads(line) for line in (slf5k_dir / "train.jsonl").read_text().splitlines()]
    rows[1]["feedback"] = ""
    rows[2]["feedback"] = None
    write_jsonl(slf5k_dir / "train.jsonl", rows)
    monkeypatch.chdir(tmp_path)  # the config's relative data path resolves against experiments/, not here
    sets = [*small_run_overrides(slf5k_dir, limit=5), "data.path=" + str(slf5k_dir)]
    assert main(["run", OFFLINE, "--run-dir", str(tmp_path / "r"), "--until", "feedback", *_sets(sets)]) == 0
    summary = json.loads((tmp_path / "r" / ".ilf" / "stages" / "feedback.json").read_text())["summary"]
    assert summary["feedback"] == 3 and summary["samples_without_feedback"] == 2
    assert main(["run", OFFLINE, "--run-dir", str(tmp_path / "r2"), "--until", "data"]) == 0  # ../data/offline from here
    assert len(read_records(tmp_path / "r2" / "samples.jsonl", Sample)) == 100


def test_unknown_override_fails_with_one_line(capsys, tmp_path: Path) -> None:
    assert main(["run", OFFLINE, "--run-dir", str(tmp_path / "r"), "--set", "refine.candidates=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ilf: error: ") and "field 'refine.candidates': unknown key" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_status_reports_pending_stages(tmp_path: Path, capsys) -> None:
    assert main(["status", OFFLINE, "--run-dir", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.split("\n")
    ilf_stages = ["data", "outputs", "feedback", "refine", "select", "finetune", "evaluate"]
    assert [line.split()[0] for line in lines if line] == ilf_stages
    assert Pipeline(load_config(OFFLINE), tmp_path / "r").status() == {s: "pending" for s in ilf_stages}
    assert set(ilf_stages) < set(STAGES)


def test_metrics_get_one_output_per_sample_unless_they_ask_for_every_one() -> None:
    from ilf.metrics import Metric, score_system
    from ilf.records import Output, Sample

    class Seen(Metric):
        def __init__(self, every: bool) -> None:
            self.every_output = every

        def score_outputs(self, run, samples, outputs):
            return {f"seen_{self.every_output}": [o.text for o in outputs]}

    samples = [Sample(id="a", inputs={"x": "1"}), Sample(id="b", inputs={"x": "2"})]
    outputs = [Output(sample_id=s, text=f"{s}{i}", system="p") for s in ("b", "a") for i in range(3)]
    scores = score_system([Seen(False), Seen(True)], None, samples, outputs)
    assert scores["seen_False"] == ["a0", "b0"]  # the first of each, in the samples' order
    assert scores["seen_True"] == [o.text for o in outputs]
