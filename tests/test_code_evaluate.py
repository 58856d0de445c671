"""`ilf evaluate --outputs`: scoring outputs from a file, or the references, with no model."""

from __future__ import annotations

import json
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
