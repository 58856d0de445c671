"""While a study runs, report.md shows the cells finished so far and the terminal says where."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_study_workers import TINY as WORKERS_TINY

from ilf.cli import main

# the workers test's tiny code study, with one seed and three methods (later settings win)
TINY = [*WORKERS_TINY, "study.seeds=[0]", "study.methods=[before,sft_reference,ilf]", "study.gates=[]", "study.contrasts=[]"]


@pytest.mark.slow
def test_the_report_so_far_holds_the_finished_cells_and_says_it_is_partial(tmp_path: Path, capsys) -> None:
    from importlib.resources import files

    from ilf.study.cells import cells
    from ilf.study.config import load_study
    from ilf.study.run import ReportsSoFar

    run_dir = tmp_path / "code"
    assert main(["demo", "code", "--run-dir", str(run_dir), *(a for s in TINY for a in ("--set", s))]) == 0
    final = (run_dir / "report.md").read_text()
    assert "So far" not in final and "| sft_reference |" in final
    capsys.readouterr()
    # as the study stood when two of its three cells had finished: the third cell's metrics not written yet
    study, base, source = load_study(files("ilf.studies") / "code.yaml", TINY)
    todo = cells(study, base, source)
    (run_dir / "cells" / [c.name for c in todo if c.method == "ilf"][0] / "metrics.json").unlink()
    reporter = ReportsSoFar(study, todo, run_dir, "code", every=0.05)
    reporter.started = 0.0  # the cells above count as finished by this invocation
    with reporter:
        deadline = time.monotonic() + 30
        while reporter.shown < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    partial = (run_dir / "report.md").read_text()
    assert "**So far: 2 of 3 cells done.**" in partial
    assert "| sft_reference |" in partial and "| before |" in partial and "| ilf |" not in partial
    assert f"report so far (2 of 3 cells): {run_dir / 'report.md'}" in capsys.readouterr().out
