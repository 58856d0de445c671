import json
from pathlib import Path

import pytest

from ilf.cli import main
from ilf.config import load_config
from ilf.pipeline import Pipeline

METHODS = ("before", "ilf", "ilf_random", "refine_no_feedback", "sft_initial", "sft_reference")


@pytest.mark.slow
def test_quick_demo_is_a_study_of_ordinary_runs_and_reruns_as_up_to_date(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "demo"
    assert main(["demo", "--quick", "--run-dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    rows = {row["method"]: row for row in json.loads((run_dir / "cells.json").read_text())}
    assert set(rows) == set(METHODS)
    for method, row in rows.items():
        assert f"| {method} |" in printed
        # the report's numbers are the cell's own metrics
        metrics = json.loads((Path(row["dir"]) / "metrics.json").read_text())
        assert row["metrics"]["recall"] == metrics["systems"][metrics["primary"]]["recall"]
        for metric in ("recall", "precision", "rougeL"):
            assert 0.0 <= row["metrics"][metric] <= 1.0, (method, metric)
    assert rows["before"]["system"] == "base" and rows["ilf"]["system"] == "finetuned"
    assert {"hit.embedding", "hit.random", "refiner.incorporation", "targets.recall"} <= set(rows["ilf"]["metrics"])
    assert rows["sft_reference"]["metrics"]["targets.recall"] == 1.0  # references state every salient fact
    assert "refiner.incorporation" in printed and "hit.any_candidate" in printed
    assert (run_dir / "report.md").read_text().startswith("# ILF on the controlled facts world")
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((run_dir / "cache").glob("world-model-*/config.json"))) == 1

    for row in rows.values():  # every cell is an `ilf run` directory that is up to date
        cell = Path(row["dir"])
        assert set(Pipeline(load_config(cell / "config.yaml"), cell).status().values()) == {"done"}
    markers = {p: p.read_text() for p in sorted(run_dir.glob("cells/*/.ilf/stages/*.json"))}
    assert main(["demo", "--quick", "--run-dir", str(run_dir)]) == 0
    assert capsys.readouterr().out.count(": up to date") == len(METHODS)
    assert {p: p.read_text() for p in sorted(run_dir.glob("cells/*/.ilf/stages/*.json"))} == markers
