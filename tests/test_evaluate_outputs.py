"""`ilf evaluate --outputs`: every metric scores an output against its own sample, whatever is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.demo import world
from ilf.records import Output, Sample, write_records

FACTS = ["--set", "task.name=facts", "--set", "evaluation.metrics=[rouge,facts]"]
POSTS = world.generate_posts(3, seed=11)


def _samples(with_references: bool = True) -> list[Sample]:
    return [
        Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()] if with_references else [], extra=world.post_record(p))
        for p in POSTS
    ]


def test_a_file_missing_one_samples_output_scores_the_rest_against_their_own_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = tmp_path / "samples.jsonl"
    write_records(samples, _samples())
    outputs = tmp_path / "outputs.jsonl"
    # the first and the last post's reference summaries: each is perfect for its own post only
    write_records(
        outputs, [Output(POSTS[0].id, POSTS[0].reference(), system="policy"), Output(POSTS[2].id, POSTS[2].reference(), system="policy")]
    )
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--samples", str(samples), "--outputs", str(outputs), "--out", str(out), *FACTS]) == 0
    row = json.loads(out.read_text())["systems"]["policy"]
    assert row["samples_without_output"] == 1 and row["n"] == 2
    assert (row["recall"], row["precision"], row["faithful"]) == (1.0, 1.0, 1.0)
    assert row["rouge1"] == pytest.approx(1.0) and row["n_with_references"] == 2
    assert "policy: 1 of 3 samples have no output; every metric scores the other 2" in capsys.readouterr().out


def test_references_leave_out_samples_without_one_and_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = _samples()
    samples[1] = Sample(id=samples[1].id, inputs=samples[1].inputs, references=[], extra=samples[1].extra)
    path = tmp_path / "samples.jsonl"
    write_records(path, samples)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--samples", str(path), "--outputs", "references", "--out", str(out), *FACTS]) == 0
    row = json.loads(out.read_text())["systems"]["references"]
    assert row["samples_without_output"] == 1 and row["samples_without_reference"] == 1
    assert (row["recall"], row["precision"]) == (1.0, 1.0) and row["rouge1"] == pytest.approx(1.0)
    assert "references: 1 of 3 samples have no reference; every metric scores the other 2" in capsys.readouterr().out
