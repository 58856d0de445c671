"""`ilf evaluate --outputs`: scoring outputs from a file, or the references, with no model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.records import Output, Sample, read_records, write_records

CODE = ["--set", "task.name=code", "--set", "task.options={timeout: 5}", "--set", "evaluation.metrics=[pass_at_k]"]
DOUBLE = Sample(
    id="double",
    inputs={"prompt": 'def double(x):\n    """Twice x."""\n'},
    references=["    return 2 * x\n"],
    extra={"test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n", "entry_point": "double"},
)
HALVE = Sample(
    id="halve",
    inputs={"prompt": "def halve(x):\n"},
    references=["    return x // 2\n"],  # a wrong reference: the sanity check must catch it
    extra={"test": "def check(candidate):\n    assert candidate(3) == 1.5\n", "entry_point": "halve"},
)


def test_humaneval_canonical_solutions_all_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--outputs", "references", "--out", str(out), "--outputs-out", str(tmp_path / "scored.jsonl")]
    assert main([*argv, *CODE, "--set", "data.loader=humaneval", "--set", "data.eval_limit=null"]) == 0
    metrics = json.loads(out.read_text())
    row = metrics["systems"]["references"]
    assert (row["pass@1"], row["problems"], row["programs"], row["timeouts"]) == (1.0, 164, 164, 0)
    assert "| references | 1.000 ± 0.000 | - |" in capsys.readouterr().out
    scored = read_records(tmp_path / "scored.jsonl", Output)
    assert len(scored) == 164 and all(o.extra["execution"]["status"] == "passed" for o in scored)


def test_a_file_of_outputs_is_scored_per_system_and_a_bad_reference_shows(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    write_records(samples, [DOUBLE, HALVE])
    outputs = tmp_path / "outputs.jsonl"
    write_records(
        outputs,
        [
            Output("double", "    return x + x\n", system="good"),
            Output("halve", "    return x / 2\n", system="good"),
            Output("double", "    return x + 2\n", system="bad"),
            Output("halve", "    return x / 2\n", system="bad"),
        ],
    )
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", str(out), *CODE]) == 0
    systems = json.loads(out.read_text())["systems"]
    assert systems["good"]["pass@1"] == 1.0 and systems["bad"]["pass@1"] == 0.5
    assert systems["bad"]["problems"] == 2 and systems["bad"]["n"] == 2

    # Ten samples of every problem give pass@10 as well: 3 of 10 pass for double, none for halve.
    many = [Output("double", "    return x + x\n" if i < 3 else "    return x + 2\n", system="sampled") for i in range(10)]
    write_records(outputs, many + [Output("halve", "    return x // 2\n", system="sampled")] * 10)
    assert main(["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", str(out), *CODE]) == 0
    sampled = json.loads(out.read_text())["systems"]["sampled"]
    assert sampled["pass@1"] == pytest.approx(0.15) and sampled["pass@10"] == pytest.approx(0.5) and sampled["programs"] == 20

    assert main(["evaluate", "--samples", str(samples), "--outputs", "references", "--out", str(out), *CODE]) == 0
    assert json.loads(out.read_text())["systems"]["references"]["pass@1"] == 0.5  # halve's reference fails its test


def test_outputs_for_unknown_samples_and_outputs_with_a_model_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "samples.jsonl"
    write_records(samples, [DOUBLE])
    outputs = tmp_path / "outputs.jsonl"
    write_records(outputs, [Output("nope", "    return 1\n")])
    out = str(tmp_path / "m.json")
    assert main(["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", out, *CODE]) == 2
    assert "not in the evaluation samples (first: 'nope')" in capsys.readouterr().err
    assert main(["evaluate", "--samples", str(samples), "--outputs", "references", "--model", "m", "--out", out, *CODE]) == 2
    assert "pass one of them" in capsys.readouterr().err


LOOP = Output("double", "    while True:\n        pass\n", system="looping")


def test_evaluate_runs_the_programs_in_the_sandbox_the_config_sets(tmp_path: Path) -> None:
    samples, outputs = tmp_path / "samples.jsonl", tmp_path / "outputs.jsonl"
    write_records(samples, [DOUBLE])
    write_records(outputs, [LOOP])
    scored = tmp_path / "scored.jsonl"

    def evaluate(options: str) -> dict:
        argv = ["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", str(tmp_path / "m.json")]
        more = ["--set", "task.name=code", "--set", f"task.options={options}", "--set", "evaluation.metrics=[pass_at_k]"]
        assert main([*argv, "--outputs-out", str(scored), *more]) == 0
        return read_records(scored, Output)[0].extra["execution"]

    looped = evaluate("{timeout: 1}")
    assert looped["status"] == "timeout" and looped["error"] == "timed out after 1 s"  # not the default 10 s
    assert looped["isolation"] == "bwrap"
    assert evaluate("{timeout: 1, isolation: unsafe_process}")["isolation"] == "unsafe_process"


def test_evaluate_without_bubblewrap_is_refused_before_any_program_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    witness = tmp_path / "a program ran"
    samples, outputs = tmp_path / "samples.jsonl", tmp_path / "outputs.jsonl"
    write_records(samples, [DOUBLE])
    write_records(outputs, [Output("double", f"    open({str(witness)!r}, 'w').write('x')\n    return 2 * x\n")])
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, no bubblewrap
    argv = ["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", str(tmp_path / "m.json"), *CODE]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install bubblewrap" in err and "task.options.isolation: unsafe_process" in err
    assert not witness.exists() and not (tmp_path / "m.json").exists()
    assert main([*argv, "--set", "task.options={timeout: 5, isolation: process}"]) == 2
    assert "'process' was renamed 'unsafe_process'" in capsys.readouterr().err
